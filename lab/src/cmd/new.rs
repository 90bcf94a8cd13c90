use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::Args;
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::error::LabError;
use crate::leaf::builtin::Templates;
use crate::leaf::discover::shown;
use crate::leaf::manifest::validate_name;
use crate::leaf::scaffold::{self, Plan, Planned, Request};
use crate::leaf::{stage, template};
use crate::outln;
use crate::output;
use crate::vcs;

/// Scaffold a leaf from a template: render it into leaves/NAME and write its leaf.lock.
///
/// `lab templates` lists each template's variables (a `metric` among them). The
/// metrics the harness computes itself (`metric.kind`), with their goal and how
/// outputs are read: mae, rmse, mse, rae (minimized) and r2, spearman, pearson
/// (maximized) on numbers; auc (maximized) on scores or probabilities of class 1
/// against 0/1 labels; accuracy (maximized) on class labels (for 0/1 labels a
/// probability counts as class 1 from 0.5); bits_per_byte (minimized) on
/// language-model logits (N, T, V) against next tokens (N, T).
///
/// The whole plan is computed first (every file rendered, the manifest
/// validated); nothing is written if anything fails, and --dry-run prints the
/// plan and stops. Exit codes: 0 created, 2 bad input (an invalid NAME, an
/// unknown template or variable, a value of the wrong type, a template that
/// fails to render, a leaf directory that exists without --force), 1 an I/O
/// failure (nothing is left half written).
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The leaf's name: lowercase letters, digits and dashes, starting with a letter
    pub name: String,
    /// The template to render (`lab templates` lists them)
    #[arg(long, short)]
    pub template: String,
    /// A template variable, e.g. --set metric=val_loss (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = template::parse_set)]
    pub sets: Vec<(String, String)>,
    /// Create the leaf in DIR/NAME (DIR inside the lab root) instead of <leaves>/NAME
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The templates directory to use alone (default: the built-in templates, with the lab
    /// root's templates/ adding templates or replacing built-in ones of the same name)
    #[arg(long, env = "LAB_TEMPLATES", value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Print what would be written, and write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Replace the template's files in an existing leaf directory (other files are kept)
    #[arg(long)]
    pub force: bool,
    /// Print the leaf directory and the plan (every file with its action) as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: NewArgs) -> Result<()> {
    validate_name(&args.name)?;
    let lab = ctx.lab()?;
    let root = lab.dir.canonicalize().with_context(|| format!("cannot resolve `{}`", lab.dir.display()))?;
    let templates = Templates::resolve(args.templates.map(|d| ctx.cwd.join(d)).as_deref(), Some(&root))?;
    let template = template::find(&templates, &args.template)?;
    let values = template.values(&args.sets)?;
    let leaves_dir = root.join(&lab.manifest.leaves);
    let parent = match &args.dir {
        Some(dir) => inside(&root, &ctx.cwd.join(dir))?,
        None => leaves_dir.clone(),
    };
    if !parent.starts_with(&leaves_dir) {
        eprintln!(
            "warning: `{}` is outside `{}`: `lab leaves` and `lab check --all` only look there (lab.yaml `leaves:`)",
            shown(&root, &parent),
            shown(&root, &leaves_dir)
        );
    }
    let leaf_dir = parent.join(&args.name);
    let request = Request {
        templates_dir: &templates.dir,
        template: &template,
        values: &values,
        name: &args.name,
        leaf_dir: &leaf_dir,
    };
    let plan = scaffold::plan(&request)?;
    let answer = |dry_run: bool| {
        let files: Vec<Value> = plan
            .files
            .iter()
            .map(|f| json!({"path": f.path, "action": action(f, args.force), "origin": f.origin, "bytes": f.bytes.len()}))
            .collect();
        json!({
            "leaf": args.name,
            "dir": leaf_dir.display().to_string(),
            "template": plan.template,
            "dry_run": dry_run,
            "files": files,
        })
    };
    if args.dry_run {
        output::answer(args.json, &answer(true), || print_plan(&root, &plan, args.force))?;
        return match stage::refusal(&plan, args.force) {
            Some(refused) => Err(refused.into()),
            None => Ok(()),
        };
    }
    stage::apply(&plan, args.force)?;
    eprintln!(
        "created leaf `{}` in {} from template `{}` ({} files, leaf.lock included)",
        args.name,
        shown(&root, &leaf_dir),
        plan.template,
        plan.files.len()
    );
    eprintln!("{}", next_steps(&root, &leaf_dir, &args.name));
    output::answer(args.json, &answer(false), || outln!("{}", leaf_dir.display()))?;
    Ok(())
}

/// The commands from a fresh leaf to its first run, in order, from the lab
/// root: `lab run` refuses a leaf that is not committed, so the commit is one of them.
fn next_steps(root: &Path, leaf_dir: &Path, name: &str) -> String {
    let at = shown(root, leaf_dir);
    let git_init = if vcs::in_worktree(root) { "" } else { "git init && " };
    format!(
        "next, from the lab root:\n  \
         1. describe the task in Section 1 of {at}/program.md (and its data in the frozen files)\n  \
         2. lab lock {name} && lab check {name}\n  \
         3. {git_init}git add -- {at} && git commit -m \"Add leaf {name}\"   (lab run refuses uncommitted leaves)\n  \
         4. cd {at} && lab run --smoke"
    )
}

/// What writing the plan does to one file: create it, replace it (`--force`),
/// or refuse because it exists.
fn action(file: &Planned, force: bool) -> &'static str {
    match (file.exists, force) {
        (false, _) => "create",
        (true, true) => "replace",
        (true, false) => "exists",
    }
}

fn print_plan(root: &Path, plan: &Plan, force: bool) {
    outln!("would write {}/ from template `{}`:", shown(root, &plan.leaf_dir), plan.template);
    for file in &plan.files {
        let action = action(file, force);
        outln!("  {action:<8} {:<24} {} ({} bytes)", file.path, file.origin, file.bytes.len());
    }
}

/// `dir` made absolute, with `..` resolved and symbolic links followed where it
/// exists, and required to lie inside the lab `root`.
fn inside(root: &Path, dir: &Path) -> Result<PathBuf, LabError> {
    let mut normal = PathBuf::new();
    for part in dir.components() {
        match part {
            Component::ParentDir => {
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    let existing = normal.ancestors().find(|a| a.exists()).unwrap_or(Path::new("/"));
    let rest = normal.strip_prefix(existing).unwrap_or(Path::new(""));
    let resolved = existing.canonicalize().unwrap_or_else(|_| existing.to_path_buf()).join(rest);
    if resolved.starts_with(root) {
        Ok(resolved)
    } else {
        Err(LabError::usage(format!("--dir `{}` is outside the lab root `{}`", dir.display(), root.display())))
    }
}
