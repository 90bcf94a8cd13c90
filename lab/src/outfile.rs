//! A file a command writes with `--output`: beside its destination, then
//! renamed over it, so a reader sees the old file or the whole new one. The
//! rename replaces whatever directory entry is there, so only a regular file
//! or a new path is accepted: renaming over a FIFO, a device node or a symlink
//! would silently swap out something that is not an earlier output (`lab
//! export` once replaced `/dev/full`).

use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::Path;

use anyhow::{Context as _, Result};
use tempfile::NamedTempFile;

use crate::error::LabError;

/// Write `path` atomically with `write`; refused (exit 2) when `path` exists and is not a regular file.
pub fn write(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    refuse_special(path)?;
    let dir = path.parent().context("output path has no directory")?;
    let mut file = NamedTempFile::new_in(dir).with_context(|| format!("cannot write in `{}`", dir.display()))?;
    write(file.as_file_mut())?;
    // A temporary file is private (0600); what a command writes for its user is not.
    file.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    file.as_file().sync_all()?;
    file.persist(path).with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}

/// Refuse an existing `path` that is not a regular file (links are not followed:
/// the rename would replace the link itself, not what it points at).
fn refuse_special(path: &Path) -> Result<()> {
    let kind = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot inspect `{}`", path.display())),
        Ok(meta) => meta.file_type(),
    };
    let what = if kind.is_file() {
        return Ok(());
    } else if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    };
    Err(LabError::usage(format!(
        "`{}` is {what}: --output replaces only a regular file or writes a new one",
        path.display()
    ))
    .hint("name a new file, or leave out --output to write to stdout")
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_nodes_are_refused() {
        let err = refuse_special(Path::new("/dev/null")).unwrap_err();
        assert!(err.to_string().contains("`/dev/null` is a character device"), "{err}");
        assert!(refuse_special(Path::new("/nonexistent/new.tsv")).is_ok());
    }
}
