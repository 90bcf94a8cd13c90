//! The shape of `lab verify`'s answer: a list of named checks, each with a
//! verdict and its findings. Checks beyond the store's (files re-hashed,
//! keeps re-scored) are pushed onto the same [`Report`].

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckVerdict {
    Holds,
    Fails,
    /// Could not be checked (say why in a finding or the check's `about`).
    Unknown,
}

/// One thing found wrong: its kind, where (table and row, when it is a row), and what differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: &'static str,
    pub table: Option<String>,
    pub row: Option<String>,
    pub detail: String,
}

impl Finding {
    pub fn row(kind: &'static str, table: &str, row: impl ToString, detail: impl Into<String>) -> Self {
        Self { kind, table: Some(table.to_owned()), row: Some(row.to_string()), detail: detail.into() }
    }

    /// `results 5: verdict, metrics differ from the chain`.
    pub fn describe(&self) -> String {
        match (&self.table, &self.row) {
            (Some(t), Some(r)) => format!("{t} {r}: {}", self.detail),
            (Some(t), None) => format!("{t}: {}", self.detail),
            _ => self.detail.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    /// What the check establishes when it holds.
    pub about: &'static str,
    pub verdict: CheckVerdict,
    /// How many things it looked at (entries, rows, results).
    pub checked: u64,
    pub findings: Vec<Finding>,
}

impl Check {
    /// A check that holds unless it has findings.
    pub fn new(name: &'static str, about: &'static str, checked: u64, findings: Vec<Finding>) -> Self {
        let verdict = if findings.is_empty() { CheckVerdict::Holds } else { CheckVerdict::Fails };
        Self { name, about, verdict, checked, findings }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub leaf: Option<String>,
    /// The chain's head, `(seq, hash)`, as an anchor to compare with later.
    pub head: Head,
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

impl Report {
    pub fn push(&mut self, check: Check) {
        self.ok &= check.verdict != CheckVerdict::Fails;
        self.checks.push(check);
    }

    /// Every finding of every failed check, one per line, for the error message.
    pub fn failures(&self) -> Vec<String> {
        let failed = self.checks.iter().filter(|c| c.verdict == CheckVerdict::Fails);
        failed.flat_map(|c| c.findings.iter().map(move |f| format!("{}: {}", c.name, f.describe()))).collect()
    }
}
