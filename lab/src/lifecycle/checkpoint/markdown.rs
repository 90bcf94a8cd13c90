//! A checkpoint as people read it: numbers as the views print them, counts
//! with their nouns, absent values said in words (never `null` or `None`),
//! hashes and paths in code spans. `--json` keeps every field as it is.

use super::{Checkpoint, State};
use crate::lifecycle::heldout::Transfer;
use crate::output::{format_number, plural, times};

pub(super) fn render(c: &Checkpoint) -> String {
    let s = &c.state;
    let mut md = format!("# Checkpoint `{}`: leaf `{}`\n\n## State\n\n", c.name, c.leaf);
    let leader = c
        .leader
        .as_ref()
        .map_or("none".to_owned(), |l| format!("{} ({} = {})", l.experiment, c.metric, format_number(l.value)));
    let lines = [
        ("leader", leader),
        ("comparison", s.comparison_summary.clone().unwrap_or_else(|| "none recorded".into())),
        ("noise", noise(s)),
        ("held-out", holdout(s)),
        ("queued ideas", s.queue_length.to_string()),
        ("experiments", counts(s)),
        ("comparison key", format!("`{}`", s.lock_sha256)),
    ];
    for (key, text) in lines {
        md.push_str(&format!("- {key}: {text}\n"));
    }
    md.push_str("\n### Files of the leader's last full run (sha256)\n\n");
    if s.prediction_files.is_empty() {
        md.push_str("none recorded\n");
    }
    for f in &s.prediction_files {
        md.push_str(&format!("- {} `{}`: `{}` `{}`\n", f.kind, f.name, f.path, f.sha256));
    }
    md.push_str("\n### Frozen files (sha256)\n\n");
    for (path, sha) in &s.frozen_files {
        md.push_str(&format!("- `{path}` `{sha}`\n"));
    }
    md.push_str("\n## Red team\n\n| claim | attack | evidence | verdict |\n|---|---|---|---|\n");
    for r in &c.red_team {
        md.push_str(&format!(
            "| {} | {} | {} | **{}** |\n",
            r.claim,
            r.attack,
            r.evidence.replace('|', "\\|"),
            r.verdict
        ));
    }
    md
}

fn noise(s: &State) -> String {
    match &s.noise {
        None => "not measured yet (`lab baseline` reruns the leader)".into(),
        Some(b) => format!(
            "sd {} over {} of {} (mean {})",
            format_number(b.sd),
            plural(b.n, "run", "runs"),
            b.leader,
            format_number(b.mean)
        ),
    }
}

fn holdout(s: &State) -> String {
    let Some(t) = &s.holdout else {
        return format!("not read ({})", s.holdout_error.as_deref().unwrap_or("no leader"));
    };
    let score = |e: &str, val: f64, holdout: Option<f64>| {
        let holdout = holdout.map_or("no held-out score".into(), |h| format!("held-out {}", format_number(h)));
        format!("{e} (val {}, {holdout})", format_number(val))
    };
    let leader = score(&t.leader.experiment, t.leader.val, t.leader.holdout);
    let read = format!("read {}", times(t.reads));
    match &t.baseline {
        None => format!("{leader}; the leader is the baseline: nothing to transfer yet ({read})"),
        Some(b) => {
            let baseline = score(&b.experiment, b.val, b.holdout);
            let verdict = t.verdict.map_or("no verdict".into(), |v| v.replace('_', " "));
            format!("{leader}; first baseline {baseline}; {verdict}: {} ({read})", gains(t))
        }
    }
}

/// The validation and held-out gains of the leader over the first baseline.
pub(super) fn gains(t: &Transfer) -> String {
    let number = |x: Option<f64>| x.map_or("unknown".into(), format_number);
    let interval = t
        .holdout_ci
        .map_or("no interval".into(), |[lo, hi]| format!("interval {}..{}", format_number(lo), format_number(hi)));
    format!(
        "val gain {}, held-out gain {} ({interval}), ratio {}",
        number(t.val_gain),
        number(t.holdout_gain),
        number(t.ratio)
    )
}

fn counts(s: &State) -> String {
    let c = &s.counts;
    format!(
        "{} ({}, {}, {})",
        c.experiments,
        plural(c.keep, "keep", "keeps"),
        plural(c.discard, "discard", "discards"),
        plural(c.crash, "crash", "crashes")
    )
}
