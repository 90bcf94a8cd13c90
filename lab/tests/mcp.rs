//! `lab mcp` end to end, through a real MCP client: the official Python SDK
//! (`mcp`, pinned in requirements.lock) runs `tests/mcp_client.py` against the
//! real binary in a temp lab holding fixture leaves, over stdio as a coding
//! agent would. The client reports what it saw; the assertions are here.

mod common;

use common::{TestLab, lab_with, repo_root};
use serde_json::Value;

/// The tools `lab mcp` offers, in the order it lists them.
const TOOLS: [&str; 14] = [
    "context",
    "failures",
    "log",
    "hypothesis",
    "experiment",
    "result",
    "run",
    "gate",
    "holdout",
    "queue",
    "leaves",
    "show",
    "check",
    "verify",
];

/// What the client saw in `scenario` (`loop` or `errors`, see the script) against `lab mcp --root <lab>`.
fn client(lab: &TestLab, scenario: &str, leaf: &str) -> Value {
    let python = repo_root().join(".venv/bin/python");
    let script = repo_root().join("lab/tests/mcp_client.py");
    let binary = assert_cmd::cargo::cargo_bin("lab");
    let args = [script.to_str().unwrap(), scenario, binary.to_str().unwrap(), lab.root().to_str().unwrap(), leaf];
    let out = lab.std_cmd_of(&python, lab.root(), &args).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the MCP client failed (is `mcp` installed? run scripts/setup)\n{stdout}\n{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"))
}

/// One line per tool: its name and arguments (`name: type`, `!` when required, a value enum's values).
fn signatures(tools: &Value) -> String {
    let line = |tool: &Value| {
        let schema = &tool["inputSchema"];
        let required: Vec<&str> = schema["required"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        let args: Vec<String> = (schema["properties"].as_object().unwrap().iter())
            .map(|(name, p)| {
                let bang = if required.contains(&name.as_str()) { "!" } else { "" };
                let values = p.get("enum").map_or_else(String::new, |v| format!(" {v}"));
                format!("{name}{bang}: {}{values}", p["type"].as_str().unwrap())
            })
            .collect();
        format!("{}({})", tool["name"].as_str().unwrap(), args.join(", "))
    };
    tools.as_array().unwrap().iter().map(line).collect::<Vec<_>>().join("\n")
}

#[test]
fn an_mcp_client_lists_the_tools_runs_a_leaf_and_reads_the_context() {
    let lab = lab_with(&["timely"]);
    let seen = client(&lab, "loop", "timely");
    assert_eq!(seen["server"], "lab");
    let names: Vec<&str> = seen["tools"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, TOOLS);
    lab.redactions().bind(|| insta::assert_snapshot!("mcp_tools", signatures(&seen["tools"])));

    let run = &seen["run"];
    assert_eq!(run["is_error"], false, "{run:#}");
    let summary = &run["structured"];
    assert_eq!((summary["verdict"].as_str(), summary["tier"].as_str()), (Some("discard"), Some("smoke")), "{run:#}");
    assert_eq!(summary["seed"], 3);
    assert_eq!(serde_json::from_str::<Value>(run["texts"][0].as_str().unwrap()).unwrap(), *summary);
    // The run's stderr came as progress while it ran: its live line, numbered.
    let progress = seen["progress"].as_array().unwrap();
    assert!(
        progress.iter().any(|p| p["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(&format!("lab: {} smoke train ", summary["experiment"].as_str().unwrap())))),
        "{progress:#?}"
    );
    assert_eq!(progress[0]["progress"], 1.0);

    let context = &seen["context"]["structured"];
    assert_eq!(context["counts"]["experiments"], 1, "{context:#}");
    assert_eq!(context["recent"][0]["experiment"], summary["experiment"], "{context:#}");
}

#[test]
fn failures_are_tool_errors_with_the_clis_words_and_bad_requests_are_protocol_errors() {
    let lab = lab_with(&["crash"]);
    let seen = client(&lab, "errors", "crash");

    let crash = &seen["crash"];
    assert_eq!(crash["is_error"], true, "{crash:#}");
    let said = crash["texts"][0].as_str().unwrap();
    assert!(said.contains("ValueError: learning rate must be positive); its result is recorded"), "{said}");
    assert!(said.contains("hint: read the log: "), "{said}");
    assert!(said.ends_with("`lab run` exited with code 4 (the experiment crashed; its result is recorded)"), "{said}");
    assert_eq!(crash["structured"]["verdict"], "crash", "the recorded crash comes with it: {crash:#}");

    let unknown = &seen["unknown_experiment"];
    assert_eq!(unknown["is_error"], true, "{unknown:#}");
    let cli = lab.fails(&["gate", "e99"], 2);
    assert_eq!(unknown["texts"][0], format!("{cli}`lab gate` exited with code 2 (bad usage or input)"));

    for (case, message) in [
        ("unknown_tool", "no tool `nope`; the tools: context, failures"),
        ("wrong_type", "`limit` must be an integer"),
        ("unknown_argument", "`context` has no argument `format`; it takes: leaf, recent"),
    ] {
        let error = &seen[case];
        assert_eq!(error["code"], -32602, "{case}: invalid params, not a tool result: {error:#}");
        assert!(error["message"].as_str().is_some_and(|m| m.starts_with(message)), "{case}: {error:#}");
    }
    // The server still answers after them.
    let log = &seen["after"];
    assert_eq!(log["is_error"], false, "{log:#}");
    let rows: Value = serde_json::from_str(log["texts"][0].as_str().unwrap()).unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{log:#}");
    assert_eq!(log["structured"], Value::Null, "a list is text, not structured content: {log:#}");
}
