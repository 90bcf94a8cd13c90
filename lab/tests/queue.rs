//! The candidate queue: priorities, duplicate detection, and atomic claims by
//! many agents at once; a claimed item comes with its hypothesis and the
//! command that tests it.

mod common;

use std::collections::HashSet;
use std::thread;

use common::{TestLab, lab_with};
use serde_json::json;

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

#[test]
fn a_claimed_item_comes_with_its_hypothesis_and_the_run_that_tests_it() {
    let lab = lab_with(&["ok"]);
    lab.ok(&["queue", "add", "warmup 500 steps", "-m", "stabler start", "--leaf", "ok"]);
    let item = lab.json(&["queue", "next"]);
    assert_eq!(
        (&item["id"], &item["hypothesis"], &item["command"]),
        (&json!("q1"), &json!("h1"), &json!("lab run ok --hypothesis h1 --decide"))
    );
    let hypothesis: (String, String, String) = lab
        .db()
        .query_row("SELECT title, mechanism, leaf FROM hypotheses WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!(hypothesis, ("warmup 500 steps".into(), "stabler start".into(), "ok".into()));
    assert_eq!(lab.json(&["queue", "list"])[0]["hypothesis"], "h1", "the link is stored");

    // The command handed out is the one that runs: the experiment stands under h1.
    let command: Vec<&str> = item["command"].as_str().unwrap().split(' ').skip(1).collect();
    let out = lab.cmd(&[command.as_slice(), &["-q"]].concat()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let under: i64 = lab.db().query_row("SELECT hypothesis_id FROM experiments", [], |r| r.get(0)).unwrap();
    assert_eq!(under, 1);

    // The table names the command too.
    lab.ok(&["queue", "add", "cosine schedule", "-m", "better end", "--leaf", "ok"]);
    let table = lab.ok(&["queue", "next"]);
    assert!(table.contains("lab run ok --hypothesis h") && table.contains("--decide"), "{table}");
}

#[test]
fn an_item_queued_under_a_hypothesis_keeps_it_and_its_leaf() {
    let lab = TestLab::new();
    assert_eq!(lab.ok(&["hypothesis", "tie embeddings", "-m", "fewer params", "--leaf", "pretrain"]), "h1\n");
    let queued = lab.json(&["queue", "add", "tie the embeddings", "-m", "fewer params", "--hypothesis", "h1"]);
    assert_eq!((&queued["leaf"], &queued["hypothesis"]), (&json!("pretrain"), &json!("h1")), "{queued:#}");
    let err = lab.fails(&["queue", "add", "idea", "-m", "m", "--hypothesis", "h1", "--leaf", "sft"], 2);
    assert!(err.contains("h1 belongs to leaf `pretrain`, not `sft`"), "{err}");
    lab.fails(&["queue", "add", "idea", "-m", "m", "--hypothesis", "h9"], 2);
    let item = lab.json(&["queue", "next", "--leaf", "pretrain"]);
    assert_eq!(
        (&item["hypothesis"], &item["command"]),
        (&json!("h1"), &json!("lab run pretrain --hypothesis h1 --decide"))
    );
    let hypotheses: i64 = lab.db().query_row("SELECT count(*) FROM hypotheses", [], |r| r.get(0)).unwrap();
    assert_eq!(hypotheses, 1, "no second hypothesis for an item queued under one");
}
