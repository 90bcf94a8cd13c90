use std::fs;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Args;
use serde_json::json;

use crate::ctx::Ctx;
use crate::outln;
use crate::output;
use crate::root::{self, LabRoot, RootManifest};
use crate::store::OpenMode;
use crate::vcs;

/// Make a directory a lab root: write lab.yaml and create .lab/ with the research database.
///
/// Running it again on a lab root is harmless: it checks the manifest and the database.
/// Where `.lab/` exists but its database is missing or empty (a lost research log),
/// every command refuses; `--force` starts an empty one there deliberately.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The directory to make a lab root (default: --root, else the working directory)
    pub dir: Option<PathBuf>,
    /// The lab's name (default: the directory's name)
    #[arg(long)]
    pub name: Option<String>,
    /// Create the database even where `.lab/` exists but the database is missing or
    /// empty (a deliberate fresh start; a database that holds records is never replaced)
    #[arg(long)]
    pub force: bool,
    /// Print the lab root, its database and whether it was created as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: InitArgs) -> Result<()> {
    let dir = args.dir.map_or_else(|| ctx.cwd.clone(), |d| ctx.cwd.join(d));
    fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let dir = dir.canonicalize()?;
    let manifest_path = dir.join(root::MANIFEST);
    let existed = manifest_path.exists();
    if !existed {
        let name = args.name.unwrap_or_else(|| dir.file_name().map_or("lab".into(), |n| n.to_string_lossy().into()));
        let text = serde_norway::to_string(&RootManifest::new(&name))?;
        fs::write(&manifest_path, format!("# lab root manifest: see README.md\n{text}"))
            .with_context(|| format!("cannot write `{}`", manifest_path.display()))?;
    }
    let lab = LabRoot::open(dir)?;
    let store = lab.open_store_with(if args.force { OpenMode::Create } else { OpenMode::CreateIfNew })?;
    let schema_version = store.schema_version()?;
    eprintln!(
        "{} lab `{}` at {} (database {}, schema v{schema_version})",
        if existed { "checked" } else { "initialised" },
        lab.manifest.name,
        lab.dir.display(),
        store.path().display(),
    );
    // A run keeps and discards through git: without a repository the first one is refused.
    let git = if vcs::in_worktree(&lab.dir) { "" } else { "`git init` (lab run keeps and discards through git), " };
    eprintln!("next: {git}`lab templates`, then `lab new NAME --template minimal`");
    let answer = json!({
        "root": lab.dir.display().to_string(),
        "name": lab.manifest.name,
        "database": store.path().display().to_string(),
        "schema_version": schema_version,
        "created": !existed,
    });
    output::answer(args.json, &answer, || outln!("{}", lab.dir.display()))?;
    Ok(())
}
