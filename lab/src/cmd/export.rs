//! `lab export`: the history as results.tsv, CSV or JSON lines, on stdout or into a file.
//!
//! A file is written beside its destination and renamed over it, so a reader sees
//! the old file or the whole new one. The rename replaces whatever directory entry
//! is there, so only a regular file or a new path is accepted: renaming over a
//! FIFO, a device node or a symlink would silently swap out something that is not
//! an earlier export (it once replaced `/dev/full`).

use std::io::{self, Write};
use std::os::unix::fs::FileTypeExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::{Args, ValueEnum};
use tempfile::NamedTempFile;

use crate::ctx::Ctx;
use crate::error::LabError;
use crate::output;
use crate::output::{Format, Table};
use crate::store::queries::{self, HistoryQuery};
use crate::store::transfer;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// autoresearch's results.tsv; `lab import results-tsv` reads it back
    ResultsTsv,
    Csv,
    Jsonl,
}

/// Export the history, oldest first: every experiment with its hypothesis and current result.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    pub format: ExportFormat,
    /// Only this leaf (default: all leaves)
    #[arg(long)]
    pub leaf: Option<String>,
    /// Write here (atomically: a complete file or none) instead of stdout
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

pub fn run(ctx: &Ctx, args: ExportArgs) -> Result<()> {
    let (_, store) = ctx.open()?;
    let mut rows = queries::history(store.conn(), &HistoryQuery { leaf: args.leaf, ..HistoryQuery::default() })?;
    rows.reverse();
    let write = |out: &mut dyn Write| -> Result<()> {
        match args.format {
            ExportFormat::ResultsTsv => transfer::export_results_tsv(&rows, &mut &mut *out),
            ExportFormat::Jsonl => rows.iter().try_for_each(|r| Ok(writeln!(out, "{}", serde_json::to_string(r)?)?)),
            ExportFormat::Csv => {
                let value = serde_json::to_value(&rows)?;
                let columns: Vec<&str> = value
                    .get(0)
                    .and_then(|v| v.as_object())
                    .map_or_else(Vec::new, |o| o.keys().map(String::as_str).collect());
                let mut table = Table::new(&columns);
                for row in value.as_array().into_iter().flatten() {
                    table.push(columns.iter().map(|c| row[*c].clone()).collect());
                }
                Ok(table.write(Format::Csv, &mut &mut *out)?)
            }
        }
    };
    match &args.output {
        None => write(&mut output::stdout()),
        Some(path) => {
            let path = ctx.cwd.join(path);
            refuse_special(&path)?;
            let dir = path.parent().context("output path has no directory")?;
            let mut file =
                NamedTempFile::new_in(dir).with_context(|| format!("cannot write in `{}`", dir.display()))?;
            write(file.as_file_mut())?;
            file.as_file().sync_all()?;
            file.persist(&path).with_context(|| format!("cannot write `{}`", path.display()))?;
            eprintln!("exported {} experiments to {}", rows.len(), path.display());
            Ok(())
        }
    }
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
