//! CONTRIBUTING.md followed literally on a fresh clone of this repository: a
//! leaf scaffolded from a template, locked, checked, committed, then
//! `scripts/check-leaf`, which does what CI does for it. The clone is of the
//! committed HEAD, as CI's is; the binary under test stands in for the
//! release build (`LAB_BIN`), and the repository's .venv for the clone's.

mod common;

use common::{TestLab, repo_root, require_venv};

#[test]
fn a_new_leaf_goes_from_lab_new_to_what_ci_runs_as_contributing_says() {
    require_venv();
    let lab = TestLab::empty();
    let clone = lab.path("clone");
    let git = |dir: &std::path::Path, args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    git(lab.root(), &["clone", "-q", "--no-hardlinks", repo_root().to_str().unwrap(), "clone"]);
    git(&clone, &["config", "user.name", "contributor"]);
    git(&clone, &["config", "user.email", "contributor@lab.invalid"]);
    let lab_in_clone = |args: &[&str]| {
        let out = lab.std_cmd_in(&clone, args).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "lab {args:?}:\n{text}");
        text
    };
    // 1. Scaffold it.
    lab_in_clone(&["new", "my-leaf", "--template", "minimal", "--set", "budget_seconds=120"]);
    // 2. Make it yours: Section 1 of program.md without the placeholder comment
    // and the paragraph under it, saying what the leaf is for.
    let program = clone.join("leaves/my-leaf/program.md");
    let text = std::fs::read_to_string(&program).unwrap();
    let text = text.replace("<!-- lab: describe the task here, then delete this line -->\n", "");
    let start = text.find("Replace this paragraph before the first run").expect("the template's paragraph");
    let end = start + text[start..].find("\n\n").expect("a paragraph ends");
    let task = "A smooth 1-D function from noisy samples: `val_mse` against the noiseless function.";
    std::fs::write(&program, format!("{}{task}{}", &text[..start], &text[end..])).unwrap();
    // 3. Lock and check, commit, then what CI runs.
    lab_in_clone(&["lock", "my-leaf"]);
    lab_in_clone(&["check", "my-leaf"]);
    git(&clone, &["add", "--", "leaves/my-leaf"]);
    git(&clone, &["commit", "-qm", "Add leaf my-leaf"]);
    let check_leaf = |name: &str, venv: &std::path::Path| {
        std::process::Command::new(clone.join("scripts/check-leaf"))
            .arg(name)
            .current_dir(&clone)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", lab.root())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("LAB_BIN", assert_cmd::cargo::cargo_bin("lab"))
            .env("LAB_VENV", venv)
            .env("TMPDIR", lab.root())
            .output()
            .unwrap()
    };
    let venv = repo_root().join(".venv");
    let out = check_leaf("my-leaf", &venv);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "scripts/check-leaf my-leaf:\n{}\n{stderr}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr.contains("my-leaf passes what CI runs for it"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("smoke check passed"), "{stderr}");
    assert!(!clone.join(".lab/runs").exists(), "the clone's own research log is never written");
    // A leaf that is not there is bad input, named.
    let missing = check_leaf("no-such-leaf", &venv);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no leaves/no-such-leaf/leaf.yaml"));
    // A LAB_VENV without uv is named, not passed over for a .venv that scripts/setup builds in the clone.
    let bare = lab.path("bare-venv");
    std::fs::create_dir(&bare).unwrap();
    let out = check_leaf("my-leaf", &bare);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("LAB_VENV={} has no bin/uv", bare.display())), "{stderr}");
    assert!(!clone.join(".venv").exists(), "scripts/setup did not run: {stderr}");
}
