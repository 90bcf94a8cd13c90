//! `lab new`: a template rendered into a plan, then the plan written at once.
//!
//! The plan is computed entirely in memory first: every file rendered or
//! copied, the manifest parsed and validated, the lock computed. Any error
//! (strict undefined variables included) happens before a byte is written, and
//! `--dry-run` prints the plan and stops. Rendering: minijinja with
//! `UndefinedBehavior::Strict`, no auto-escaping, `trim_blocks`, `lstrip_blocks`
//! and trailing newlines kept; a `quote` filter writes a string as a
//! double-quoted literal valid in YAML and Python. `leaf.yaml(.j2)` is rendered
//! first and the others see its content as `leaf` (see [`leaf_value`]), so
//! program.md's CAN / CANNOT table comes from the manifest itself. Templates may
//! `{% extends %}` or `{% include %}` any file of the templates directory by its
//! path relative to it (`_partials/program.md.j2`). Writing is in `stage.rs`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, Result};
use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use super::files::{FileSets, list_files};
use super::lock::{self, Lock};
use super::manifest::{Entry, Manifest, parse_target};
use super::template::{self, Template, VarValue};
use crate::error::LabError;

/// One file `lab new` will write.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Relative to the leaf directory, `/`-separated.
    pub path: String,
    /// Where it comes from: `rendered from X`, `copied from X` or `generated`.
    pub origin: String,
    pub bytes: Vec<u8>,
    /// Permission bits (the template file's executable bits are kept).
    pub mode: u32,
    /// A file is already at that path (only `--force` replaces it).
    pub exists: bool,
}

/// Everything `lab new` will write, computed before writing anything.
#[derive(Debug, Clone)]
pub struct Plan {
    pub leaf_dir: PathBuf,
    pub template: String,
    pub files: Vec<Planned>,
}

/// What to render: a template, its variable values, the leaf's name and directory.
#[derive(Debug)]
pub struct Request<'a> {
    pub templates_dir: &'a Path,
    pub template: &'a Template,
    pub values: &'a [(String, VarValue)],
    pub name: &'a str,
    pub leaf_dir: &'a Path,
}

pub fn plan(req: &Request<'_>) -> Result<Plan> {
    if req.leaf_dir.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
        return Err(LabError::usage(format!("`{}` exists and is not a directory", req.leaf_dir.display())).into());
    }
    let env = environment(req.templates_dir);
    let sources = template_files(&req.template.dir)?;
    let manifest_source =
        ["leaf.yaml.j2", "leaf.yaml"].into_iter().find(|s| sources.iter().any(|f| f == s)).ok_or_else(|| {
            LabError::usage(format!("template `{}` has no leaf.yaml or leaf.yaml.j2", req.template.name()))
        })?;
    let mut ctx = base_context(req);
    let manifest_file = produce(req, &env, &Value::from(ctx.clone()), manifest_source)?;
    let origin = Path::new(req.template.name()).join(manifest_source);
    let text = String::from_utf8_lossy(&manifest_file.bytes);
    let manifest = Manifest::parse(&text, &origin).context("the template renders an invalid leaf.yaml")?;
    if manifest.name != req.name {
        return Err(LabError::usage(format!(
            "`{}` renders name `{}` instead of `{}`: write `name: {{{{ name }}}}`",
            origin.display(),
            manifest.name,
            req.name
        ))
        .into());
    }
    ctx.insert("leaf".into(), leaf_value(&manifest));
    let ctx = Value::from(ctx);
    let mut files = vec![manifest_file];
    for source in sources.iter().filter(|s| *s != manifest_source) {
        let file = produce(req, &env, &ctx, source)?;
        if file.path == lock::FILE || files.iter().any(|f| f.path == file.path) {
            return Err(LabError::usage(format!(
                "template `{}` has two sources for `{}`, or a `{}` of its own",
                req.template.name(),
                file.path,
                lock::FILE
            ))
            .into());
        }
        files.push(file);
    }
    files.push(lock_file(req.leaf_dir, &manifest, &files)?);
    files.sort_by(|a, b| a.path.cmp(&b.path));
    for file in &mut files {
        file.exists = conflict(req.leaf_dir, &file.path)?;
    }
    Ok(Plan { leaf_dir: req.leaf_dir.to_path_buf(), template: req.template.name().to_owned(), files })
}

fn environment(templates_dir: &Path) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    let syntax = SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).keep_trailing_newline(true).build();
    env.set_syntax(syntax.expect("the default delimiters are valid"));
    env.add_filter("quote", |text: String| serde_json::to_string(&text).unwrap_or_default());
    let root = templates_dir.to_path_buf();
    env.set_loader(move |name| load_source(&root, name));
    env
}

/// A template source by its path relative to the templates directory; never outside it.
fn load_source(root: &Path, name: &str) -> Result<Option<String>, minijinja::Error> {
    let rel = Path::new(name);
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Ok(None);
    }
    match fs::read_to_string(root.join(rel)) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, format!("cannot read `{name}`"))
            .with_source(e)),
    }
}

/// The template's files (relative, sorted), without `template.yaml` and derived files.
fn template_files(dir: &Path) -> Result<Vec<String>> {
    let files = list_files(dir)?;
    Ok(files.into_iter().filter(|f| f != template::FILE && !f.ends_with(".pyc")).collect())
}

fn base_context(req: &Request<'_>) -> BTreeMap<String, Value> {
    let mut ctx = BTreeMap::new();
    ctx.insert("name".to_owned(), Value::from(req.name));
    ctx.insert("template".to_owned(), Value::from(req.template.name()));
    for (key, value) in req.values {
        let value = match value {
            VarValue::String(s) => Value::from(s.as_str()),
            VarValue::Int(i) => Value::from(*i),
            VarValue::Float(x) => Value::from(*x),
            VarValue::Bool(b) => Value::from(*b),
        };
        ctx.insert(key.clone(), value);
    }
    ctx
}

/// One template file rendered (`.j2`, suffix stripped) or copied.
fn produce(req: &Request<'_>, env: &Environment<'_>, ctx: &Value, source: &str) -> Result<Planned> {
    let path = req.template.dir.join(source);
    let mode = fs::metadata(&path).with_context(|| format!("cannot read `{}`", path.display()))?.permissions().mode();
    let name = format!("{}/{source}", req.template.name());
    let (target, origin, bytes) = match source.strip_suffix(".j2") {
        Some(target) => {
            let rendered = env.get_template(&name).and_then(|t| t.render(ctx)).map_err(render_error)?;
            (target, format!("rendered from {name}"), rendered.into_bytes())
        }
        None => (
            source,
            format!("copied from {name}"),
            fs::read(&path).with_context(|| format!("cannot read `{}`", path.display()))?,
        ),
    };
    Ok(Planned { path: target.to_owned(), origin, bytes, mode: 0o644 | (mode & 0o111), exists: false })
}

/// minijinja's error with its chain (an error in an included template is a cause).
fn render_error(err: minijinja::Error) -> anyhow::Error {
    let mut message = format!("cannot render template: {err}");
    let mut cause = std::error::Error::source(&err);
    while let Some(inner) = cause {
        message.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    LabError::usage(message).into()
}

/// The manifest as templates see it: `leaf.metric`, `leaf.goal`, `leaf.mutable`
/// and `leaf.frozen` (globs), `leaf.mode`, `leaf.predictions`, the entry points
/// (`leaf.mutable_target` = `train:train`, `leaf.mutable_call` = `train()`,
/// `leaf.mutable_file` = `train.py`, the same for `frozen_`), budgets as
/// durations (`leaf.budget_full`), `leaf.requires`, `leaf.device` and the gate.
pub fn leaf_value(m: &Manifest) -> Value {
    let strings = |v: &[String]| Value::from(v.iter().map(|s| Value::from(s.as_str())).collect::<Vec<_>>());
    let (train_key, train) = m.entry.mutable_target();
    let (frozen_key, frozen) = m.entry.frozen_target();
    let guards: Vec<Value> = m
        .metric
        .guards
        .iter()
        .map(|g| {
            Value::from(BTreeMap::from([
                ("name", Value::from(g.name.as_str())),
                ("goal", Value::from(g.goal.to_string())),
                ("tolerance", Value::from(g.tolerance)),
            ]))
        })
        .collect();
    let duration = |d| Value::from(humantime::format_duration(d).to_string());
    Value::from(BTreeMap::from([
        ("name", Value::from(m.name.as_str())),
        ("description", Value::from(m.description.as_str())),
        ("metric", Value::from(m.metric.name.as_str())),
        ("goal", Value::from(m.metric.goal.to_string())),
        ("unit", Value::from(m.metric.unit.as_str())),
        ("also", strings(&m.metric.also)),
        ("guards", Value::from(guards)),
        ("mutable", strings(&m.files.mutable)),
        ("frozen", strings(&m.files.frozen)),
        ("mode", Value::from(m.entry.mode())),
        ("predictions", Value::from(matches!(m.entry, Entry::Predictions { .. }))),
        ("mutable_key", Value::from(train_key)),
        ("mutable_target", Value::from(train)),
        ("mutable_call", call(train)),
        ("mutable_file", file_of(train)),
        ("frozen_key", Value::from(frozen_key)),
        ("frozen_target", Value::from(frozen)),
        ("frozen_call", call(frozen)),
        ("frozen_file", file_of(frozen)),
        ("budget_full", duration(m.budget.full)),
        ("budget_smoke", duration(m.budget.smoke)),
        ("requires", strings(&m.python.requires)),
        ("device", Value::from(format!("{:?}", m.device).to_lowercase())),
        ("repeats", Value::from(m.gate.repeats)),
        ("confidence", Value::from(m.gate.confidence)),
        ("min_improvement", Value::from(m.gate.min_improvement)),
    ]))
}

/// `train()` for `train:train`.
fn call(target: &str) -> Value {
    Value::from(parse_target(target).map_or_else(|| target.to_owned(), |(_, function)| format!("{function}()")))
}

/// `pkg/train.py` for `pkg.train:fit`.
fn file_of(target: &str) -> Value {
    Value::from(parse_target(target).map_or_else(String::new, |(module, _)| module.replace('.', "/") + ".py"))
}

/// `leaf.lock` for the leaf as it will be: the planned files over what is on disk.
fn lock_file(leaf_dir: &Path, manifest: &Manifest, planned: &[Planned]) -> Result<Planned> {
    let sets = FileSets::new(&manifest.files, &manifest.sealed.leaf)?;
    let on_disk = if leaf_dir.is_dir() { list_files(leaf_dir)? } else { Vec::new() };
    let mut contents: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for rel in on_disk.into_iter().filter(|r| sets.is_frozen(Path::new(r))) {
        let bytes = fs::read(leaf_dir.join(&rel)).with_context(|| format!("cannot read `{rel}`"))?;
        contents.insert(rel, bytes);
    }
    for file in planned.iter().filter(|f| sets.is_frozen(Path::new(&f.path))) {
        contents.insert(file.path.clone(), file.bytes.clone());
    }
    let lock = Lock::of_contents(contents.iter().map(|(p, b)| (p.as_str(), b.as_slice())));
    Ok(Planned {
        path: lock::FILE.to_owned(),
        origin: "generated".into(),
        bytes: lock.render().into_bytes(),
        mode: 0o644,
        exists: false,
    })
}

/// Whether a file is already at `rel`; an error when a directory or a file
/// stands where the path needs a directory, which not even `--force` replaces.
fn conflict(leaf_dir: &Path, rel: &str) -> Result<bool> {
    let target = leaf_dir.join(rel);
    for ancestor in target.ancestors().skip(1).take_while(|a| a.starts_with(leaf_dir) && *a != leaf_dir) {
        if ancestor.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
            return Err(LabError::usage(format!("`{}` is in the way of `{rel}`", ancestor.display())).into());
        }
    }
    match target.symlink_metadata() {
        Ok(meta) if meta.is_dir() => {
            Err(LabError::usage(format!("a directory stands where `{}` would go", target.display())).into())
        }
        Ok(_) => Ok(true),
        Err(_) => Ok(false),
    }
}
