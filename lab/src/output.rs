//! Rendering of command output: data on stdout in the format the caller asked for.
//!
//! Read commands build a [`Table`] (rows of JSON values under named columns) or a
//! [`Report`] (titled sections of tables plus a JSON document) and hand it here.
//! Write commands answer with [`answer`]: one JSON object under `--json`, else
//! their usual text.
//! Status and progress go to stderr elsewhere; nothing here writes to stderr.
//!
//! Every byte of data reaches stdout through [`stdout`] (or [`outln!`]), never
//! `println!`, which panics when stdout is full and whose panic came after a
//! write command had committed (a retry then recorded it twice). A write that
//! fails does not fail the command: the rest of its output is kept instead,
//! and `main` asks [`undelivered`] at the end. A reader that went away (`lab
//! context | head`) is the conventional quiet end; any other failure (a full
//! disk, `> /dev/full`) is reported on stderr with what could not be printed,
//! so an id that was recorded is never hidden.

use std::fmt;
use std::io::{self, Write};
use std::sync::{Mutex, PoisonError};

use clap::{Args, ValueEnum};
use comfy_table::{ColumnConstraint, ContentArrangement, Width, presets};
use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Jsonl,
    Csv,
    Tsv,
    Md,
}

/// What could not be printed, after the first failed write to stdout.
#[derive(Debug)]
struct Failed {
    error: io::Error,
    kept: Vec<u8>,
    dropped: usize,
}

/// Enough to show a write command's answer (an id, a JSON object) whole.
const KEPT_BYTES: usize = 16 * 1024;

static FAILED: Mutex<Option<Failed>> = Mutex::new(None);

/// The process's stdout, written through at once; after a failed write it only
/// keeps what it is given (see the module docs), so writes to it never fail.
#[derive(Debug, Clone, Copy)]
pub struct Stdout;

pub fn stdout() -> Stdout {
    Stdout
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut failed = FAILED.lock().unwrap_or_else(PoisonError::into_inner);
        if failed.is_none() {
            // Flushed per write: an error must surface here, not in a buffer dropped at exit.
            #[allow(clippy::disallowed_methods)] // the one place that holds the raw stdout
            let mut out = io::stdout().lock();
            match out.write_all(buf).and_then(|()| out.flush()) {
                Ok(()) => return Ok(buf.len()),
                Err(error) => *failed = Some(Failed { error, kept: Vec::new(), dropped: 0 }),
            }
        }
        if let Some(f) = failed.as_mut() {
            let room = KEPT_BYTES.saturating_sub(f.kept.len()).min(buf.len());
            f.kept.extend_from_slice(&buf[..room]);
            f.dropped += buf.len() - room;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One line of data on stdout: what [`outln!`] expands to.
pub fn line(args: fmt::Arguments<'_>) {
    // `Stdout` never fails; a failed write is kept for `undelivered`.
    let _ = writeln!(Stdout, "{args}");
}

/// `println!` for data: through [`stdout`], so a closed or full stdout is never a panic.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}

/// After the command: `None` when stdout took everything or its reader went
/// away (a broken pipe), else why it failed and the output it did not take.
pub fn undelivered() -> Option<String> {
    let failed = FAILED.lock().unwrap_or_else(PoisonError::into_inner).take()?;
    if failed.error.kind() == io::ErrorKind::BrokenPipe {
        return None;
    }
    let mut report = format!("error: cannot write to stdout: {}", failed.error);
    if !failed.kept.is_empty() {
        report.push_str("\nwhat the command recorded stands; the output it could not print:\n");
        report.push_str(String::from_utf8_lossy(&failed.kept).trim_end());
    }
    if failed.dropped > 0 {
        report.push_str(&format!("\n... and {} more bytes", failed.dropped));
    }
    Some(report)
}

/// `--format` and its `--json` shorthand, flattened into every read command.
#[derive(Debug, Clone, Args)]
pub struct FormatArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Shorthand for `--format json`
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

impl FormatArgs {
    pub fn format(&self) -> Format {
        if self.json { Format::Json } else { self.format }
    }
}

/// A write command's answer on stdout: `value` as one pretty-printed JSON
/// document when `json` (its `--json` flag), else whatever `text` prints.
pub fn answer<T: Serialize + ?Sized>(json: bool, value: &T, text: impl FnOnce()) -> serde_json::Result<()> {
    if json {
        crate::outln!("{}", serde_json::to_string_pretty(value)?);
    } else {
        text();
    }
    Ok(())
}

/// Rows under named columns; cells are JSON so numbers stay numbers in JSON output.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    pub fn new(columns: &[&str]) -> Self {
        Self { columns: columns.iter().map(|c| (*c).to_owned()).collect(), rows: Vec::new() }
    }

    pub fn push(&mut self, row: Vec<Value>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }

    pub fn to_json(&self) -> Value {
        Value::Array(self.rows.iter().map(|r| Value::Object(self.object(r))).collect())
    }

    fn object(&self, row: &[Value]) -> Map<String, Value> {
        self.columns.iter().cloned().zip(row.iter().cloned()).collect()
    }

    pub fn write(&self, format: Format, out: &mut impl Write) -> io::Result<()> {
        match format {
            Format::Table => {
                let mut table = self.pretty(presets::UTF8_BORDERS_ONLY);
                let width = width(&table);
                fit(&mut table, width);
                writeln!(out, "{table}")
            }
            // A Markdown row cannot wrap: a pipe table keeps its cells whole and is left to its renderer.
            Format::Md => writeln!(out, "{}", self.pretty(presets::ASCII_MARKDOWN)),
            Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&self.to_json())?),
            Format::Jsonl => self.rows.iter().try_for_each(|row| writeln!(out, "{}", Value::Object(self.object(row)))),
            Format::Csv => self.delimited(b',', out),
            Format::Tsv => self.delimited(b'\t', out),
        }
    }

    fn pretty(&self, style: comfy_table::TableStyle) -> comfy_table::Table {
        let mut table = comfy_table::Table::new();
        table.load_style(style).set_content_arrangement(ContentArrangement::Disabled).set_header(&self.columns);
        for row in &self.rows {
            table.add_row(row.iter().map(|cell| visible(&display_text(cell))));
        }
        table
    }

    fn delimited(&self, delimiter: u8, out: &mut impl Write) -> io::Result<()> {
        let mut writer = csv::WriterBuilder::new().delimiter(delimiter).from_writer(out);
        writer.write_record(&self.columns)?;
        for row in &self.rows {
            writer.write_record(row.iter().map(cell_text))?;
        }
        writer.flush()
    }
}

/// The width a `table` is fitted to: `COLUMNS` where set (as `ls` reads it),
/// else the terminal's when stdout is one (comfy-table asks it), else
/// [`DEFAULT_WIDTH`]: a pipe or a file gets lines an agent's reader can take
/// without one cell pushing a row to hundreds of columns.
fn width(table: &comfy_table::Table) -> u16 {
    let columns = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<u16>().ok()).filter(|&c| c > 0);
    columns.or_else(|| table.width()).unwrap_or(DEFAULT_WIDTH)
}

/// See [`width`].
const DEFAULT_WIDTH: u16 = 100;

/// Columns at most this wide (ids, statuses, numbers, most headers) are kept whole where they fit.
const SHORT: u16 = 12;

/// The fewest characters a column that wraps is left with, where the width allows it.
const MIN_WRAP: u16 = 8;

/// Fit `table` to `width`: comfy-table's dynamic arrangement wraps long cells
/// (whole values, over more lines). Left alone it splits the space evenly
/// first, breaking `priority` or `experiment` in two beside a long title, so
/// short columns (ids, statuses, numbers) get their widest cell as a floor,
/// narrowest first, while every long column can keep [`MIN_WRAP`] characters
/// to wrap in.
fn fit(table: &mut comfy_table::Table, width: u16) {
    table.set_content_arrangement(ContentArrangement::Dynamic).set_width(width);
    let widest = table.column_max_content_widths();
    // Each column's padding and separator (3), and the outer borders (1 more).
    let mut budget = usize::from(width).saturating_sub(3 * widest.len() + 1);
    let mut short: Vec<usize> = (0..widest.len()).filter(|&i| widest[i] <= SHORT).collect();
    let wrapping = usize::from(MIN_WRAP) * (widest.len() - short.len());
    short.sort_by_key(|&i| widest[i]);
    for i in short {
        if usize::from(widest[i]) + wrapping > budget {
            break;
        }
        budget -= usize::from(widest[i]);
        if let Some(column) = table.column_mut(i) {
            // comfy-table's boundaries count the padding (1 each side).
            column.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(widest[i] + 2)));
        }
    }
}

/// Short, readable numbers: integers bare, others with 4 significant digits.
pub fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e6) {
        format!("{x:.3e}")
    } else {
        let digits = (3 - x.abs().log10().floor() as i32).clamp(0, 8) as usize;
        format!("{x:.digits$}")
    }
}

/// A count with its noun: `1 time`, `4 times`, `0 crashes` (both forms given: English has no one rule).
pub fn plural<N: fmt::Display + PartialEq + From<u8>>(n: N, one: &str, many: &str) -> String {
    format!("{n} {}", if n == N::from(1) { one } else { many })
}

/// How often something happened: `once`, `4 times`.
pub fn times(n: u64) -> String {
    if n == 1 { "once".to_owned() } else { format!("{n} times") }
}

/// A cell as people read it in `table` and `md`: like [`cell_text`], but
/// fractional numbers with 4 significant digits and an object of scalars as
/// `key=value` pairs (`rae=0.3801 mae=0.5977`). Machine formats keep every digit.
pub fn display_text(value: &Value) -> String {
    match value {
        Value::Number(n) if n.is_f64() => n.as_f64().map_or_else(|| n.to_string(), format_number),
        Value::Object(map) if map.values().all(|v| !v.is_object() && !v.is_array()) => {
            map.iter().map(|(k, v)| format!("{k}={}", display_text(v))).collect::<Vec<_>>().join(" ")
        }
        other => cell_text(other),
    }
}

/// `text` safe to show on a terminal: control characters (ANSI escapes, CR,
/// newlines, tabs) and bidirectional overrides escaped as `\u{1b}`, `\r`, so
/// a title cannot move the cursor, recolour or overwrite what a person reads.
/// Only the people's formats (`table`, `md`) use it; JSON and CSV keep the value.
pub fn visible(text: &str) -> String {
    let hidden = |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(hidden) {
        return text.to_owned();
    }
    text.chars().map(|c| if hidden(c) { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// `text` for a table cell that must stay narrow (a crash's reason): its first
/// line, cut at `max` characters with `…`. The people's formats only; JSON, JSONL
/// and CSV carry the whole text.
pub fn brief(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() <= max && line.len() == text.trim_end().len() {
        return line.to_owned();
    }
    let cut: String = line.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", cut.trim_end())
}

/// A long text cell (a crash's reason): [`brief`] for people, whole for machines.
pub fn narrow(text: Option<&str>, for_people: bool) -> Option<String> {
    text.map(|t| if for_people { brief(t, 60) } else { t.to_owned() })
}

impl Format {
    /// `table` and `md`: read by people, so long cells are cut short ([`brief`]).
    pub fn for_people(self) -> bool {
        matches!(self, Format::Table | Format::Md)
    }
}

/// A cell as text: strings bare, null empty, numbers and objects as JSON.
pub fn cell_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A structured answer (like `lab context`): a JSON document for machines and
/// titled sections for people. Tabular formats print each section under a
/// `# title` line.
#[derive(Debug)]
pub struct Report {
    pub json: Value,
    pub sections: Vec<(String, Table)>,
}

impl Report {
    pub fn write(&self, format: Format, out: &mut impl Write) -> io::Result<()> {
        match format {
            Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&self.json)?),
            Format::Jsonl => writeln!(out, "{}", self.json),
            _ => self.sections.iter().enumerate().try_for_each(|(i, (title, table))| {
                if i > 0 {
                    writeln!(out)?;
                }
                writeln!(out, "{} {title}", if format == Format::Md { "##" } else { "#" })?;
                table.write(format, out)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn brief_keeps_the_first_line_within_its_width() {
        assert_eq!(brief("short", 10), "short");
        assert_eq!(brief("exactly 10", 10), "exactly 10");
        assert_eq!(brief("longer than ten", 10), "longer th…");
        assert_eq!(brief("first\nsecond", 10), "first…");
        assert_eq!(narrow(Some("longer than ten"), false).as_deref(), Some("longer than ten"));
    }

    #[test]
    fn people_read_short_numbers_and_machines_every_digit() {
        assert_eq!(format_number(100.0), "100");
        assert_eq!(format_number(0.99312), "0.9931");
        assert_eq!(format_number(12.3456), "12.35");
        assert_eq!(format_number(0.00012), "1.200e-4");
        assert_eq!(format_number(f64::NAN), "NaN");
        let metrics = json!({"rae": 0.380_145_705, "n": 3, "note": "x"});
        assert_eq!(display_text(&metrics), "rae=0.3801 n=3 note=x");
        assert_eq!(display_text(&json!({"a": [1, 2]})), r#"{"a":[1,2]}"#);
        assert_eq!(cell_text(&json!(0.380_145_705)), "0.380145705");
    }

    fn sample() -> Table {
        let mut t = Table::new(&["id", "title", "val_bpb"]);
        t.push(vec![json!("e1"), json!("a \"quoted\", title"), json!(0.99)]);
        t.push(vec![json!("e2"), json!("tab\there"), Value::Null]);
        t
    }

    fn render(format: Format) -> String {
        let mut buf = Vec::new();
        sample().write(format, &mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(render(Format::Csv), "id,title,val_bpb\ne1,\"a \"\"quoted\"\", title\",0.99\ne2,tab\there,\n");
    }

    #[test]
    fn tsv_quotes_embedded_tabs() {
        assert_eq!(
            render(Format::Tsv),
            "id\ttitle\tval_bpb\ne1\t\"a \"\"quoted\"\", title\"\t0.99\ne2\t\"tab\there\"\t\n"
        );
    }

    #[test]
    fn jsonl_keeps_column_order_and_types() {
        assert_eq!(
            render(Format::Jsonl),
            "{\"id\":\"e1\",\"title\":\"a \\\"quoted\\\", title\",\"val_bpb\":0.99}\n{\"id\":\"e2\",\"title\":\"tab\\there\",\"val_bpb\":null}\n"
        );
    }

    #[test]
    fn people_formats_escape_control_characters_and_machines_keep_them() {
        let mut t = Table::new(&["title"]);
        t.push(vec![json!("red \u{1b}[31mtext\rover\u{202e}")]);
        let mut table = Vec::new();
        t.write(Format::Table, &mut table).unwrap();
        let table = String::from_utf8(table).unwrap();
        assert!(table.contains(r"red \u{1b}[31mtext\rover\u{202e}"), "{table}");
        assert!(!table.contains('\u{1b}') && !table.contains('\r'), "{table}");
        let mut jsonl = Vec::new();
        t.write(Format::Jsonl, &mut jsonl).unwrap();
        assert_eq!(String::from_utf8(jsonl).unwrap(), "{\"title\":\"red \\u001b[31mtext\\rover\u{202e}\"}\n");
    }

    #[test]
    fn a_table_wraps_long_cells_to_its_width_and_keeps_short_columns_whole() {
        let mut t = Table::new(&["experiment", "verdict", "title"]);
        let title = "a long title about warmup schedules and why they matter ".repeat(4);
        t.push(vec![json!("e12"), json!("discard"), json!(title)]);
        let mut table = comfy_table::Table::new();
        table.load_style(presets::UTF8_BORDERS_ONLY).set_header(&t.columns);
        table.add_row(t.rows[0].iter().map(display_text));
        fit(&mut table, 60);
        let text = table.to_string();
        assert!(text.lines().all(|l| l.chars().count() <= 60), "{text}");
        assert!(text.contains(" experiment ") && text.contains(" discard "), "short columns unbroken: {text}");
        let words: Vec<&str> = text.split(|c: char| c.is_whitespace() || c == '│').filter(|w| !w.is_empty()).collect();
        assert_eq!(words.iter().filter(|w| **w == "warmup").count(), 4, "every word is kept: {text}");
    }

    #[test]
    fn markdown_is_a_pipe_table() {
        let md = render(Format::Md);
        assert!(md.starts_with("| id | title"), "{md}");
    }
}
