//! `lab doctor`: what is needed when something is off with Python or the lab.

use anyhow::Result;
use clap::Args;
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::error::LabError;
use crate::lifecycle::doctor;
use crate::outln;
use crate::store::{self, Health, LATEST_VERSION};

/// Check the Python a leaf would run in (asked from inside a worker) and where the research memory is.
///
/// Prints the interpreter the binary links against, the virtual environment
/// (LAB_VENV, else <lab root>/.venv, else VIRTUAL_ENV), Python's version,
/// executable and prefix as a leaf sees them, numpy and torch versions, CUDA,
/// the database and its schema version (or what it is instead: not a database,
/// damaged, empty, a newer schema). Exits 1 when the worker cannot start, numpy
/// is missing or the database is not one this lab can use; a missing torch is
/// reported, not an error.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print the findings as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: DoctorArgs) -> Result<()> {
    let lab = ctx.lab().ok();
    let diagnosis = doctor::diagnose(lab.as_ref().map(|l| l.dir.as_path()))?;
    let database = lab.as_ref().map(|l| l.db_path()).filter(|p| p.exists());
    // Read-only: a diagnosis migrates nothing.
    let health = database.as_deref().map(store::inspect);
    let schema = match health {
        Some(Health::Schema(v) | Health::Newer(v)) => Some(v),
        _ => None,
    };
    let problem = health.as_ref().and_then(Health::problem);
    let numpy_ok =
        diagnosis.python.get("numpy").and_then(Value::as_str).is_some_and(|v| !v.starts_with("not installed"));
    let report = json!({
        "lab_root": lab.as_ref().map(|l| l.dir.display().to_string()),
        "database": database.as_ref().map(|p| p.display().to_string()),
        "schema_version": schema,
        "database_problem": problem,
        "schema_latest": LATEST_VERSION,
        "built_against": diagnosis.built_against,
        "venv": diagnosis.venv,
        "venv_source": diagnosis.venv_source,
        "python": diagnosis.python,
        "worker": diagnosis.worker,
    });
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    if diagnosis.worker != "ok" {
        return Err(LabError::failure("the worker could not start Python").hint("see `worker` above").into());
    }
    if let (Some(path), Some(problem)) = (&database, &problem) {
        return Err(LabError::failure(format!("the research database `{}` is {problem}", path.display()))
            .hint("see `database` above")
            .into());
    }
    if !numpy_ok {
        return Err(LabError::failure("numpy is not installed in the environment leaves run in")
            .hint("run scripts/setup, or `<venv>/bin/pip install numpy`")
            .into());
    }
    Ok(())
}

fn print_text(report: &Value) {
    let text = |v: &Value| match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let python = &report["python"];
    let venv = match (&report["venv"], &report["venv_source"]) {
        (Value::String(dir), Value::String(source)) => format!("{dir} ({source})"),
        _ => "none (the interpreter's own site-packages)".to_owned(),
    };
    let database = match (&report["database"], &report["database_problem"], &report["schema_version"]) {
        (Value::String(path), Value::String(problem), _) => format!("{path}: {problem}"),
        (Value::String(path), _, Value::Number(v)) => format!("{path} (schema {v} of {})", report["schema_latest"]),
        _ => "not created yet".to_owned(),
    };
    let cuda = match &python["cuda"] {
        Value::String(name) => format!("yes: {name}"),
        _ => "no".to_owned(),
    };
    let rows = [
        ("lab root", text(&report["lab_root"])),
        ("database", database),
        ("built against", text(&report["built_against"])),
        ("venv", venv),
        ("python", text(&python["version"]).lines().next().unwrap_or("-").to_owned()),
        ("executable", text(&python["executable"])),
        ("prefix", text(&python["prefix"])),
        ("base prefix", text(&python["base_prefix"])),
        ("numpy", text(&python["numpy"])),
        ("torch", text(&python["torch"])),
        ("cuda", cuda),
        ("worker", text(&report["worker"])),
    ];
    for (key, value) in rows {
        outln!("{key:<14}{value}");
    }
}
