use serde_json::json;

use super::*;

fn argv(name: &str, args: Value) -> Result<Vec<String>, String> {
    let Value::Object(args) = args else { panic!("arguments are an object") };
    Catalog::default().argv(name, args).map_err(|e| e.message.into_owned())
}

#[test]
fn a_call_becomes_flags_then_the_positionals_after_a_double_dash() {
    let cases = [
        ("context", json!({}), vec!["context", "--json"]),
        ("context", json!({"recent": 3, "leaf": null}), vec!["context", "--json", "--recent=3"]),
        (
            "run",
            json!({"leaf": "-odd", "smoke": true, "decide": false, "budget": "5s"}),
            vec!["run", "--json", "--smoke", "--budget=5s", "--", "-odd"],
        ),
        (
            "hypothesis",
            json!({"mechanism": "m", "title": "t", "predict": "p"}),
            vec!["hypothesis", "--json", "--mechanism=m", "--predict=p", "--", "t"],
        ),
        (
            "result",
            json!({"experiment": "e1", "mechanism_refuted": true}),
            vec!["result", "--json", "--mechanism-refuted", "--", "e1"],
        ),
        (
            "queue",
            json!({"action": "add", "title": "x", "priority": -2}),
            vec!["queue", "add", "--json", "--priority=-2", "--", "x"],
        ),
        ("queue", json!({"action": "next"}), vec!["queue", "next", "--json"]),
    ];
    for (name, args, expected) in cases {
        assert_eq!(argv(name, args.clone()), Ok(expected.into_iter().map(String::from).collect()), "{name} {args}");
    }
}

#[test]
fn what_the_cli_does_not_take_is_refused_before_anything_runs() {
    let cases = [
        ("init", json!({}), "no tool `init`"),
        ("__worker", json!({}), "no tool `__worker`"),
        ("context", json!({"root": "/"}), "`context` has no argument `root`; it takes: leaf, recent"),
        ("run", json!({"quiet": true}), "`run` has no argument `quiet`"),
        ("log", json!({"json": true}), "`log` has no argument `json`"),
        ("log", json!({"limit": 1.5}), "`limit` must be an integer"),
        ("run", json!({"smoke": "yes"}), "`smoke` must be a boolean"),
        ("gate", json!({"experiment": 1}), "`experiment` must be a string"),
        ("queue", json!({"title": "x"}), "`queue` takes an `action`: one of add, next, list, done, drop"),
        ("queue", json!({"action": "help"}), "`queue` takes an `action`"),
        ("queue", json!({"action": "next", "title": "x"}), "`queue next` has no argument `title`; it takes: leaf"),
    ];
    for (name, args, message) in cases {
        let refused = argv(name, args.clone()).unwrap_err();
        assert!(refused.starts_with(message), "{name} {args}: {refused}");
    }
}

#[test]
fn schemas_say_each_arguments_type_values_default_and_whether_it_is_required() {
    let tools = Catalog::default().tools();
    let schema = |name: &str| Value::Object((*tools.iter().find(|t| t.name == name).unwrap().input_schema).clone());
    let log = schema("log");
    assert_eq!(log["properties"]["verdict"]["enum"], json!(["keep", "discard", "crash"]));
    assert_eq!(
        log["properties"]["limit"],
        json!({"type": "integer", "minimum": 0, "description": "At most this many rows (0: all)", "default": 50})
    );
    assert_eq!(schema("hypothesis")["required"], json!(["title", "mechanism"]));
    assert_eq!(schema("run")["properties"]["smoke"]["type"], "boolean");
    let queue = schema("queue");
    assert_eq!(queue["required"], json!(["action"]));
    assert_eq!(
        queue["properties"]["leaf"]["description"].as_str().unwrap().rsplit('(').next(),
        Some("action add, next, list)")
    );
}
