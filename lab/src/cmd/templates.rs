use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::leaf::builtin::Templates;
use crate::leaf::template::{self, VarValue, Variable};
use crate::output;
use crate::output::{FormatArgs, Report, Table};

/// The templates `lab new` can render, with their variables (type, default, help).
///
/// A template whose template.yaml is invalid is listed with its error.
#[derive(Debug, Args)]
pub struct TemplatesArgs {
    /// The templates directory to use alone (default: the built-in templates, with the lab
    /// root's templates/ adding templates or replacing built-in ones of the same name)
    #[arg(long, env = "LAB_TEMPLATES", value_name = "DIR")]
    pub templates: Option<PathBuf>,
    #[command(flatten)]
    pub output: FormatArgs,
}

pub fn run(ctx: &Ctx, args: TemplatesArgs) -> Result<()> {
    // No lab root is needed to browse templates.
    let lab_dir = ctx.lab().ok().map(|lab| lab.dir);
    let source = Templates::resolve(args.templates.map(|d| ctx.cwd.join(d)).as_deref(), lab_dir.as_deref())?;
    let mut templates = Table::new(&["template", "description", "path", "error"]);
    let mut variables = Table::new(&["template", "variable", "type", "default", "help"]);
    let mut docs = Vec::new();
    for (dir, loaded) in template::list(&source.dir)? {
        let path = source.origin(&dir);
        let name = crate::leaf::discover::dir_name(&dir);
        match loaded {
            Ok(t) => {
                templates.push(vec![json!(name), json!(t.manifest.description), json!(path), Value::Null]);
                for var in &t.manifest.variables {
                    variables.push(vec![json!(name), json!(var.name), json!(kind(var)), default(var), json!(var.help)]);
                }
                let vars: Vec<Value> = t
                    .manifest
                    .variables
                    .iter()
                    .map(|v| json!({"name": v.name, "type": kind(v), "default": default(v), "help": v.help, "choices": v.choices}))
                    .collect();
                docs.push(
                    json!({"name": name, "description": t.manifest.description, "path": path, "variables": vars}),
                );
            }
            Err(e) => {
                templates.push(vec![json!(name), Value::Null, json!(path), json!(e.message)]);
                docs.push(json!({"name": name, "path": path, "error": e.message}));
            }
        }
    }
    let report = Report {
        json: Value::Array(docs),
        sections: vec![("templates".to_owned(), templates), ("variables".to_owned(), variables)],
    };
    report.write(args.output.format(), &mut output::stdout())?;
    Ok(())
}

/// `choice (a|b)` or the plain type name.
fn kind(var: &Variable) -> String {
    let name = format!("{:?}", var.kind).to_lowercase();
    if var.choices.is_empty() { name } else { format!("{name} ({})", var.choices.join("|")) }
}

/// The default, typed in JSON; null for a required variable.
fn default(var: &Variable) -> Value {
    match var.default_value() {
        Ok(Some(VarValue::String(s))) => json!(s),
        Ok(Some(VarValue::Int(i))) => json!(i),
        Ok(Some(VarValue::Float(x))) => json!(x),
        Ok(Some(VarValue::Bool(b))) => json!(b),
        _ => Value::Null,
    }
}
