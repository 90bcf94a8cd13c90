//! End-to-end tests of bad input that used to get through: where an export may
//! write, manifests too large or too deep to parse, imports that cannot be
//! mapped or were already made, databases that are not lab's, leaf names that
//! name no leaf, control characters in tables, duplicate metric keys, empty
//! budgets, and a stdout that is closed or full.

mod common;

use std::os::unix::fs::symlink;

use common::{TestLab, praxlab_db};

#[test]
fn export_writes_only_a_regular_file_or_a_new_path() {
    let lab = TestLab::new();
    lab.ok(&["hypothesis", "a", "-m", "b"]);
    nix::unistd::mkfifo(&lab.path("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    symlink(lab.path("target.jsonl"), lab.path("link")).unwrap();
    std::fs::create_dir(lab.path("dir")).unwrap();
    for (name, what) in [("fifo", "a FIFO"), ("link", "a symbolic link"), ("dir", "a directory")] {
        let err = lab.fails(&["export", "-o", name], 2);
        assert!(err.contains(&format!("{}` is {what}", lab.path(name).display())), "{name}: {err}");
    }
    assert!(lab.path("fifo").exists() && !lab.path("target.jsonl").exists(), "nothing was replaced");
    assert!(std::fs::symlink_metadata(lab.path("link")).unwrap().file_type().is_symlink());
    lab.ok(&["export", "-o", "new.jsonl"]);
    lab.ok(&["export", "-o", "new.jsonl"]);
}

#[test]
fn manifests_too_large_or_too_deep_are_refused_before_parsing() {
    let lab = TestLab::new();
    lab.write("leaves/deep/leaf.yaml", &format!("version: 1\nname: {}\n", "[".repeat(100_000)));
    let err = lab.fails(&["show", "deep"], 2);
    assert!(err.contains("leaves/deep/leaf.yaml` nests deeper than 64 levels at line 2"), "{err}");
    let (table, _) = lab.exits(&["check", "deep"], 1);
    assert!(table.contains("nests deeper than 64 levels"), "{table}");
    lab.write("leaves/big/leaf.yaml", &format!("version: 1\n#{}\n", "x".repeat(1 << 20)));
    let err = lab.fails(&["show", "big"], 2);
    assert!(err.contains("leaves/big/leaf.yaml` is larger than 1024 KiB"), "{err}");
    lab.write("lab.yaml", &format!("version: 1\nname: {}\n", "{a: ".repeat(1000)));
    let err = lab.fails(&["log"], 2);
    assert!(err.contains("lab.yaml` nests deeper than 64 levels"), "{err}");
}

#[test]
fn a_closed_stdout_ends_quietly_and_a_full_one_shows_what_was_recorded() {
    let lab = TestLab::new();
    for args in [&["hypothesis", "a", "-m", "b"][..], &["context"], &["log", "--format", "jsonl"]] {
        let (read, write) = nix::unistd::pipe().unwrap();
        drop(read); // the reader is gone before lab writes: `lab ... | head -0`
        let out = lab.std_cmd_in(lab.root(), args).stdout(write).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "lab {args:?}: {stderr}");
        assert!(!stderr.contains("error") && !stderr.contains("panicked"), "lab {args:?}: {stderr}");
    }
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = lab.std_cmd_in(lab.root(), &["hypothesis", "c", "-m", "d", "--json"]).stdout(full).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot write to stdout: No space left on device"), "{stderr}");
    assert!(stderr.contains(r#""hypothesis": "h2""#) && !stderr.contains("panicked"), "{stderr}");
    let titles: i64 = lab.db().query_row("SELECT COUNT(*) FROM hypotheses", [], |r| r.get(0)).unwrap();
    assert_eq!(titles, 2, "each hypothesis recorded once");
}
