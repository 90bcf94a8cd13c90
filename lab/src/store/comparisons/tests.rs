use serde_json::json;

use super::*;
use crate::store::Store;
use crate::store::testing;

fn new(key: &str, files: &[(&str, &str)], min_improvement: f64, e: ExperimentId) -> NewComparison {
    NewComparison {
        leaf: "toy".into(),
        key: key.into(),
        files: files.iter().map(|(p, s)| ((*p).to_owned(), (*s).to_owned())).collect(),
        gate: json!({"min_improvement": min_improvement, "confidence": 0.9, "repeats": 3}),
        inputs: json!([]),
        experiment: e,
        created_at: "2026-01-01T00:00:00Z".into(),
    }
}

#[test]
fn a_relock_is_a_new_comparison_that_says_what_changed() {
    let mut store = Store::in_memory();
    let e = store.write(|tx| Ok(testing::experiment(tx, "toy"))).unwrap();
    let a = new("aaaaaaaaaaaaaaaa", &[("data.py", "1"), ("leaf.yaml", "2"), ("old.txt", "3")], 0.0, e);
    let b = new("bbbbbbbbbbbbbbbb", &[("data.py", "1"), ("leaf.yaml", "9"), ("new.txt", "4")], 0.5, e);
    let added: Vec<bool> = [&a, &a, &b, &b].iter().map(|c| store.write(|tx| record(tx, c)).unwrap()).collect();
    assert_eq!(added, [true, false, true, false], "recording the key the leaf is under changes nothing");
    let now = current(store.conn(), "toy").unwrap().unwrap();
    assert_eq!((now.number, now.comparison.key.as_str()), (2, "bbbbbbbbbbbbbbbb"));
    let relock = now.relock.clone().unwrap();
    let files: Vec<(&str, &str)> = relock.files.iter().map(|f| (f.path.as_str(), f.change)).collect();
    assert_eq!(files, [("leaf.yaml", "changed"), ("new.txt", "added"), ("old.txt", "removed")]);
    assert_eq!(relock.gate, [SettingChange { name: "min_improvement".into(), from: json!(0.0), to: json!(0.5) }]);
    assert!(!relock.returned && !relock.unrecorded);
    assert_eq!(
        now.describe(),
        "comparison 2 (bbbbbbbbbbbb) since e1; a re-lock started a new comparison (was aaaaaaaaaaaa); \
         frozen files: `leaf.yaml` changed, `new.txt` added, `old.txt` removed; gate min_improvement 0.0 -> 0.5"
    );
    // Back to the first lock: a row of its own, marked as a return.
    assert!(store.write(|tx| record(tx, &a)).unwrap());
    let back = current(store.conn(), "toy").unwrap().unwrap();
    assert_eq!((back.number, back.relock.as_ref().map(|r| r.returned)), (3, Some(true)));
    assert_eq!(current_key(store.conn(), "toy").unwrap().as_deref(), Some("aaaaaaaaaaaaaaaa"));
    assert_eq!(all_current(store.conn()).unwrap().len(), 1);
    assert_eq!(current(store.conn(), "other").unwrap(), None);
}

#[test]
fn inputs_are_compared_by_name_and_sha256() {
    let old = json!([{"name": "base", "sha256": "1"}, {"name": "gone", "sha256": "2"}]);
    let new = json!([{"name": "base", "sha256": "3"}]);
    let changes = inputs(&old, &new);
    let names: Vec<(&str, Value, Value)> =
        changes.iter().map(|c| (c.name.as_str(), c.from.clone(), c.to.clone())).collect();
    assert_eq!(names, [("base", json!("1"), json!("3")), ("gone", json!("2"), Value::Null)]);
    assert!(settings(&Value::Null, &json!({"a": 1})).is_empty(), "nothing recorded: nothing to compare");
}
