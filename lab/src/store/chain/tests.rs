use rusqlite::types::ValueRef;

use super::*;
use crate::store::{OpenMode, Store};

/// The trigger its migration created for `spec`, as [`CHAINED`] says it must read.
fn expected_trigger(spec: &Chained) -> String {
    let (t, key) = (spec.table, spec.key.replace("t.", "new."));
    let values: Vec<String> = spec.columns.iter().map(|c| format!("new.{c}")).collect();
    format!(
        "CREATE TRIGGER chain_{t} AFTER INSERT ON {t} BEGIN
    INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT '{t}', k, substr(d, 1, 64), substr(d, 66), p, lab_chain_link(p, '{t}', k, substr(d, 1, 64))
    FROM (SELECT {key} AS k, lab_chain_digest({}) AS d,
                 coalesce((SELECT hash FROM chain ORDER BY seq DESC LIMIT 1), '') AS p);
END",
        values.join(", ")
    )
}

#[test]
fn every_chained_table_has_the_trigger_the_spec_describes() {
    let store = Store::in_memory();
    for spec in CHAINED {
        let sql: String = store
            .conn()
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?1",
                [format!("chain_{}", spec.table)],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("no chain trigger on {}: {e}", spec.table));
        assert_eq!(sql, expected_trigger(spec), "{}", spec.table);
    }
    // And every column the spec names exists (a typo would hash NULL forever).
    for spec in CHAINED {
        let columns: Vec<String> = spec.columns.iter().map(|c| format!("t.{c}")).collect();
        let sql = format!("SELECT {}, {}, {} FROM {} t", spec.key, spec.leaf, columns.join(", "), spec.table);
        store.conn().prepare(&sql).unwrap_or_else(|e| panic!("{}: {e}", spec.table));
    }
}

#[test]
fn the_encoding_tells_types_and_values_apart() {
    let cases: &[(&str, ValueRef<'_>, ValueRef<'_>)] = &[
        ("integer and real", ValueRef::Integer(1), ValueRef::Real(1.0)),
        ("integer and text", ValueRef::Integer(1), ValueRef::Text(b"1")),
        ("null and empty text", ValueRef::Null, ValueRef::Text(b"")),
        ("text and blob", ValueRef::Text(b"a"), ValueRef::Blob(b"a")),
        ("nearby reals", ValueRef::Real(0.1), ValueRef::Real(0.1 + f64::EPSILON)),
    ];
    for (what, a, b) in cases {
        assert_ne!(RowDigest::of([*a]).row, RowDigest::of([*b]).row, "{what}");
    }
    // Column boundaries count: ("ab", "") is not ("a", "b").
    let split = |a: &'static [u8], b: &'static [u8]| RowDigest::of([ValueRef::Text(a), ValueRef::Text(b)]).row;
    assert_ne!(split(b"ab", b""), split(b"a", b"b"));
    let digest = RowDigest::of([ValueRef::Integer(7), ValueRef::Text(b"x")]);
    assert_eq!((digest.row.len(), digest.columns.len(), digest.columns[0].len()), (64, 2, 8));
}

#[test]
fn each_insert_appends_a_linked_entry_and_moves_the_head() {
    let mut store = Store::in_memory();
    assert_eq!(head(store.conn()).unwrap(), (0, GENESIS.to_owned()));
    store
        .write(|tx| {
            Ok(tx.execute_batch("INSERT INTO hypotheses (title, mechanism, created_at) VALUES ('a', 'b', 't')")?)
        })
        .unwrap();
    let (seq, first) = head(store.conn()).unwrap();
    assert_eq!(seq, 1);
    store
        .write(|tx| {
            Ok(tx.execute_batch("INSERT INTO hypotheses (title, mechanism, created_at) VALUES ('c', 'd', 't')")?)
        })
        .unwrap();
    let (seq, second) = head(store.conn()).unwrap();
    let prev: String = store.conn().query_row("SELECT prev_hash FROM chain WHERE seq = 2", [], |r| r.get(0)).unwrap();
    assert_eq!((seq, prev), (2, first.clone()));
    assert_ne!(first, second);
    assert_eq!(hash_at(store.conn(), 1).unwrap(), Some(first));
    assert_eq!(hash_at(store.conn(), 9).unwrap(), None);
}

#[test]
fn a_connection_without_the_functions_cannot_insert() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".lab/lab.db");
    drop(Store::open(&path, OpenMode::CreateIfNew).unwrap());
    let raw = Connection::open(&path).unwrap();
    let err =
        raw.execute("INSERT INTO hypotheses (title, mechanism, created_at) VALUES ('a', 'b', 't')", []).unwrap_err();
    assert!(err.to_string().contains("no such function: lab_chain_digest"), "{err}");
    let rows: i64 = raw.query_row("SELECT COUNT(*) FROM hypotheses", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 0, "reading still works; the insert left nothing");
}
