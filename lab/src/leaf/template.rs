//! Leaf templates: a directory under the templates directory with a
//! `template.yaml` and the files of a leaf (`.j2` ones rendered by minijinja).
//!
//! `template.yaml` declares the template's variables with a type (string, int,
//! float, bool, choice), an optional default (a variable without one must be
//! given with `--set`) and a help line. `--set KEY=VALUE` values are parsed to
//! the declared type; an unknown key, a repeated key or a value of the wrong
//! type is an error. `name`, `leaf` and `template` are reserved: the leaf's
//! name comes from `lab new NAME`, and `leaf` is the rendered manifest.
//! Directories whose name starts with `_` (like `_partials/`) are not templates.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_norway::Value as Yaml;

use super::builtin::Templates;
use super::manifest::validate_name;
use crate::error::LabError;

pub const FILE: &str = "template.yaml";
pub const RESERVED: [&str; 3] = ["name", "leaf", "template"];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateManifest {
    /// Equals the template's directory name.
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub variables: Vec<Variable>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: VarType,
    /// None: required, must be given with `--set`.
    #[serde(default)]
    pub default: Option<Yaml>,
    pub help: String,
    /// The allowed values of a `choice`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VarType {
    String,
    Int,
    Float,
    Bool,
    Choice,
}

/// A typed variable value.
#[derive(Debug, Clone, PartialEq)]
pub enum VarValue {
    String(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl fmt::Display for VarValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VarValue::String(s) => f.write_str(s),
            VarValue::Int(i) => write!(f, "{i}"),
            VarValue::Float(x) => write!(f, "{x:?}"),
            VarValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl Variable {
    /// Parse `--set` text to this variable's type.
    pub fn parse(&self, text: &str) -> Result<VarValue, String> {
        let expected = |what: &str| format!("`{}` must be {what}, not `{text}`", self.name);
        match self.kind {
            VarType::String => Ok(VarValue::String(text.to_owned())),
            VarType::Int => text.trim().parse().map(VarValue::Int).map_err(|_| expected("an integer")),
            VarType::Float => match text.trim().parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(VarValue::Float(x)),
                _ => Err(expected("a finite number")),
            },
            VarType::Bool => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Ok(VarValue::Bool(true)),
                "false" | "no" | "0" => Ok(VarValue::Bool(false)),
                _ => Err(expected("true or false")),
            },
            VarType::Choice if self.choices.iter().any(|c| c == text) => Ok(VarValue::String(text.to_owned())),
            VarType::Choice => Err(expected(&format!("one of {}", self.choices.join(", ")))),
        }
    }

    /// The declared default, type-checked; None when the variable is required.
    pub fn default_value(&self) -> Result<Option<VarValue>, String> {
        let Some(default) = &self.default else { return Ok(None) };
        let value = match (self.kind, default) {
            (VarType::String, Yaml::String(s)) => VarValue::String(s.clone()),
            (VarType::Choice, Yaml::String(s)) => self.parse(s)?,
            (VarType::Int, Yaml::Number(n)) if n.is_i64() => VarValue::Int(n.as_i64().unwrap_or_default()),
            (VarType::Float, Yaml::Number(n)) => VarValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            (VarType::Bool, Yaml::Bool(b)) => VarValue::Bool(*b),
            _ => return Err(format!("the default of `{}` is not a {:?}", self.name, self.kind).to_lowercase()),
        };
        Ok(Some(value))
    }
}

/// A template on disk.
#[derive(Debug, Clone)]
pub struct Template {
    pub dir: PathBuf,
    pub manifest: TemplateManifest,
}

impl Template {
    pub fn load(dir: &Path) -> Result<Self, LabError> {
        let path = dir.join(FILE);
        let text = crate::yaml::read(&path)?;
        let manifest: TemplateManifest =
            serde_norway::from_str(&text).map_err(|e| LabError::usage(format!("invalid `{}`: {e}", path.display())))?;
        let problems = problems(&manifest, &super::discover::dir_name(dir));
        if !problems.is_empty() {
            return Err(LabError::usage(format!("invalid `{}`: {}", path.display(), problems.join("; "))));
        }
        Ok(Self { dir: dir.to_path_buf(), manifest })
    }

    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The value of every variable: `--set` pairs over defaults. Errors name the key.
    pub fn values(&self, sets: &[(String, String)]) -> Result<Vec<(String, VarValue)>, LabError> {
        let known = || self.manifest.variables.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", ");
        for (i, (key, _)) in sets.iter().enumerate() {
            if key == "name" {
                return Err(LabError::usage("`name` is not a variable: the leaf's name is the NAME argument"));
            }
            if !self.manifest.variables.iter().any(|v| &v.name == key) {
                return Err(LabError::usage(format!("template `{}` has no variable `{key}`", self.name()))
                    .hint(format!("its variables: {} (`lab templates` describes them)", known())));
            }
            if sets[..i].iter().any(|(k, _)| k == key) {
                return Err(LabError::usage(format!("`--set {key}=...` is given twice")));
            }
        }
        let mut values = Vec::new();
        for var in &self.manifest.variables {
            let value = match sets.iter().find(|(k, _)| *k == var.name) {
                Some((_, text)) => var.parse(text).map_err(LabError::usage)?,
                None => var.default_value().map_err(LabError::usage)?.ok_or_else(|| {
                    LabError::usage(format!("template `{}` needs `--set {}=...`: {}", self.name(), var.name, var.help))
                })?,
            };
            values.push((var.name.clone(), value));
        }
        Ok(values)
    }
}

fn problems(manifest: &TemplateManifest, dir_name: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if manifest.name != dir_name {
        problems.push(format!("name `{}` differs from the directory name `{dir_name}`", manifest.name));
    }
    for (i, var) in manifest.variables.iter().enumerate() {
        let ident = var.name.starts_with(|c: char| c.is_ascii_lowercase())
            && var.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ident {
            problems.push(format!("variable `{}`: use lowercase letters, digits and underscores", var.name));
        }
        if RESERVED.contains(&var.name.as_str()) {
            problems.push(format!("variable `{}` is reserved", var.name));
        }
        if manifest.variables[..i].iter().any(|v| v.name == var.name) {
            problems.push(format!("variable `{}` is declared twice", var.name));
        }
        if (var.kind == VarType::Choice) == var.choices.is_empty() {
            problems.push(format!("variable `{}`: `choices` goes with type choice, and only with it", var.name));
        }
        if let Err(e) = var.default_value() {
            problems.push(e);
        }
    }
    problems
}

/// Every template directory below `templates_dir`, sorted, loaded or with its error.
pub fn list(templates_dir: &Path) -> Result<Vec<(PathBuf, Result<Template, LabError>)>> {
    let entries = std::fs::read_dir(templates_dir).map_err(|e| {
        LabError::usage(format!("cannot read templates directory `{}`: {e}", templates_dir.display()))
            .hint("point --templates (or LAB_TEMPLATES) at a directory of templates")
    })?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && !super::discover::dir_name(p).starts_with(['_', '.']))
        .collect();
    dirs.sort();
    Ok(dirs.into_iter().map(|d| (d.clone(), Template::load(&d))).collect())
}

/// The template named `name` among `templates`.
pub fn find(templates: &Templates, name: &str) -> Result<Template, LabError> {
    let dir = templates.dir.join(name);
    if validate_name(name).is_err() || !dir.join(FILE).is_file() {
        let names: Vec<String> = list(&templates.dir)
            .map(|l| l.into_iter().map(|(d, _)| super::discover::dir_name(&d)).collect())
            .unwrap_or_default();
        return Err(LabError::usage(format!("no template `{name}` in {}", templates.label))
            .hint(format!("available: {} (`lab templates` describes them)", names.join(", "))));
    }
    Template::load(&dir)
}

/// `KEY=VALUE` from `--set`.
pub fn parse_set(text: &str) -> Result<(String, String), String> {
    let (key, value) = text.split_once('=').ok_or_else(|| format!("expected KEY=VALUE, got `{text}`"))?;
    if key.trim().is_empty() {
        return Err(format!("empty key in `{text}`"));
    }
    Ok((key.trim().to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(yaml: &str) -> TemplateManifest {
        serde_norway::from_str(yaml).unwrap()
    }

    fn template() -> Template {
        let manifest = manifest(
            "name: t\ndescription: d\nvariables:\n\
             - {name: epochs, type: int, default: 3, help: h}\n\
             - {name: lr, type: float, default: 0.1, help: h}\n\
             - {name: goal, type: choice, choices: [minimize, maximize], default: minimize, help: h}\n\
             - {name: fast, type: bool, default: false, help: h}\n\
             - {name: title, type: string, help: required}\n",
        );
        assert!(problems(&manifest, "t").is_empty(), "{:?}", problems(&manifest, "t"));
        Template { dir: PathBuf::from("t"), manifest }
    }

    fn sets(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn values_are_typed_and_defaults_fill_in() {
        let values = template().values(&sets(&[("lr", "3e-4"), ("title", "x"), ("fast", "yes")])).unwrap();
        let shown: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(shown, ["epochs=3", "lr=0.0003", "goal=minimize", "fast=true", "title=x"]);
    }

    #[test]
    fn bad_sets_name_the_key() {
        let t = template();
        let err = |pairs: &[(&str, &str)]| t.values(&sets(pairs)).unwrap_err().message;
        assert!(err(&[("title", "x"), ("epochz", "1")]).contains("no variable `epochz`"));
        assert!(err(&[("title", "x"), ("epochs", "1.5")]).contains("`epochs` must be an integer"));
        assert!(err(&[("title", "x"), ("goal", "up")]).contains("one of minimize, maximize"));
        assert!(err(&[("title", "x"), ("lr", "nan")]).contains("finite"));
        assert!(err(&[("title", "x"), ("title", "y")]).contains("twice"));
        assert!(err(&[("name", "x")]).contains("NAME argument"));
        assert!(err(&[]).contains("needs `--set title=...`"));
    }

    #[test]
    fn a_bad_template_manifest_lists_its_problems() {
        let m = manifest(
            "name: other\ndescription: d\nvariables:\n\
             - {name: leaf, type: string, default: x, help: h}\n\
             - {name: n, type: int, default: many, help: h}\n\
             - {name: c, type: choice, help: h}\n",
        );
        let found = problems(&m, "t");
        assert_eq!(found.len(), 4, "{found:?}");
    }

    #[test]
    fn set_needs_an_equals_sign() {
        assert_eq!(parse_set("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(parse_set("ab").is_err() && parse_set("=b").is_err());
    }
}
