//! Golden scaffolds: every template in `templates/`, rendered by the real
//! binary (`lab new example --template T` with the template's defaults) into a
//! fresh lab root, equals the tree checked in under `tests/golden/T/` byte for
//! byte: the same files, the same contents.
//!
//! After a deliberate change to a template, rewrite the goldens with
//! `LAB_BLESS=1 cargo test -p lab --test golden` and review the diff.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{TestLab, repo_root};

/// Every file below `dir`, relative and sorted.
fn tree(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() { walk(&path, out) } else { out.push(path) }
        }
    }
    let mut files = Vec::new();
    if dir.is_dir() {
        walk(dir, &mut files);
    }
    let mut files: Vec<PathBuf> = files.into_iter().map(|p| p.strip_prefix(dir).unwrap().to_path_buf()).collect();
    files.sort();
    files
}

fn template_names() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(repo_root().join("templates"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(['_', '.']))
        .collect();
    names.sort();
    names
}

/// The first line where two texts differ, for a readable failure.
fn first_difference(expected: &[u8], actual: &[u8]) -> String {
    let (e, a) = (String::from_utf8_lossy(expected), String::from_utf8_lossy(actual));
    let mut lines = e.lines().zip(a.lines()).enumerate();
    match lines.find(|(_, (x, y))| x != y) {
        Some((n, (x, y))) => format!("line {}:\n  golden:   {x}\n  rendered: {y}", n + 1),
        None => format!("lengths differ: golden {} lines, rendered {}", e.lines().count(), a.lines().count()),
    }
}

#[test]
fn every_template_renders_its_golden_tree() {
    let bless = std::env::var_os("LAB_BLESS").is_some_and(|v| v == "1");
    let templates = repo_root().join("templates").display().to_string();
    let goldens = repo_root().join("tests/golden");
    let mut failures = Vec::new();
    for name in template_names() {
        let lab = TestLab::new();
        lab.ok(&["new", "example", "--template", &name, "--templates", &templates]);
        let rendered = lab.path("leaves/example");
        let golden = goldens.join(&name);
        if bless {
            let _ = fs::remove_dir_all(&golden);
            for rel in tree(&rendered) {
                fs::create_dir_all(golden.join(&rel).parent().unwrap()).unwrap();
                fs::copy(rendered.join(&rel), golden.join(&rel)).unwrap();
            }
            continue;
        }
        let (expected, actual) = (tree(&golden), tree(&rendered));
        if expected != actual {
            failures.push(format!("{name}: golden files {expected:?}, rendered {actual:?}"));
            continue;
        }
        for rel in &expected {
            let (e, a) = (fs::read(golden.join(rel)).unwrap(), fs::read(rendered.join(rel)).unwrap());
            if e != a {
                failures.push(format!("{name}/{}: {}", rel.display(), first_difference(&e, &a)));
            }
        }
    }
    let golden_dirs: Vec<String> = fs::read_dir(&goldens)
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    for stale in golden_dirs.iter().filter(|g| !template_names().contains(g)) {
        failures.push(format!("tests/golden/{stale} has no template"));
    }
    assert!(
        failures.is_empty(),
        "rendered templates differ from tests/golden (LAB_BLESS=1 rewrites them):\n{}",
        failures.join("\n")
    );
}
