//! The manifests people write (`lab.yaml`, `leaf.yaml`, `template.yaml`), read
//! within bounds before the YAML parser sees them.
//!
//! The parser's time grows faster than the nesting: a `leaf.yaml` 100,000 levels
//! deep (200 KB) took 54 s to reject. So a manifest over [`MAX_BYTES`] is refused
//! unread, and one nested deeper than [`MAX_DEPTH`] is refused after one linear
//! scan. The scan over-estimates rather than parses: it counts flow brackets
//! outside quotes and comments, plus the indentation levels and compact `- `
//! entries of block collections. Real manifests are a few levels deep; the caps
//! are far above them.

use std::io::Read as _;
use std::path::Path;

use crate::error::LabError;

/// Larger than any manifest needs, small enough to read and scan at once.
pub const MAX_BYTES: u64 = 1024 * 1024;

/// Nesting levels, block and flow together.
pub const MAX_DEPTH: usize = 64;

/// The text of the manifest at `path`, refused (naming it) when unreadable, too
/// large or too deeply nested.
pub fn read(path: &Path) -> Result<String, LabError> {
    let cannot = |e: std::io::Error| LabError::usage(format!("cannot read `{}`: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    // Read one byte past the cap, so a file growing meanwhile is still caught.
    file.take(MAX_BYTES + 1).read_to_end(&mut bytes).map_err(cannot)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(LabError::usage(format!(
            "`{}` is larger than {} KiB: not a manifest lab reads",
            path.display(),
            MAX_BYTES / 1024
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| LabError::usage(format!("`{}` is not UTF-8 text: {e}", path.display())))?;
    check_depth(&text, path)?;
    Ok(text)
}

/// Refuse `text` when it nests deeper than [`MAX_DEPTH`]; `origin` names it.
pub fn check_depth(text: &str, origin: &Path) -> Result<(), LabError> {
    match depth_exceeded(text) {
        Some(line) => Err(LabError::usage(format!(
            "`{}` nests deeper than {MAX_DEPTH} levels at line {line}: not a manifest lab reads",
            origin.display()
        ))),
        None => Ok(()),
    }
}

/// The first line (1-based) where the estimated depth passes [`MAX_DEPTH`].
fn depth_exceeded(text: &str) -> Option<usize> {
    let mut block: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    for (i, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let rest = &line[indent..];
        if flow == 0 && !rest.is_empty() && !rest.starts_with('#') {
            // Each compact `- ` opens a level one column further in.
            let mut column = indent;
            let mut tail = rest;
            loop {
                while block.last().is_some_and(|&top| top > column) {
                    block.pop();
                }
                if block.last() != Some(&column) {
                    block.push(column);
                }
                let Some(after) = tail.strip_prefix("- ") else { break };
                let inner = after.trim_start_matches(' ');
                column += tail.len() - inner.len();
                tail = inner;
            }
        }
        flow = match flow_depth(line, flow, block.len()) {
            Some(flow) => flow,
            None => return Some(i + 1),
        };
        if block.len() + flow > MAX_DEPTH {
            return Some(i + 1);
        }
    }
    None
}

/// The flow depth after `line`, starting at `flow`; `None` as soon as block and
/// flow levels together pass [`MAX_DEPTH`] (a 200 KB line is not scanned to its end).
fn flow_depth(line: &str, mut flow: usize, block: usize) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut previous = ' ';
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '#') if previous == ' ' || previous == '\t' => break,
            (None, '[' | '{') => {
                flow += 1;
                if block + flow > MAX_DEPTH {
                    return None;
                }
            }
            (None, ']' | '}') => flow = flow.saturating_sub(1),
            _ => {}
        }
        previous = c;
    }
    Some(flow)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deepest_ok(text: &str) -> bool {
        depth_exceeded(text).is_none()
    }

    #[test]
    fn ordinary_manifests_pass() {
        let manifest = "version: 1\nname: x\nfiles:\n  mutable: [train.py, 'a [b']\n  frozen:\n    - prepare.py\n\
                        gate: {min_improvement: 0.01}\n# a comment [[[[\ndescription: |\n  text\n    indented\n";
        assert!(deepest_ok(manifest));
    }

    #[test]
    fn deep_nesting_is_caught_in_every_style() {
        let flow = "[".repeat(100_000) + &"]".repeat(100_000);
        assert_eq!(depth_exceeded(&flow), Some(1));
        let compact = "- ".repeat(100) + "x\n";
        assert_eq!(depth_exceeded(&compact), Some(1));
        let block: String = (0..100).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect();
        assert_eq!(depth_exceeded(&block), Some(MAX_DEPTH + 1));
        let mapping = "a: ".to_owned() + &"{b: ".repeat(100);
        assert!(depth_exceeded(&mapping).is_some());
        let fine = "[".repeat(MAX_DEPTH - 1) + &"]".repeat(MAX_DEPTH - 1);
        assert!(deepest_ok(&fine));
    }

    #[test]
    fn oversized_files_are_refused_unparsed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leaf.yaml");
        std::fs::write(&path, "#".repeat(MAX_BYTES as usize + 1)).unwrap();
        let err = read(&path).unwrap_err();
        assert!(err.message.contains("leaf.yaml") && err.message.contains("larger than 1024 KiB"), "{}", err.message);
        std::fs::write(&path, "a: 1\n").unwrap();
        assert_eq!(read(&path).unwrap(), "a: 1\n");
    }
}
