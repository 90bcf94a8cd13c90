//! End-to-end tests of leaf workspaces: `lab new` from the real templates and
//! from broken fixture templates, `lab templates`, `lab leaves`, `lab show`,
//! `lab lock` and `lab check`, with the bad input the issue lists (malformed
//! YAML, wrong types, undefined variables, a missing template, path-like or
//! capitalised names, an existing leaf) writing nothing.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{TestLab, repo_root};
use serde_json::Value;

fn templates() -> String {
    repo_root().join("templates").display().to_string()
}

fn fixtures() -> String {
    repo_root().join("lab/tests/fixtures/templates").display().to_string()
}

fn new_leaf(lab: &TestLab, name: &str, template: &str) {
    lab.ok(&["new", name, "--template", template, "--templates", &templates()]);
}

/// Fill Section 1 of program.md, as a contributor would.
fn write_task(path: &Path) {
    let text = fs::read_to_string(path).unwrap();
    let text = text
        .replace("<!-- lab: describe the task here, then delete this line -->\n", "")
        .replace("Replace this paragraph before the first run", "Described before the first run");
    fs::write(path, text).unwrap();
}

/// Fill Section 1 of program.md and relock.
fn describe_task(lab: &TestLab, name: &str) {
    write_task(&lab.path(&format!("leaves/{name}/program.md")));
    lab.ok(&["lock", name]);
}

/// Every file below `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = walk(dir).iter().map(|p| p.strip_prefix(dir).unwrap().display().to_string()).collect();
    files.sort();
    files
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    entries
        .flat_map(|e| {
            let path = e.unwrap().path();
            if path.is_dir() { walk(&path) } else { vec![path] }
        })
        .collect()
}

/// `lab check ARGS --json`: exit code and rows.
fn check(lab: &TestLab, args: &[&str]) -> (i32, Vec<Value>, String) {
    let args = [&["check"][..], args, &["--json"][..]].concat();
    let out = lab.cmd(&args).output().unwrap();
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    (out.status.code().unwrap(), rows.as_array().unwrap().clone(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_new_leaf_passes_check_once_its_task_is_described() {
    let lab = TestLab::new();
    let stdout = lab.ok(&["new", "demo", "--template", "minimal", "--templates", &templates()]);
    assert!(stdout.trim_end().ends_with("leaves/demo"), "{stdout}");
    assert_eq!(
        tree(&lab.path("leaves/demo")),
        ["leaf.lock", "leaf.yaml", "prepare.py", "program.md", "requirements.txt", "train.py"]
    );
    let (code, rows, _) = check(&lab, &["demo"]);
    assert_eq!(code, 1);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0]["problem"].as_str().unwrap().contains("placeholder"));

    write_task(&lab.path("leaves/demo/program.md"));
    let (code, rows, _) = check(&lab, &["demo"]);
    assert_eq!(code, 1);
    assert!(rows[0]["problem"].as_str().unwrap().contains("`program.md` changed since the lock"), "{rows:?}");
    assert_eq!(lab.ok(&["lock", "demo"]), "changed program.md\n");
    let (code, rows, stderr) = check(&lab, &["--all"]);
    assert_eq!(code, 0, "{rows:?}");
    assert_eq!(rows[0]["status"], "ok");
    assert!(stderr.contains("1 leaves checked: all pass"), "{stderr}");
}

#[test]
fn init_and_new_print_the_commands_up_to_the_first_smoke_run_commit_included() {
    common::require_venv();
    let lab = TestLab::empty();
    let init = lab.cmd(&["init"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&init.stderr);
    assert!(stderr.contains("next: `git init`") && stderr.contains("lab new NAME --template minimal"), "{stderr}");
    let out = lab.cmd(&["new", "demo", "--template", "minimal", "--templates", &templates()]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let commit = "git init && git add -- leaves/demo && git commit -m \"Add leaf demo\"";
    assert!(stderr.contains("lab lock demo && lab check demo") && stderr.contains(commit), "{stderr}");
    assert!(stderr.contains("cd leaves/demo && lab run --smoke"), "{stderr}");
    describe_task(&lab, "demo");
    let refused = lab.fails(&["run", "demo", "--smoke", "-q"], 3);
    assert!(refused.contains("cannot run leaf `demo`") && refused.contains("git init"), "{refused}");
    lab.git(&["init", "-q"]);
    let refused = lab.fails(&["run", "demo", "--smoke", "-q"], 3);
    assert!(refused.contains("`git add -- leaves/demo && git commit -m \"Add leaf demo\"`"), "{refused}");
    lab.git(&["add", "--", "leaves/demo"]);
    lab.git(&["commit", "-qm", "Add leaf demo"]);
    lab.write("notes.txt", "an untracked file outside the leaf blocks nothing\n");
    let run = lab.cmd_in(&lab.path("leaves/demo"), &["run", "--smoke", "-q", "--json"]).output().unwrap();
    common::assert_success(&run, &["run", "--smoke"]);
}

#[test]
fn an_installed_binary_scaffolds_from_its_built_in_templates_under_the_roots_own() {
    let installed = TestLab::empty();
    let binary = installed.path("bin/lab");
    fs::create_dir_all(binary.parent().unwrap()).unwrap();
    fs::copy(assert_cmd::cargo::cargo_bin("lab"), &binary).unwrap();
    let work = installed.path("work");
    fs::create_dir_all(&work).unwrap();
    let lab = |args: &[&str]| {
        let out = installed.std_cmd_of(&binary, &work, args).output().unwrap();
        common::assert_success(&out, args);
        String::from_utf8(out.stdout).unwrap()
    };
    lab(&["init"]);
    lab(&["new", "demo", "--template", "tabular"]);
    let from_source = TestLab::new();
    new_leaf(&from_source, "demo", "tabular");
    let (built_in, source) = (work.join("leaves/demo"), from_source.path("leaves/demo"));
    assert_eq!(tree(&built_in), tree(&source));
    for file in tree(&source) {
        assert_eq!(fs::read(built_in.join(&file)).unwrap(), fs::read(source.join(&file)).unwrap(), "{file}");
    }

    // The lab root's templates/ replaces a built-in by name and adds its own.
    let own = work.join("templates/minimal");
    common::copy_dir(&repo_root().join("templates/minimal"), &own);
    let manifest = fs::read_to_string(own.join("template.yaml")).unwrap();
    let description = manifest.lines().find(|l| l.starts_with("description:")).unwrap();
    fs::write(own.join("template.yaml"), manifest.replace(description, "description: this lab's own")).unwrap();
    let listed: Value = serde_json::from_str(&lab(&["templates", "--json"])).unwrap();
    let shown: Vec<(&str, &str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["description"].as_str().unwrap_or(""), t["path"].as_str().unwrap()))
        .collect();
    assert_eq!(shown.len(), 3, "{listed:#}");
    assert_eq!((shown[0].1, shown[0].2), ("this lab's own", own.to_str().unwrap()), "{listed:#}");
    assert!(shown[1..].iter().all(|t| t.2 == "built-in"), "{listed:#}");
    lab(&["new", "mine", "--template", "minimal"]);
    assert!(fs::read_to_string(work.join("leaves/mine/leaf.yaml")).unwrap().contains("name: mine"));
}

#[test]
fn tabular_offers_every_metric_the_scorer_knows_and_auc_and_accuracy_leaves_smoke_on_a_slice() {
    common::require_venv();
    let lab = TestLab::new();
    let listed: Value = serde_json::from_str(&lab.ok(&["templates", "--json", "--templates", &templates()])).unwrap();
    let tabular = listed.as_array().unwrap().iter().find(|t| t["name"] == "tabular").unwrap();
    let metric = tabular["variables"].as_array().unwrap().iter().find(|v| v["name"] == "metric").unwrap();
    let choices: Vec<&str> = metric["choices"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(choices, ["rmse", "mae", "mse", "rae", "r2", "spearman", "pearson", "auc", "accuracy"]);
    let help = metric["help"].as_str().unwrap();
    assert!(
        help.contains("probabilities of class 1") && help.contains("class") && help.contains("maximized"),
        "{help}"
    );
    let usage = lab.ok(&["new", "--help"]);
    assert!(usage.contains("auc (maximized)") && usage.contains("accuracy (maximized)"), "{usage}");

    lab.git(&["init", "-q"]);
    for metric in ["auc", "accuracy"] {
        let name = format!("demo-{metric}");
        let set = format!("metric={metric}");
        lab.ok(&["new", &name, "--template", "tabular", "--templates", &templates(), "--set", &set]);
        describe_task(&lab, &name);
        let manifest = fs::read_to_string(lab.path(&format!("leaves/{name}/leaf.yaml"))).unwrap();
        assert!(manifest.contains("goal: maximize"), "{manifest}");
        lab.git(&["add", "-A"]);
        lab.git(&["commit", "-qm", &name]);
        let out = lab.cmd(&["run", &name, "--smoke", "--json", "-q"]).output().unwrap();
        common::assert_success(&out, &["run", &name]);
        let run: Value = serde_json::from_slice(&out.stdout).unwrap();
        let value = run["value"].as_f64().unwrap();
        assert!(run["metric"] == metric && (0.5..=1.0).contains(&value), "{run:#}");
        // The smoke tier scores prepare.py's slice (SMOKE_ROWS) of each split, not val's and holdout's 400 rows.
        for split in ["val", "holdout"] {
            let files = run["files"].as_array().unwrap();
            let scored = files.iter().find(|f| f["kind"] == "predictions" && f["name"] == split).unwrap();
            assert_eq!(scored["len"], 200, "{split}: {run:#}");
        }
    }
}

#[test]
fn programs_name_the_figures_leaf_yaml_owns_and_every_command_of_the_loop() {
    let (lab, dir) = (TestLab::new(), templates());
    for template in ["minimal", "tabular", "torch"] {
        let name = format!("p-{template}");
        let sets = ["--set", "budget_seconds=123", "--set", "smoke_seconds=17"];
        let args = [&["new", &name, "--template", template, "--templates", &dir][..], &sets].concat();
        lab.ok(&args);
        let program = fs::read_to_string(lab.path(&format!("leaves/{name}/program.md"))).unwrap();
        for figure in ["123", "2m 3s", "17s"] {
            assert!(!program.contains(figure), "{template}: program.md copies the budget `{figure}`");
        }
        let mut commands = vec!["budget.full", "lab baseline", "lab holdout", "lab queue add", "lab checkpoint"];
        if template == "tabular" {
            commands.push("lab blend");
        }
        for command in commands {
            assert!(program.contains(command), "{template}: program.md never mentions `{command}`");
        }
        let data = fs::read_to_string(lab.path(&format!("leaves/{name}/prepare.py"))).unwrap();
        assert!(data.contains("\"holdout\""), "{template}: every template has a held-out split");
    }
}

#[test]
fn path_like_and_capitalised_names_are_refused_and_nothing_is_written() {
    let lab = TestLab::new();
    for name in ["../../x", "/tmp/x", "Bad_Name", "x-", "leaves/x"] {
        let out = lab.cmd(&["new", name, "--template", "minimal", "--templates", &templates()]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("invalid leaf name"), "{name}");
    }
    assert!(!lab.path("leaves").exists());
}

#[test]
fn an_existing_leaf_is_refused_without_force_and_force_keeps_other_files() {
    let lab = TestLab::new();
    new_leaf(&lab, "demo", "minimal");
    let train = lab.path("leaves/demo/train.py");
    let original = fs::read_to_string(&train).unwrap();
    fs::write(&train, "edited\n").unwrap();
    lab.write("leaves/demo/notes.txt", "mine\n");
    let stderr = lab.fails(&["new", "demo", "--template", "minimal", "--templates", &templates()], 2);
    assert!(stderr.contains("already exists") && stderr.contains("train.py") && stderr.contains("--force"), "{stderr}");
    assert_eq!(fs::read_to_string(&train).unwrap(), "edited\n");
    let dry =
        lab.cmd(&["new", "demo", "--template", "minimal", "--templates", &templates(), "--dry-run"]).output().unwrap();
    assert_eq!(dry.status.code(), Some(2), "a dry run predicts the refusal");
    assert!(String::from_utf8_lossy(&dry.stdout).contains("exists   train.py"));
    lab.ok(&["new", "demo", "--template", "minimal", "--templates", &templates(), "--force"]);
    assert_eq!(fs::read_to_string(&train).unwrap(), original);
    assert_eq!(fs::read_to_string(lab.path("leaves/demo/notes.txt")).unwrap(), "mine\n");
    assert!(tree(&lab.path("leaves")).iter().all(|f| f.starts_with("demo/")), "no staging directory is left");
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let lab = TestLab::new();
    let plan = lab.ok(&["new", "demo", "--template", "tabular", "--templates", &templates(), "--dry-run"]);
    assert!(plan.contains("create   leaf.yaml"), "{plan}");
    assert!(plan.contains("rendered from tabular/model.py.j2"), "{plan}");
    assert!(plan.contains("leaf.lock") && plan.contains("generated"), "{plan}");
    assert!(!lab.path("leaves").exists());
}

#[test]
fn unknown_templates_variables_and_wrong_types_are_bad_input() {
    let lab = TestLab::new();
    let t = templates();
    let cases: [(&[&str], &str); 6] = [
        (&["--template", "nope"], "no template `nope`"),
        (&["--template", "minimal", "--set", "bogus=1"], "has no variable `bogus`"),
        (&["--template", "minimal", "--set", "budget_seconds=soon"], "`budget_seconds` must be an integer"),
        (&["--template", "torch", "--set", "metric=val_f1"], "one of val_loss, val_accuracy"),
        (&["--template", "minimal", "--set", "name=other"], "NAME argument"),
        (&["--template", "minimal", "--set", "novalue"], "expected KEY=VALUE"),
    ];
    for (extra, message) in cases {
        let args = [&["new", "demo", "--templates", &t][..], extra].concat();
        let stderr = lab.fails(&args, 2);
        assert!(stderr.contains(message), "{extra:?}: {stderr}");
    }
    assert!(!lab.path("leaves").exists());
}

#[test]
fn a_template_with_an_undefined_variable_writes_nothing() {
    let lab = TestLab::new();
    let stderr = lab.fails(&["new", "demo", "--template", "undefined", "--templates", &fixtures()], 2);
    assert!(stderr.contains("undefined") && stderr.contains("zz_late.txt.j2"), "{stderr}");
    let stderr = lab.fails(&["new", "demo", "--template", "invalid-leaf", "--templates", &fixtures()], 2);
    assert!(stderr.contains("unknown field `budgett`") && stderr.contains("line 8"), "{stderr}");
    assert_eq!(tree(lab.root()).iter().filter(|f| !f.starts_with(".lab/")).collect::<Vec<_>>(), ["lab.yaml"]);
}

#[test]
fn dir_places_the_leaf_inside_the_root_only() {
    let lab = TestLab::new();
    let out = lab
        .cmd(&["new", "demo", "--template", "minimal", "--templates", &templates(), "--dir", "experiments"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("outside `leaves`"));
    assert!(lab.path("experiments/demo/leaf.lock").is_file());
    let stderr =
        lab.fails(&["new", "demo", "--template", "minimal", "--templates", &templates(), "--dir", "../elsewhere"], 2);
    assert!(stderr.contains("outside the lab root"), "{stderr}");
}

#[test]
fn templates_lists_every_template_with_its_variables() {
    let lab = TestLab::new();
    let listed = lab.json(&["templates", "--templates", &templates()]);
    let names: Vec<&str> = listed.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["minimal", "tabular", "torch"]);
    let torch = &listed[2];
    let metric = torch["variables"].as_array().unwrap().iter().find(|v| v["name"] == "metric").unwrap();
    assert_eq!(metric["type"], "choice (val_loss|val_accuracy)");
    assert_eq!(metric["default"], "val_loss");
    let csv = lab.ok(&["templates", "--templates", &templates(), "--format", "csv"]);
    assert!(csv.contains("budget_seconds,int,60"), "{csv}");
}

#[test]
fn leaves_lists_a_malformed_leaf_with_its_error_and_still_lists_the_others() {
    let lab = TestLab::new();
    new_leaf(&lab, "alpha", "minimal");
    new_leaf(&lab, "beta", "torch");
    let manifest = lab.path("leaves/beta/leaf.yaml");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(&manifest, text.replace("version: 1\n", "version: 1\nbogus: 1\n")).unwrap();
    let out = lab.cmd(&["leaves", "--json"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not be loaded"));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["leaf"], "alpha");
    assert_eq!(rows[0]["metric"], "val_mse");
    assert_eq!(rows[0]["error"], Value::Null);
    assert_eq!(rows[1]["leaf"], "beta");
    let error = rows[1]["error"].as_str().unwrap();
    assert!(
        error.contains("leaves/beta/leaf.yaml") && error.contains("unknown field `bogus`") && error.contains("line 4"),
        "{error}"
    );
}

#[test]
fn lock_status_is_ok_changed_or_missing() {
    let lab = TestLab::new();
    for name in ["a-ok", "b-changed", "c-missing"] {
        new_leaf(&lab, name, "tabular");
    }
    fs::write(lab.path("leaves/b-changed/prepare.py"), "tampered\n").unwrap();
    fs::remove_file(lab.path("leaves/c-missing/leaf.lock")).unwrap();
    let rows = lab.json(&["leaves"]);
    let states: Vec<(&str, &str)> =
        rows.as_array().unwrap().iter().map(|r| (r["leaf"].as_str().unwrap(), r["lock"].as_str().unwrap())).collect();
    assert_eq!(states, [("a-ok", "ok"), ("b-changed", "changed"), ("c-missing", "missing")]);

    let shown = lab.json(&["show", "b-changed"]);
    assert_eq!(shown["lock"], "changed");
    let files = shown["files"].as_array().unwrap();
    let role =
        |path: &str| files.iter().find(|f| f["path"] == path).map(|f| (f["role"].clone(), f["lock"].clone())).unwrap();
    assert_eq!(role("prepare.py"), (Value::from("frozen"), Value::from("modified")));
    assert_eq!(role("model.py"), (Value::from("mutable"), Value::Null));
    assert_eq!(role("leaf.lock"), (Value::from("lock"), Value::Null));

    assert_eq!(lab.ok(&["lock", "b-changed"]), "changed prepare.py\n");
    assert_eq!(
        lab.ok(&["lock", "c-missing"]),
        "added leaf.yaml\nadded prepare.py\nadded program.md\nadded requirements.txt\n"
    );
    let rows = lab.json(&["leaves"]);
    assert!(rows.as_array().unwrap().iter().all(|r| r["lock"] == "ok"), "{rows}");
}

#[test]
fn check_reports_every_problem_at_once() {
    let lab = TestLab::new();
    new_leaf(&lab, "demo", "minimal");
    let manifest = lab.path("leaves/demo/leaf.yaml");
    let text = fs::read_to_string(&manifest)
        .unwrap()
        .replace("name: demo", "name: other")
        .replace("mutable: [train.py]", "mutable: [train.py, model/*.py]")
        .replace("requires: [\"numpy>=1.26\"]", "requires: []");
    fs::write(&manifest, text).unwrap();
    let program = lab.path("leaves/demo/program.md");
    fs::write(&program, fs::read_to_string(&program).unwrap().replace("## 5. Levers worth pulling", "## 5. Ideas"))
        .unwrap();
    fs::remove_file(lab.path("leaves/demo/prepare.py")).unwrap();
    let (code, rows, stderr) = check(&lab, &["demo"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("check failed"), "{stderr}");
    let problems: Vec<&str> = rows.iter().map(|r| r["problem"].as_str().unwrap()).collect();
    for expected in [
        "differs from the directory name `demo`",
        "section `## 5. Levers worth pulling` is missing",
        "placeholder",
        "mutable glob `model/*.py` matches no file",
        "frozen glob `prepare.py` matches no file",
        "entry.data module `prepare` has no file `prepare.py`",
        "`prepare.py` is locked but missing",
        "`leaf.yaml` changed since the lock",
        "`program.md` changed since the lock",
        "python.requires is empty",
    ] {
        assert!(problems.iter().any(|p| p.contains(expected)), "missing `{expected}` in {problems:#?}");
    }
}

#[test]
fn check_all_walks_only_the_leaves_directory_and_reports_strays() {
    let lab = TestLab::new();
    new_leaf(&lab, "alpha", "minimal");
    new_leaf(&lab, "beta", "tabular");
    describe_task(&lab, "alpha");
    describe_task(&lab, "beta");
    lab.write("tests/golden/x/leaf.yaml", "not: a leaf\n");
    lab.write("leaves/.venv/lib/leaf.yaml", "not: a leaf\n");
    lab.write("leaves/_archive/old/leaf.yaml", "not: a leaf\n");
    let (code, rows, _) = check(&lab, &["--all"]);
    assert_eq!(code, 0, "{rows:?}");
    assert_eq!(rows.len(), 2);
    lab.write("leaves/gamma/program.md", "# forgot the manifest\n");
    let (code, rows, _) = check(&lab, &["--all"]);
    assert_eq!(code, 1);
    assert_eq!(rows[2]["leaf"], "gamma");
    assert!(rows[2]["problem"].as_str().unwrap().contains("no leaf.yaml"));
    let stderr = lab.fails(&["check", "nope"], 2);
    assert!(stderr.contains("no leaf `nope`"), "{stderr}");
}

#[test]
fn typed_keeps_are_never_a_leaf_best_and_goals_come_from_the_manifest() {
    let lab = TestLab::new();
    new_leaf(&lab, "fit", "minimal");
    lab.ok(&["new", "spiral", "--template", "torch", "--templates", &templates(), "--set", "metric=val_accuracy"]);
    for (leaf, metrics) in [
        ("fit", r#"{"val_mse": 0.5}"#),
        ("fit", r#"{"val_mse": 0.25}"#),
        ("spiral", r#"{"val_accuracy": 0.7}"#),
        ("spiral", r#"{"val_accuracy": 0.9}"#),
    ] {
        let h = lab.ok(&["hypothesis", "try", "-m", "because", "--leaf", leaf]);
        let e = lab.ok(&["experiment", h.trim(), "--leaf", leaf]);
        lab.ok(&["result", e.trim(), "-v", "keep", "--metrics", metrics]);
    }
    // Every keep here was typed with `lab result`: no harness run, so no best.
    let rows = lab.json(&["leaves"]);
    assert_eq!(
        (rows[0]["leaf"].as_str(), rows[0]["best"].as_f64(), rows[0]["experiments"].as_u64()),
        (Some("fit"), None, Some(2))
    );
    assert_eq!((rows[1]["goal"].as_str(), rows[1]["best"].as_f64()), (Some("maximize"), None));
    assert!(rows[0]["last_activity"].as_str().is_some_and(|t| t.ends_with('Z')));
    let context = lab.json(&["context", "--leaf", "spiral"]);
    assert_eq!(context["best"], serde_json::json!([]));
    let reported = &context["reported"][0];
    assert_eq!((reported["goal"].as_str(), reported["value"].as_f64()), (Some("maximize"), Some(0.9)));
    let shown = lab.json(&["show", "fit"]);
    assert_eq!((shown["stats"]["best"].clone(), shown["stats"]["kept"].as_u64()), (serde_json::Value::Null, Some(2)));
    assert_eq!(shown["recent"].as_array().unwrap().len(), 2);
}

#[test]
fn requirements_lock_pins_every_package_the_lab_and_its_leaves_declare() {
    // A leaf added without `scripts/lock` would install whatever PyPI has that day.
    let root = repo_root();
    let lock = fs::read_to_string(root.join("requirements.lock")).unwrap();
    let normal = |name: &str| name.to_ascii_lowercase().replace(['_', '.'], "-");
    let pinned: Vec<String> = lock
        .lines()
        .filter_map(|line| line.split_once("=="))
        .filter(|(name, _)| !name.starts_with(' ') && !name.starts_with('#'))
        .map(|(name, _)| normal(name))
        .collect();
    let mut files = vec![root.join("requirements.txt")];
    files.extend(fs::read_dir(root.join("leaves")).unwrap().map(|e| e.unwrap().path().join("requirements.txt")));
    for file in files.into_iter().filter(|f| f.is_file()) {
        for line in fs::read_to_string(&file).unwrap().lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let name = line.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))).next();
            let name = normal(name.unwrap_or_default());
            assert!(
                pinned.contains(&name),
                "{}: `{name}` is not in requirements.lock: run scripts/lock",
                file.display()
            );
        }
    }
    assert!(lock.contains("--hash=sha256:"), "the lock carries hashes");
}
