//! Whether a candidate's Python changes are an equivalent rewrite: every changed
//! `.py` file parses to the same syntax tree as its committed version (`ast.dump`
//! leaves line numbers and formatting out), so the candidate runs the same code
//! however its text moved: reflowed lines, parentheses, quotes, a `pass` written
//! otherwise. The text rules of `flags` miss these; a candidate found equal here
//! is flagged `no-op` like one that changed only comments.
//!
//! The judged code is only parsed, never run: a separate `python -I -S` (no
//! site, no user paths, no `PYTHON*` variables, so nothing of the leaf is
//! imported) reads the sources on stdin. Anything it cannot settle (a file that
//! is not UTF-8 or does not parse, a missing interpreter, more than [`LIMIT`] of
//! parsing) counts as a change: a missed flag only leaves a candidate to be
//! judged on its noise.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use wait_timeout::ChildExt as _;

/// The most time the parse may take before the candidate counts as changed.
pub const LIMIT: Duration = Duration::from_secs(10);

const SCRIPT: &str = r#"
import ast, json, sys

def same(old, new):
    try:
        return ast.dump(ast.parse(old)) == ast.dump(ast.parse(new))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False

pairs = json.load(sys.stdin)
print("equal" if all(same(old, new) for old, new in pairs) else "different")
"#;

/// A changed file: its committed bytes and its snapshotted bytes (`None`: absent on that side).
#[derive(Debug)]
pub struct Change<'a> {
    pub path: &'a Path,
    pub old: Option<&'a [u8]>,
    pub new: Option<&'a [u8]>,
}

/// Whether every change is a Python file present on both sides whose syntax
/// tree is unchanged, as `python` parses it.
pub fn python_unchanged(python: &Path, changes: &[Change<'_>]) -> bool {
    let mut pairs = Vec::new();
    for change in changes {
        let (Some(old), Some(new)) = (change.old, change.new) else { return false };
        let (Ok(old), Ok(new)) = (std::str::from_utf8(old), std::str::from_utf8(new)) else { return false };
        if change.path.extension().is_none_or(|e| e != "py") {
            return false;
        }
        pairs.push((old, new));
    }
    !pairs.is_empty() && parse_equal(python, &pairs).unwrap_or(false)
}

fn parse_equal(python: &Path, pairs: &[(&str, &str)]) -> std::io::Result<bool> {
    let mut child = Command::new(python)
        .args(["-I", "-S", "-c", SCRIPT])
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let input = serde_json::to_vec(pairs).map_err(std::io::Error::other)?;
    let written = child.stdin.take().map(|mut stdin| stdin.write_all(&input));
    let Some(status) = child.wait_timeout(LIMIT)? else {
        let _ = child.kill();
        let _ = child.wait();
        return Ok(false);
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        std::io::Read::read_to_string(&mut stdout, &mut out)?;
    }
    Ok(matches!(written, Some(Ok(()))) && status.success() && out.trim() == "equal")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn python() -> std::path::PathBuf {
        let venv = crate::supervisor::env::find_venv(None).unwrap();
        crate::supervisor::env::python_of(venv.as_ref()).expect("tests run with an interpreter (LAB_VENV)")
    }

    fn unchanged(path: &str, old: &str, new: &str) -> bool {
        let change = Change { path: Path::new(path), old: Some(old.as_bytes()), new: Some(new.as_bytes()) };
        python_unchanged(&python(), &[change])
    }

    #[test]
    fn a_rewrite_to_the_same_syntax_tree_is_unchanged() {
        let old = "def f(x):\n    return (x + 1)\n";
        assert!(unchanged("train.py", old, "def f(x): return x+1  # reflowed\n"));
        assert!(unchanged("train.py", "s = 'a'\n", "s = \"a\"\n"));
    }

    #[test]
    fn any_change_of_behaviour_or_what_cannot_be_parsed_is_a_change() {
        assert!(!unchanged("train.py", "x = 1\n", "x = 2\n"));
        assert!(!unchanged("train.py", "def f():\n    '''doc'''\n", "def f():\n    '''other'''\n"));
        assert!(!unchanged("train.py", "x = 1\n", "x = (\n"));
        assert!(!unchanged("train.yaml", "a: 1\n", "a:  1\n"), "only Python files are parsed");
        let added = Change { path: Path::new("new.py"), old: None, new: Some(b"x = 1\n") };
        assert!(!python_unchanged(&python(), &[added]));
        let missing = Change { path: Path::new("train.py"), old: Some(b"x = 1\n"), new: Some(b"x = 1\n") };
        assert!(!python_unchanged(Path::new("/nonexistent/python"), &[missing]));
    }
}
