//! Every problem of a leaf, as CI and reviewers see it (`lab check`).
//!
//! Nothing stops at the first problem: a contributor gets the whole list in one
//! run. Each message starts with the file it concerns. A leaf passes when:
//! - `leaf.yaml` parses and validates (its `inputs` included: other leaves'
//!   names and plain file names, artifact mode; see `inputs.rs`), and its
//!   `name` is the directory's name;
//! - `program.md` exists, is frozen, and has the seven sections (see `program.rs`)
//!   with Section 1 filled in;
//! - every mutable and every frozen glob matches at least one file, and no file
//!   is matched by both; `leaf.lock` is not mutable;
//! - the entry modules exist as `.py` files (or packages), and the modules of
//!   `data` and `score` are frozen;
//! - `leaf.lock` exists and every frozen file matches it;
//! - `python.requires` is not empty, and a `requirements.txt`, when present,
//!   lists the same requirements (scripts/setup installs from it).

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use super::discover::dir_name;
use super::files::{FileSets, Resolved};
use super::lock::{self, Lock};
use super::manifest::{self, Manifest, parse_target};
use super::{Leaf, program};

pub const REQUIREMENTS: &str = "requirements.txt";

/// Every problem of the leaf in `dir`; empty when it passes.
pub fn check(dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let manifest = check_manifest(dir, &mut problems);
    check_program(dir, manifest.as_ref(), &mut problems);
    if let Some(manifest) = manifest {
        let leaf = Leaf { dir: dir.to_path_buf(), manifest };
        if let Ok(sets) = leaf.file_sets() {
            match sets.resolve(dir) {
                Ok(resolved) => {
                    check_files(&leaf, &sets, &resolved, &mut problems);
                    check_lock(&leaf, &resolved, &mut problems);
                }
                Err(e) => problems.push(format!("cannot list the files: {e:#}")),
            }
        }
        check_python(&leaf, &mut problems);
    }
    problems
}

fn check_manifest(dir: &Path, problems: &mut Vec<String>) -> Option<Manifest> {
    let path = dir.join(manifest::FILE);
    let text = match crate::yaml::read(&path) {
        Ok(text) => text,
        Err(e) => {
            problems.push(format!("{}: {}", manifest::FILE, e.message));
            return None;
        }
    };
    let manifest = match Manifest::parse_unchecked(&text, Path::new(manifest::FILE)) {
        Ok(m) => m,
        Err(e) => {
            problems.push(e.message);
            return None;
        }
    };
    problems.extend(manifest.problems().into_iter().map(|p| format!("{}: {p}", manifest::FILE)));
    let dir_name = dir_name(dir);
    if manifest.name != dir_name {
        problems.push(format!(
            "{}: name `{}` differs from the directory name `{dir_name}` (they must be equal)",
            manifest::FILE,
            manifest.name
        ));
    }
    Some(manifest)
}

fn check_program(dir: &Path, manifest: Option<&Manifest>, problems: &mut Vec<String>) {
    match fs::read_to_string(dir.join(program::FILE)) {
        Ok(text) => problems.extend(program::problems(&text)),
        Err(e) => problems.push(format!("{}: cannot read: {e}", program::FILE)),
    }
    let frozen = manifest
        .and_then(|m| FileSets::new(&m.files, &m.sealed.leaf).ok())
        .map(|s| s.is_frozen(Path::new(program::FILE)));
    if frozen == Some(false) {
        problems
            .push(format!("{}: must be frozen (list it in files.frozen): it is the agent's program", program::FILE));
    }
}

fn check_files(leaf: &Leaf, sets: &FileSets, resolved: &Resolved, problems: &mut Vec<String>) {
    let y = manifest::FILE;
    for glob in &resolved.unmatched_mutable {
        problems.push(format!("{y}: mutable glob `{glob}` matches no file"));
    }
    for glob in &resolved.unmatched_frozen {
        problems.push(format!("{y}: frozen glob `{glob}` matches no file"));
    }
    for path in resolved.overlapping() {
        problems.push(format!("{y}: `{path}` is matched by both a mutable and a frozen glob"));
    }
    if sets.is_mutable(Path::new(lock::FILE)) {
        problems.push(format!("{y}: a mutable glob matches `{}`, which only `lab lock` may write", lock::FILE));
    }
    let entry = &leaf.manifest.entry;
    for (key, target) in entry.targets() {
        // What produces the data and the score must be code the agent cannot change.
        let must_be_frozen = matches!(key, "data" | "score");
        let Some((module, _)) = parse_target(target) else { continue };
        let file = module.replace('.', "/") + ".py";
        let package = module.replace('.', "/") + "/__init__.py";
        let Some(found) = [file.as_str(), package.as_str()].into_iter().find(|f| leaf.dir.join(f).is_file()) else {
            problems.push(format!("{y}: entry.{key} module `{module}` has no file `{file}`"));
            continue;
        };
        if must_be_frozen && !sets.is_frozen(Path::new(found)) {
            problems
                .push(format!("{y}: entry.{key} lives in `{found}`, which is not frozen: the agent could change it"));
        }
    }
}

fn check_lock(leaf: &Leaf, resolved: &Resolved, problems: &mut Vec<String>) {
    let hint = format!("review, then `lab lock {}`", leaf.name());
    let recorded = match Lock::read(&leaf.dir) {
        Ok(Some(lock)) => lock,
        Ok(None) => return problems.push(format!("{}: missing ({hint})", lock::FILE)),
        Err(e) => return problems.push(format!("{e:#}")),
    };
    let mut now = Lock::default();
    for path in resolved.frozen() {
        match fs::read(leaf.dir.join(path)) {
            Ok(bytes) => now.files.insert(path.to_owned(), crate::fingerprint::sha256_hex(&bytes)),
            Err(e) => return problems.push(format!("{path}: cannot read: {e}")),
        };
    }
    for change in recorded.diff(&now, |p| leaf.dir.join(p).exists()) {
        problems.push(format!("{}: {change} ({hint})", lock::FILE));
    }
}

fn check_python(leaf: &Leaf, problems: &mut Vec<String>) {
    let requires = &leaf.manifest.python.requires;
    if requires.iter().all(|r| r.trim().is_empty()) {
        problems.push(format!("{}: python.requires is empty: declare the packages the leaf imports", manifest::FILE));
        return;
    }
    let Ok(text) = fs::read_to_string(leaf.dir.join(REQUIREMENTS)) else { return };
    let listed: BTreeSet<&str> =
        text.lines().map(|l| l.split('#').next().unwrap_or("").trim()).filter(|l| !l.is_empty()).collect();
    let declared: BTreeSet<&str> = requires.iter().map(|r| r.trim()).collect();
    if listed != declared {
        let show = |s: &BTreeSet<&str>| s.iter().copied().collect::<Vec<_>>().join(", ");
        problems.push(format!(
            "{REQUIREMENTS}: lists [{}] but leaf.yaml python.requires declares [{}]",
            show(&listed),
            show(&declared)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "version: 1
name: demo
description: d
metric: { name: loss, goal: minimize }
files: { mutable: ['*.py', leaf.lock], frozen: [program.md] }
entry: { mode: artifact, data: 'pkg.data:data', train: 'train:train', infer: 'train:infer', score: 'pkg.score:score' }
budget: { full: 1m, smoke: 10s }
python: { requires: [numpy, torch] }
";

    #[test]
    fn an_unfrozen_evaluation_a_mutable_lock_and_stale_requirements_are_problems() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("demo");
        for (rel, text) in [
            ("leaf.yaml", MANIFEST),
            ("train.py", ""),
            ("pkg/score/__init__.py", ""),
            ("pkg/data.py", ""),
            ("requirements.txt", "numpy  # arrays\n"),
            ("program.md", "# demo\n"),
        ] {
            std::fs::create_dir_all(dir.join(rel).parent().unwrap()).unwrap();
            std::fs::write(dir.join(rel), text).unwrap();
        }
        let problems = check(&dir);
        let has = |s: &str| problems.iter().any(|p| p.contains(s));
        assert!(has("entry.score lives in `pkg/score/__init__.py`, which is not frozen"), "{problems:#?}");
        assert!(has("entry.data lives in `pkg/data.py`, which is not frozen"), "{problems:#?}");
        assert!(has("a mutable glob matches `leaf.lock`"), "{problems:#?}");
        assert!(
            has("requirements.txt: lists [numpy] but leaf.yaml python.requires declares [numpy, torch]"),
            "{problems:#?}"
        );
        assert!(has("leaf.lock: missing"), "{problems:#?}");
        assert!(has("section `## 7. Output format` is missing"), "{problems:#?}");
        assert!(!has("entry.train"), "train.py exists: {problems:#?}");
    }

    #[test]
    fn a_missing_manifest_is_one_problem_among_others() {
        let tmp = tempfile::tempdir().unwrap();
        let problems = check(tmp.path());
        assert!(problems[0].starts_with("leaf.yaml: cannot read"), "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("program.md: cannot read")), "{problems:?}");
    }
}
