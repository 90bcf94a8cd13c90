//! Candidates whose diff cannot be a real improvement: one that changes no
//! behaviour (`no-op`), only changes seeds (`seed-only`) or only touches
//! evaluation paths (`eval-only`). The gate never keeps a flagged candidate on
//! a single run: a rerun of the same code, a lucky seed or an evaluation edit
//! looks like a gain on one run and is noise or a moved goal post; in
//! deterministic code, where reruns agree exactly and so cannot add a run, a
//! flagged candidate is never kept at all. Pure text analysis of a `git
//! diff` (from the leader's code, `keep::candidate_patch`), no I/O.
//!
//! Rules, deliberately conservative (a false flag only costs repeats; a
//! missed one is still judged on its noise):
//! - `no-op`: no diff at all, or every hunk reads the same on both sides once
//!   blank lines, trailing whitespace and, in Python files, comments and the
//!   whitespace inside a line (its indentation kept) are set aside. A line
//!   with a quote in it is compared as written, so a changed string is a
//!   change. Binary files, renames and mode changes (hunks-free sections) are
//!   changes. A Python rewrite with the same syntax tree is found at launch
//!   by `equivalent` (a parse, not text); a renamed local is not detected.
//! - `eval-only`: every changed file's path inside the leaf contains `eval`.
//! - `seed-only`: every changed line (comments and blank lines aside) either
//!   pairs with a line on the other side that is the same once numbers and
//!   seed-like identifiers (containing `seed` or `random_state`) are blanked, or
//!   is a seeding statement made only of seed-like identifiers, numbers and
//!   the names of random modules (`np.random.seed(1)`, `torch.manual_seed(0)`).

use std::collections::BTreeMap;

pub const NO_OP: &str = "no-op";
pub const SEED_ONLY: &str = "seed-only";
pub const EVAL_ONLY: &str = "eval-only";
/// Flags of a candidate that can only differ from the leader by luck: no
/// behaviour changed, or only a seed. Deterministic code repeats such a
/// candidate's luck exactly, so it is never kept there (`judge::apply_flags`).
pub const LUCK: [&str; 2] = [NO_OP, SEED_ONLY];
/// The code of an earlier discarded candidate, run again (found by the
/// runs' file hashes, not by this module's text analysis): its runs are pooled
/// with the earlier ones, so a resubmission is one more look, not a fresh draw.
pub const RESUBMITTED: &str = "resubmitted";

/// Names that may appear in a seeding statement besides seed-like identifiers.
const RANDOM_NAMES: &[&str] =
    &["random", "np", "numpy", "torch", "cuda", "lab", "rng", "default_rng", "tf", "jax", "key", "prngkey", "os"];

/// The flags of a candidate whose diff against HEAD is `patch` (`git diff`
/// format); `leaf_prefix` is the leaf's path inside the repository
/// (e.g. `leaves/ok/`), stripped before looking for `eval`.
pub fn diff_flags(patch: &str, leaf_prefix: &str) -> Vec<String> {
    let mut files = Vec::new();
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    for line in patch.lines() {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            let path = rest.rsplit(" b/").next().unwrap_or(rest);
            files.push(path.strip_prefix(leaf_prefix).unwrap_or(path).to_lowercase());
        } else if line.starts_with("+++") || line.starts_with("---") {
        } else if let Some(text) = line.strip_prefix('+') {
            added.push(text);
        } else if let Some(text) = line.strip_prefix('-') {
            removed.push(text);
        }
    }
    let mut flags = Vec::new();
    if changes_nothing(patch) {
        flags.push(NO_OP.to_owned());
        return flags;
    }
    if files.is_empty() {
        return flags;
    }
    if only_seeds(&removed, &added) {
        flags.push(SEED_ONLY.to_owned());
    }
    if files.iter().all(|f| f.contains("eval")) {
        flags.push(EVAL_ONLY.to_owned());
    }
    flags
}

fn only_seeds(removed: &[&str], added: &[&str]) -> bool {
    let meaningful = |lines: &[&str]| -> Vec<String> {
        // A trailing comment changes nothing the code does.
        let code = |l: &&str| l.split('#').next().unwrap_or_default().trim().to_owned();
        lines.iter().map(code).filter(|l| !l.is_empty()).collect()
    };
    let (removed, added) = (meaningful(removed), meaningful(added));
    if removed.is_empty() && added.is_empty() {
        return false;
    }
    if removed.iter().chain(&added).any(|l| !has_seed_token(l)) {
        return false;
    }
    let mut pending: BTreeMap<String, i64> = BTreeMap::new();
    for line in &removed {
        *pending.entry(normalise(line)).or_default() += 1;
    }
    for line in &added {
        *pending.entry(normalise(line)).or_default() -= 1;
    }
    let unmatched = |line: &String| pending.get(&normalise(line)).is_some_and(|n| *n != 0);
    let (removed, added): (Vec<&String>, Vec<&String>) =
        (removed.iter().filter(|l| unmatched(l)).collect(), added.iter().filter(|l| unmatched(l)).collect());
    let paired = removed.len() == added.len() && removed.iter().zip(&added).all(|(a, b)| differs_only_in_seeds(a, b));
    paired || removed.iter().chain(&added).all(|l| is_seeding_statement(l))
}

/// Whether every file section of `patch` has hunks that read the same on
/// both sides once what cannot change behaviour is set aside (see `no-op`).
fn changes_nothing(patch: &str) -> bool {
    let mut sections = patch.split("\ndiff --git ").filter(|s| !s.trim().is_empty()).peekable();
    if sections.peek().is_none() {
        return true;
    }
    sections.all(|section| {
        let header = section.lines().next().unwrap_or_default();
        let python = header.rsplit(" b/").next().is_some_and(|path| path.ends_with(".py"));
        let mut hunks = section.split("\n@@").skip(1).peekable();
        hunks.peek().is_some()
            && hunks.all(|hunk| {
                let side = |skip: char| -> Vec<String> {
                    hunk.lines()
                        .skip(1)
                        .filter(|l| !l.starts_with(skip) && !l.starts_with('\\'))
                        .filter_map(|l| l.get(1..).and_then(|code| significant(code, python)))
                        .collect()
                };
                side('+') == side('-')
            })
    })
}

/// What of a line can change behaviour: nothing for a blank line or (Python)
/// a comment; else its indentation and its text, inner whitespace and a
/// trailing comment removed where it has no quote.
fn significant(line: &str, python: bool) -> Option<String> {
    let line = line.trim_end();
    let quoted = line.contains(['"', '\'']);
    let code = if python && !quoted { line.split('#').next().unwrap_or_default().trim_end() } else { line };
    if code.trim().is_empty() {
        return None;
    }
    if !python || quoted {
        return Some(code.to_owned());
    }
    let body = code.trim_start();
    let indent = &code[..code.len() - body.len()];
    Some(format!("{indent}{}", body.split_whitespace().collect::<String>()))
}

/// Whether two lines differ only in numbers, operators and seed-like
/// identifiers once their common leading and trailing tokens are set aside
/// (`rng_of(lab.seed())` against `rng_of(lab.seed() + 1)`).
fn differs_only_in_seeds(a: &str, b: &str) -> bool {
    let (a, b) = (tokens(a), tokens(b));
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..].iter().rev().zip(b[prefix..].iter().rev()).take_while(|(x, y)| x == y).count();
    let harmless = |t: &&str| !t.starts_with(|c: char| c.is_alphabetic() || c == '_') || is_seed_word(t);
    a[prefix..a.len() - suffix].iter().chain(&b[prefix..b.len() - suffix]).all(harmless)
}

/// Identifiers and numbers as whole tokens, every other visible character alone.
fn tokens(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        let in_word = c.is_alphanumeric()
            || c == '_'
            || (c == '.' && start.is_some_and(|s: usize| line[s..i].starts_with(|d: char| d.is_ascii_digit())));
        match (in_word, start) {
            (true, None) => start = Some(i),
            (true, Some(_)) => {}
            (false, s) => {
                if let Some(s) = s {
                    out.push(&line[s..i]);
                }
                start = None;
                if !c.is_whitespace() {
                    out.push(&line[i..i + c.len_utf8()]);
                }
            }
        }
    }
    if let Some(s) = start {
        out.push(&line[s..]);
    }
    out
}

fn is_seed_word(word: &str) -> bool {
    let w = word.to_ascii_lowercase();
    w.contains("seed") || w.contains("random_state")
}

fn has_seed_token(line: &str) -> bool {
    words(line).any(|(w, _)| is_seed_word(w))
}

/// Identifiers and numbers, with whether each is a number.
fn words(line: &str) -> impl Iterator<Item = (&str, bool)> {
    line.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .flat_map(|chunk| chunk.split('.').map(move |w| (w, chunk.starts_with(|c: char| c.is_ascii_digit()))))
        .filter(|(w, _)| !w.is_empty())
}

/// The line with numbers as `#` and seed-like identifiers as `$`.
fn normalise(line: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.is_empty() {
            return;
        }
        if word.starts_with(|c: char| c.is_ascii_digit()) {
            out.push('#');
        } else if is_seed_word(word) {
            out.push('$');
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in line.chars() {
        if c.is_alphanumeric() || c == '_' || (c == '.' && word.starts_with(|d: char| d.is_ascii_digit())) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            if !c.is_whitespace() {
                out.push(c);
            }
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Only seed-like identifiers, numbers and random-module names.
fn is_seeding_statement(line: &str) -> bool {
    words(line).all(|(w, number)| number || is_seed_word(w) || RANDOM_NAMES.contains(&w.to_ascii_lowercase().as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(path: &str, removed: &[&str], added: &[&str]) -> String {
        let mut p =
            format!("diff --git a/leaves/x/{path} b/leaves/x/{path}\n--- a/leaves/x/{path}\n+++ b/leaves/x/{path}\n");
        p.push_str("@@ -1,3 +1,3 @@\n def train(lab):\n");
        for l in removed {
            p.push_str(&format!("-{l}\n"));
        }
        for l in added {
            p.push_str(&format!("+{l}\n"));
        }
        p
    }

    /// A file, its removed and added lines, and the flags expected.
    type Case<'a> = (&'a str, &'a [&'a str], &'a [&'a str], Vec<String>);

    #[test]
    fn flags_follow_the_table() {
        let noop = vec![NO_OP.to_owned()];
        let seed = vec![SEED_ONLY.to_owned()];
        let eval = vec![EVAL_ONLY.to_owned()];
        let none: Vec<String> = Vec::new();
        let cases: Vec<Case> = vec![
            (
                "train.py",
                &["    rng = np.random.default_rng(1)"],
                &["    rng = np.random.default_rng(2)"],
                none.clone(),
            ),
            ("train.py", &["    np.random.seed(1)"], &["    np.random.seed(2)"], seed.clone()),
            ("train.py", &["    m = fit(x, random_state=0)"], &["    m = fit(x, random_state=42)"], seed.clone()),
            ("train.py", &["    rng = rng_of(lab.seed())"], &["    rng = rng_of(lab.seed() + 1)"], seed.clone()),
            ("train.py", &[], &["    torch.manual_seed(7)"], seed.clone()),
            ("train.py", &["    SEED = 3  # lucky"], &["    SEED = 4"], seed.clone()),
            ("train.py", &["    m = fit(x, random_state=0)"], &["    m = fit2(x, random_state=0)"], none.clone()),
            ("train.py", &["    SEED = 3", "    lr = 0.1"], &["    SEED = 4", "    lr = 0.2"], none.clone()),
            ("train.py", &["    return {\"w\": 0.25}"], &["    return {\"w\": 0.2}"], none.clone()),
            ("eval_helper.py", &["    k = 5"], &["    k = 6"], eval.clone()),
            ("evaluation/metrics.py", &["    seed = 1"], &["    seed = 2"], vec![SEED_ONLY.into(), EVAL_ONLY.into()]),
            ("train.py", &["# a comment"], &["# another comment"], noop.clone()),
            ("train.py", &["    x=fit( a,b )  # tuned"], &["    x = fit(a, b)", ""], noop.clone()),
            ("train.py", &["    x = fit(a, b)"], &["        x = fit(a, b)"], none.clone()),
            ("train.py", &["    name = 'a b'"], &["    name = 'a  b'"], none.clone()),
            ("train.py", &["    s = '#'  # tag"], &["    s = '#'"], none.clone()),
            ("notes.txt", &["hello"], &["hello   ", ""], noop.clone()),
            ("notes.txt", &["# hello"], &["# hullo"], none.clone()),
        ];
        for (path, removed, added, want) in cases {
            assert_eq!(diff_flags(&patch(path, removed, added), "leaves/x/"), want, "{path} {removed:?} -> {added:?}");
        }
        assert_eq!(diff_flags("", "leaves/x/"), noop, "no diff at all changes nothing");
    }

    #[test]
    fn a_move_across_context_or_a_binary_change_is_a_change() {
        // `a = 1` moves below `b = a`: the same lines, another order.
        let moved = "diff --git a/t.py b/t.py\n--- a/t.py\n+++ b/t.py\n@@ -1,2 +1,2 @@\n-a = 1\n b = a\n+a = 1\n";
        assert!(diff_flags(moved, "").is_empty());
        let binary = "diff --git a/w.npy b/w.npy\nindex 1..2 100644\nBinary files a/w.npy and b/w.npy differ\n";
        assert!(diff_flags(binary, "").is_empty());
        let two = format!("{moved}diff --git a/u.py b/u.py\n--- a/u.py\n+++ b/u.py\n@@ -1 +1 @@\n-# x\n+# y\n");
        assert!(diff_flags(&two, "").is_empty(), "one real change among no-ops is a change");
    }

    #[test]
    fn the_leaf_prefix_is_not_read_as_an_eval_path() {
        let p = "diff --git a/leaves/evals/train.py b/leaves/evals/train.py\n-a = 1\n+a = 2\n";
        assert!(diff_flags(p, "leaves/evals/").is_empty());
        assert_eq!(diff_flags(p, ""), [EVAL_ONLY]);
    }
}
