//! The candidate queue: priorities, duplicate detection, and atomic claims by
//! many agents at once.

mod common;

use std::collections::HashSet;
use std::thread;

use common::TestLab;

#[test]
fn items_come_out_by_priority_then_age() {
    let lab = TestLab::new();
    assert_eq!(lab.ok(&["queue", "add", "warmup 500 steps", "-m", "stabler start"]), "q1\n");
    lab.ok(&[
        "queue",
        "add",
        "tie embeddings",
        "-m",
        "fewer params",
        "--priority",
        "5",
        "--link",
        "https://example.org/p",
    ]);
    lab.ok(&["queue", "add", "cosine schedule", "-m", "better end", "--priority", "5"]);
    let order: Vec<String> = (0..3).map(|_| lab.json(&["queue", "next"])["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(order, ["q2", "q3", "q1"]);
    assert_eq!(lab.json(&["queue", "next"]), serde_json::Value::Null);
    lab.ok(&["queue", "done", "q2", "--note", "became h4"]);
    lab.ok(&["queue", "drop", "q3"]);
    let err = lab.fails(&["queue", "done", "q3"], 3);
    assert!(err.contains("q3 is already dropped"), "{err}");
    lab.fails(&["queue", "done", "q9"], 2);
    let all = lab.json(&["queue", "list", "--all"]);
    let statuses: Vec<&str> = all.as_array().unwrap().iter().map(|i| i["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["done", "dropped", "claimed"]);
}

#[test]
fn duplicates_are_pointed_out() {
    let lab = TestLab::new();
    lab.ok(&["queue", "add", "Increase LR to 0.04", "-m", "faster"]);
    let err = lab.fails(&["queue", "add", "increase lr to 0.04!", "-m", "again"], 3);
    assert!(err.contains("looks like q1 (queued)") && err.contains("--force"), "{err}");
    lab.ok(&["queue", "add", "increase lr to 0.04!", "-m", "again", "--force"]);
    lab.ok(&["hypothesis", "switch to GeLU", "-m", "smoother"]);
    lab.ok(&["experiment", "h1"]);
    lab.ok(&["result", "e1", "-v", "discard"]);
    let out = lab.cmd(&["queue", "add", "switch to gelu", "-m", "m"]).output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("looks like h1 (failed): switch to GeLU"), "{err}");
}

#[test]
fn eight_agents_never_claim_the_same_item() {
    let lab = TestLab::new();
    let items = 120;
    for i in 0..items {
        lab.ok(&["queue", "add", &format!("idea number {i}"), "-m", "m", "--priority", &(i % 7).to_string()]);
    }
    let claimed: Vec<String> = thread::scope(|s| {
        let agents: Vec<_> = (0..8)
            .map(|_| {
                let lab = &lab;
                s.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let item = lab.json(&["queue", "next"]);
                        match item["id"].as_str() {
                            Some(id) => mine.push(id.to_owned()),
                            None => return mine,
                        }
                    }
                })
            })
            .collect();
        agents.into_iter().flat_map(|a| a.join().unwrap()).collect()
    });
    let unique: HashSet<&String> = claimed.iter().collect();
    assert_eq!(claimed.len(), items, "every item claimed exactly once");
    assert_eq!(unique.len(), items);
}
