//! Import from PraxLab and autoresearch, export to plain tables, and the round
//! trip: export then import gives back the same rows.

mod common;

use common::{TestLab, praxlab_db};
use rusqlite::Connection;

#[test]
fn a_praxlab_database_is_imported_whole() {
    let lab = TestLab::new();
    praxlab_db(&lab.path("experiments.db"));
    let err = lab.cmd(&["import", "praxlab", "experiments.db"]).output().unwrap();
    assert!(String::from_utf8_lossy(&err.stderr).contains("imported 2 hypotheses, 3 experiments, 2 results"));
    let log = lab.json(&["log", "--leaf", "pretrain"]);
    assert_eq!(log.as_array().unwrap().len(), 3);
    let e1 = &log[2];
    assert_eq!((e1["title"].as_str(), e1["verdict"].as_str()), (Some("increase LR"), Some("keep")));
    assert_eq!(e1["metrics"], serde_json::json!({"val_bpb": 0.993}));
    let failures = lab.json(&["failures", "--leaf", "pretrain"]);
    assert_eq!(failures[0]["mechanism"], "more capacity", "rationale stands in for a missing mechanism");
    assert_eq!(failures[0]["theory_revision"], "depth hurts at 5 min");
    let context = lab.json(&["context", "--leaf", "pretrain"]);
    assert_eq!((context["counts"]["confirmed"].as_u64(), context["counts"]["refuted"].as_u64()), (Some(1), Some(1)));
    let exported = lab.ok(&["export", "--format", "jsonl"]);
    assert!(exported.contains("non-numeric metrics left out: gpu"), "{exported}");
    common::assert_tallies_exact(&Connection::open(lab.path(".lab/lab.db")).unwrap());
}

#[test]
fn a_bad_praxlab_file_imports_nothing() {
    let lab = TestLab::new();
    lab.write("notes.txt", "not a database at all, just text that is long enough to not be a header\n");
    let err = lab.fails(&["import", "praxlab", "notes.txt"], 2);
    assert!(err.contains("not a SQLite database") || err.contains("not a database"), "{err}");
    let conn = Connection::open(lab.path("other.db")).unwrap();
    conn.execute_batch("CREATE TABLE hypotheses (id TEXT)").unwrap();
    drop(conn);
    let err = lab.fails(&["import", "praxlab", "other.db"], 2);
    assert!(err.contains("no `experiments` table"), "{err}");
    praxlab_db(&lab.path("bad.db"));
    Connection::open(lab.path("bad.db"))
        .unwrap()
        .execute("UPDATE results SET verdict = 'maybe' WHERE experiment_id = 'e2'", [])
        .unwrap();
    let err = lab.fails(&["import", "praxlab", "bad.db"], 2);
    assert!(err.contains("unknown verdict `maybe`"), "{err}");
    assert_eq!(lab.ok(&["export", "--format", "jsonl"]), "", "a failed import writes nothing");
}

const RESULTS_TSV: &str = "commit\tval_bpb\tmemory_gb\tstatus\tdescription
a1b2c3d\t0.997900\t44.0\tkeep\tbaseline
b2c3d4e\t0.993200\t44.2\tkeep\tincrease LR to 0.04
c3d4e5f\t1.005000\t44.0\tdiscard\tswitch to GeLU activation
d4e5f6g\t0.000000\t0.0\tcrash\tdouble model width (OOM)
";

#[test]
fn results_tsv_round_trips_byte_for_byte() {
    let lab = TestLab::new();
    lab.write("results.tsv", RESULTS_TSV);
    lab.ok(&["import", "results-tsv", "results.tsv", "--leaf", "pretrain"]);
    assert_eq!(lab.ok(&["export", "--format", "results-tsv"]), RESULTS_TSV);
    lab.ok(&["export", "--format", "results-tsv", "--output", "again.tsv"]);
    let other = TestLab::new();
    std::fs::copy(lab.path("again.tsv"), other.path("again.tsv")).unwrap();
    other.ok(&["import", "results-tsv", "again.tsv"]);
    assert_eq!(other.ok(&["export", "--format", "results-tsv"]), RESULTS_TSV);
    // Imported numbers are an agent's word, not a harness run: reported, never a best.
    let context = lab.json(&["context", "--leaf", "pretrain"]);
    assert_eq!(context["best"], serde_json::json!([]));
    let reported = context["reported"].as_array().unwrap();
    assert!(reported.iter().any(|b| b["metric"] == "val_bpb" && b["value"] == 0.9932 && b["source"] == "agent"));
}

#[test]
fn a_malformed_results_tsv_imports_nothing() {
    let lab = TestLab::new();
    for (name, text, message) in [
        ("header.tsv", "commit\tbpb\tstatus\n", "is not a results.tsv"),
        (
            "number.tsv",
            "commit\tval_bpb\tmemory_gb\tstatus\tdescription\na\t0.9\t1\tkeep\tok\nb\tlow\t1\tkeep\tbad\n",
            "line 3: val_bpb `low` is not a number",
        ),
        (
            "status.tsv",
            "commit\tval_bpb\tmemory_gb\tstatus\tdescription\na\t0.9\t1\tkept\tx\n",
            "line 2: unknown verdict `kept`",
        ),
        ("fields.tsv", "commit\tval_bpb\tmemory_gb\tstatus\tdescription\na\t0.9\n", "line 2"),
    ] {
        lab.write(name, text);
        let err = lab.fails(&["import", "results-tsv", name], 2);
        assert!(err.contains(message), "{name}: {err}");
    }
    assert_eq!(lab.ok(&["export"]), "");
}

#[test]
fn csv_and_jsonl_exports_carry_every_row() {
    let lab = TestLab::new();
    lab.write("results.tsv", RESULTS_TSV);
    lab.ok(&["import", "results-tsv", "results.tsv"]);
    let jsonl = lab.ok(&["export", "--format", "jsonl"]);
    let rows: Vec<serde_json::Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["title"], "baseline", "oldest first");
    let csv = lab.ok(&["export", "--format", "csv"]);
    assert_eq!(csv::Reader::from_reader(csv.as_bytes()).records().count(), 4);
}
