//! Shared harness for end-to-end tests: the real `lab` binary in a temp lab root
//! with a cleared environment, a pinned HOME, hermetic git and wide tables.
//!
//! Each test file does `mod common;` and builds a [`TestLab`].

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use tempfile::TempDir;

pub struct TestLab {
    pub tmp: TempDir,
}

impl TestLab {
    /// A fresh directory made a lab root with `lab init`.
    pub fn new() -> Self {
        let lab = Self::empty();
        lab.ok(&["init"]);
        lab
    }

    /// A fresh directory that is not a lab root yet.
    pub fn empty() -> Self {
        Self { tmp: tempfile::Builder::new().prefix("lab-test").tempdir().unwrap() }
    }

    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    /// `lab ARGS` in the lab root.
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_in(self.root(), args)
    }

    /// `lab ARGS` in `dir`, with nothing from the caller's environment but PATH.
    pub fn cmd_in(&self, dir: &Path, args: &[&str]) -> Command {
        Command::from_std(self.std_cmd_in(dir, args))
    }

    /// The same as a plain `std::process::Command`, to spawn and signal.
    pub fn std_cmd_in(&self, dir: &Path, args: &[&str]) -> std::process::Command {
        self.std_cmd_of(&assert_cmd::cargo::cargo_bin("lab"), dir, args)
    }

    /// The same with another copy of the binary (an installed one, far from the source tree).
    pub fn std_cmd_of(&self, binary: &Path, dir: &Path, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(binary);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.root())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("LAB_VENV", repo_root().join(".venv"))
            // Tables are read whole here: assertions are about what a table says, and
            // fitting to a width is tested where it is the point (memory.rs sets COLUMNS).
            .env("COLUMNS", "1000")
            .current_dir(dir)
            .args(args);
        cmd
    }

    /// Run and require exit 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert_success(&out, args);
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run and require the given exit code; returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.cmd(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "lab {args:?}: expected exit {code}\nstderr: {stderr}");
        stderr
    }

    /// Run and require the given exit code; returns stdout and stderr (a refusal can still print a report).
    pub fn exits(&self, args: &[&str], code: i32) -> (String, String) {
        let out = self.cmd(args).output().unwrap();
        let (stdout, stderr) =
            (String::from_utf8(out.stdout).unwrap(), String::from_utf8_lossy(&out.stderr).into_owned());
        assert_eq!(out.status.code(), Some(code), "lab {args:?}: expected exit {code}\nstderr: {stderr}");
        (stdout, stderr)
    }

    /// The research database opened directly, as any other program (or an
    /// attacker with a shell) would: without lab's SQL functions.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path(".lab/lab.db")).unwrap()
    }

    /// A database file of the lab's directory (a fixture to import), opened directly.
    pub fn db_at(&self, rel: &str) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path(rel)).unwrap()
    }

    /// insta settings for output that names this lab: its root, times, sha256s
    /// (chain hashes, comparison keys), hosts, pids, commits and sandbox statuses redacted.
    pub fn redactions(&self) -> insta::Settings {
        let mut settings = insta::Settings::clone_current();
        let root = self.root().canonicalize().unwrap();
        for (pattern, with) in [
            (regex_escape(&root.display().to_string()), "[ROOT]"),
            (regex_escape(&self.root().display().to_string()), "[ROOT]"),
            // The lab's name defaults to its directory's.
            (regex_escape(&root.file_name().unwrap().to_string_lossy()), "[LAB]"),
            (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ".to_owned(), "[TIME]"),
            (r"\b[0-9a-f]{64}\b".to_owned(), "[SHA256]"),
            (r"\b[0-9a-f]{40}\b".to_owned(), "[COMMIT]"),
            (r"\b[0-9a-f]{12}\b".to_owned(), "[SHORT]"),
            (r#""(host|pid)": ("[^"]*"|\d+)"#.to_owned(), r#""$1": "[$1]""#),
            // What the kernel enforced depends on the machine (a Landlock ABI, or none).
            (r#""sandbox": "[^"]*""#.to_owned(), r#""sandbox": "[sandbox]""#),
        ] {
            settings.add_filter(&pattern, with);
        }
        settings.set_snapshot_path(repo_root().join("lab/tests/snapshots"));
        settings.set_prepend_module_to_snapshot(false);
        settings
    }

    /// Run `lab ARGS --json` and parse stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(&args)).unwrap()
    }

    /// `lab run ARGS --json -q`, requiring exit `code` (0 for a keep or a discard, 4 for a crash).
    pub fn run(&self, args: &[&str], code: i32) -> serde_json::Value {
        let args = [&["run"], args, &["--json", "-q"]].concat();
        let (stdout, stderr) = self.exits(&args, code);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"))
    }

    /// Replace `from` by `to` in a file of the lab (the edit must apply).
    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert!(text.contains(from), "{rel} has no `{from}`");
        self.write(rel, &text.replacen(from, to, 1));
    }

    /// `git ARGS` in the lab root, hermetic.
    pub fn git(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .args([
                "-c",
                "user.name=lab-test",
                "-c",
                "user.email=lab-test@example.com",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(self.root())
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// `text` as a regex that matches it literally.
fn regex_escape(text: &str) -> String {
    text.chars().map(|c| if r"\.+*?()|[]{}^$".contains(c) { format!("\\{c}") } else { c.to_string() }).collect()
}

pub fn assert_success(out: &Output, args: &[&str]) {
    assert!(
        out.status.success(),
        "lab {args:?} failed with {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The repository root (the workspace), for fixtures and the venv.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The tallies kept by triggers equal the counts recomputed from the rows.
pub fn assert_tallies_exact(conn: &rusqlite::Connection) {
    let rows = |sql: &str| -> Vec<(String, String, i64)> {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let recomputed = rows(
        "SELECT * FROM (
            SELECT coalesce(leaf, '') AS l, 'hypotheses:' || status AS k, COUNT(*) FROM hypotheses GROUP BY 1, 2
            UNION ALL SELECT coalesce(leaf, ''), 'experiments', COUNT(*) FROM experiments GROUP BY 1
            UNION ALL SELECT coalesce(leaf, ''), 'results:' || verdict, COUNT(*) FROM results WHERE superseded_by IS NULL GROUP BY 1, 2
            UNION ALL SELECT coalesce(leaf, ''), 'kept-metric:' || name, COUNT(*) FROM metrics WHERE verdict = 'keep' GROUP BY 1, 2
         ) ORDER BY l, k",
    );
    let tallied = rows("SELECT leaf, kind, n FROM tallies WHERE n != 0 ORDER BY leaf, kind");
    assert_eq!(tallied, recomputed);
}

/// The venv these tests need; missing numpy is a failure with a fix, not a skip.
pub fn require_venv() {
    let python = repo_root().join(".venv/bin/python");
    let out = std::process::Command::new(&python).args(["-c", "import numpy"]).output();
    let ok = out.as_ref().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "these tests need {} with numpy installed: run scripts/setup (python3 -m venv .venv && .venv/bin/pip install numpy)\n{out:?}",
        python.display()
    );
}

/// A lab root that is a git repository holding the named fixture leaves, committed.
pub fn lab_with(leaves: &[&str]) -> TestLab {
    require_venv();
    let lab = TestLab::new();
    lab.git(&["init", "-q"]);
    for name in leaves {
        copy_dir(&repo_root().join("lab/tests/fixtures/leaves").join(name), &lab.path(&format!("leaves/{name}")));
    }
    lab.git(&["add", "-A"]);
    lab.git(&["commit", "-qm", "leaves"]);
    lab
}

/// Copy a leaf's files, subdirectories included (its sealed `data/`), but not
/// what runs leave in it (`_archive/`, bytecode caches).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        } else if entry.file_type().unwrap().is_dir() && !matches!(name.to_str(), Some("_archive" | "__pycache__")) {
            copy_dir(&entry.path(), &to.join(&name));
        }
    }
}

/// A PraxLab database as its `lab` script lays it out (column names and types
/// from its schema; some rows lack results, one metric is not a number).
pub fn praxlab_db(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE hypotheses (id TEXT PRIMARY KEY, title TEXT NOT NULL, description TEXT, rationale TEXT,
             mechanism_explanation TEXT, expected_outcome TEXT, status TEXT DEFAULT 'proposed', created_at TEXT NOT NULL);
         CREATE TABLE experiments (id TEXT PRIMARY KEY, hypothesis_id TEXT REFERENCES hypotheses(id), task_id TEXT NOT NULL,
             code_diff TEXT, status TEXT DEFAULT 'pending', created_at TEXT NOT NULL);
         CREATE TABLE results (experiment_id TEXT PRIMARY KEY REFERENCES experiments(id), metrics_json TEXT DEFAULT '{}',
             wall_time_seconds REAL, interpretation TEXT, mechanism_confirmed INTEGER, theory_revision TEXT, verdict TEXT,
             insight TEXT, created_at TEXT NOT NULL);
         INSERT INTO hypotheses VALUES ('h1', 'increase LR', '', 'r', 'faster convergence early', 'bpb down', 'confirmed', '2026-03-01T10:00:00');
         INSERT INTO hypotheses VALUES ('h2', 'deeper model', '', 'more capacity', NULL, '', 'rejected', '2026-03-01T11:00:00');
         INSERT INTO experiments VALUES ('e1', 'h1', 'pretrain', '', 'keep', '2026-03-01T10:05:00');
         INSERT INTO experiments VALUES ('e2', 'h2', 'pretrain', '', 'discard', '2026-03-01T11:05:00');
         INSERT INTO experiments VALUES ('e3', 'h2', 'pretrain', '', 'running', '2026-03-01T12:05:00');
         INSERT INTO results VALUES ('e1', '{\"val_bpb\": 0.993, \"gpu\": \"H100\"}', 300, 'worked', 1, NULL, 'keep', '', '2026-03-01T10:10:00');
         INSERT INTO results VALUES ('e2', '{\"val_bpb\": 1.02}', 300, '', 0, 'depth hurts at 5 min', 'discard', '', '2026-03-01T11:10:00');",
    )
    .unwrap();
}

/// A running `lab serve --port 0` on a test lab, stopped when dropped.
pub struct Server {
    child: std::process::Child,
    /// `127.0.0.1:PORT`
    pub addr: String,
}

impl Server {
    pub fn start(lab: &TestLab) -> Self {
        use std::io::BufRead as _;
        let mut cmd = lab.std_cmd_in(lab.root(), &["serve", "--port", "0"]);
        let mut child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null()).spawn().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().strip_prefix("http://").and_then(|a| a.strip_suffix('/')).unwrap_or_default();
        assert!(addr.starts_with("127.0.0.1:"), "loopback only: {line:?}");
        Self { child, addr: addr.to_owned() }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
