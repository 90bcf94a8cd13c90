//! The tools `lab mcp` offers, and how a call becomes a `lab` command line.
//!
//! A tool is a subcommand of the CLI and its arguments are that subcommand's
//! clap arguments, read from the parser itself ([`crate::cli::Cli`]), not
//! written down a second time: an argument's name is its clap id
//! (`mechanism_confirmed`), its JSON type follows from its action and value
//! parser (a flag is a boolean, an integer parser an integer, the rest strings;
//! a value enum lists its values), its description is its help text. So no
//! tool takes an argument the CLI does not, a renamed flag renames the tool's
//! argument, and the CLI's own validation (ids, budgets, conflicts, required
//! unless) stays the only one: here only JSON types are checked. A subcommand
//! with subcommands of its own (`queue`) takes them as `action`. What the
//! server decides is never offered: the lab root, the output format (always
//! JSON) and `--quiet` (progress is streamed instead).

use std::any::TypeId;
use std::collections::BTreeMap;

use clap::{Arg, ArgAction, Command, CommandFactory as _};
use rmcp::model::{ErrorData, JsonObject, Tool};
use serde_json::{Map, Value, json};

use crate::cli::Cli;

/// The tools, each the `lab` subcommand of the same name.
pub const NAMES: [&str; 14] = [
    "context",
    "failures",
    "log",
    "hypothesis",
    "experiment",
    "result",
    "run",
    "gate",
    "holdout",
    "queue",
    "leaves",
    "show",
    "check",
    "verify",
];

/// Arguments the server sets itself (or clap's own), offered by no tool.
const NOT_OFFERED: [&str; 6] = ["root", "format", "json", "quiet", "help", "version"];

/// The JSON type of an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Flag,
    Integer { unsigned: bool },
    Text,
}

impl Kind {
    fn of(arg: &Arg) -> Self {
        if matches!(arg.get_action(), ArgAction::SetTrue) {
            return Self::Flag;
        }
        let parsed = arg.get_value_parser().type_id();
        let unsigned = [TypeId::of::<usize>(), TypeId::of::<u64>(), TypeId::of::<u32>()];
        if unsigned.iter().any(|t| parsed == *t) {
            Self::Integer { unsigned: true }
        } else if parsed == TypeId::of::<i64>() {
            Self::Integer { unsigned: false }
        } else {
            Self::Text
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Flag => "boolean",
            Self::Integer { .. } => "integer",
            Self::Text => "string",
        }
    }

    fn article(self) -> &'static str {
        match self {
            Self::Integer { .. } => "an",
            Self::Flag | Self::Text => "a",
        }
    }

    /// The command-line word for `value`; `None` when it is not of this type.
    fn word(self, value: &Value) -> Option<String> {
        match (self, value) {
            (Self::Flag, Value::Bool(b)) => Some(b.to_string()),
            (Self::Integer { .. }, Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
            (Self::Text, Value::String(s)) => Some(s.clone()),
            _ => None,
        }
    }
}

/// The CLI's command tree, from which every tool is read.
#[derive(Debug)]
pub struct Catalog {
    cli: Command,
}

impl Default for Catalog {
    fn default() -> Self {
        let mut cli = Cli::command();
        cli.build();
        Self { cli }
    }
}

impl Catalog {
    pub fn tools(&self) -> Vec<Tool> {
        NAMES.iter().map(|name| self.tool(name)).collect()
    }

    fn tool(&self, name: &'static str) -> Tool {
        let command = self.command(name).unwrap_or_else(|| panic!("`lab {name}` is no subcommand"));
        let mut description =
            command.get_long_about().or(command.get_about()).map(|s| s.to_string()).unwrap_or_default();
        for action in actions_of(command) {
            let about = action.get_about().map(|s| s.to_string()).unwrap_or_default();
            description.push_str(&format!("\n- action `{}`: {about}", action.get_name()));
        }
        Tool::new(name, description, schema(command))
    }

    fn command(&self, name: &str) -> Option<&Command> {
        NAMES.contains(&name).then(|| self.cli.find_subcommand(name)).flatten()
    }

    /// The `lab` arguments (after `--root`) that a call of tool `name` runs;
    /// an unknown tool, argument or action, or a value of the wrong JSON type, is
    /// the caller's error (invalid params), and nothing runs.
    pub fn argv(&self, name: &str, mut args: JsonObject) -> Result<Vec<String>, ErrorData> {
        let (command, mut argv) = self.resolve(name, &mut args)?;
        let path = argv.join(" ");
        argv.push("--json".to_owned());
        let mut positionals = Vec::new();
        for (key, value) in args.iter().filter(|(_, v)| !v.is_null()) {
            let (arg, kind, word) = word(&path, command, key, value)?;
            match (arg.get_long(), kind) {
                (None, _) => positionals.push((arg.get_index(), word)),
                (Some(long), Kind::Flag) if word == "true" => argv.push(format!("--{long}")),
                (Some(_), Kind::Flag) => {}
                (Some(long), _) => argv.push(format!("--{long}={word}")),
            }
        }
        if !positionals.is_empty() {
            // After `--` a value that starts with `-` (a title) is not read as a flag.
            positionals.sort();
            argv.push("--".to_owned());
            argv.extend(positionals.into_iter().map(|(_, word)| word));
        }
        Ok(argv)
    }

    /// The command a call of `name` runs (its `action` taken out of `args`) and the words naming it.
    fn resolve(&self, name: &str, args: &mut JsonObject) -> Result<(&Command, Vec<String>), ErrorData> {
        let tools = NAMES.join(", ");
        let command = self.command(name).ok_or_else(|| invalid(format!("no tool `{name}`; the tools: {tools}")))?;
        if !command.has_subcommands() {
            return Ok((command, vec![name.to_owned()]));
        }
        let actions: Vec<&str> = actions_of(command).map(Command::get_name).collect();
        let wanted = format!("`{name}` takes an `action`: one of {}", actions.join(", "));
        let action = args.remove("action");
        let action = actions_of(command).find(|c| action.as_ref().and_then(Value::as_str) == Some(c.get_name()));
        let action = action.ok_or_else(|| invalid(wanted))?;
        Ok((action, vec![name.to_owned(), action.get_name().to_owned()]))
    }
}

/// The argument `key` of the command at `path`, its kind, and its command-line word for `value`.
fn word<'c>(path: &str, command: &'c Command, key: &str, value: &Value) -> Result<(&'c Arg, Kind, String), ErrorData> {
    let Some(arg) = offered(command).find(|a| a.get_id() == key) else {
        let taken: Vec<String> = offered(command).map(|a| a.get_id().to_string()).collect();
        return Err(invalid(format!("`{path}` has no argument `{key}`; it takes: {}", taken.join(", "))));
    };
    let kind = Kind::of(arg);
    let word =
        kind.word(value).ok_or_else(|| invalid(format!("`{key}` must be {} {}", kind.article(), kind.name())))?;
    Ok((arg, kind, word))
}

fn invalid(message: String) -> ErrorData {
    ErrorData::invalid_params(message, None)
}

/// The subcommands of `command` a tool takes as its `action` (not clap's `help`).
fn actions_of(command: &Command) -> impl Iterator<Item = &Command> {
    command.get_subcommands().filter(|c| !NOT_OFFERED.contains(&c.get_name()))
}

/// The arguments of `command` a tool takes: positional or with a long flag, and not the server's.
fn offered(command: &Command) -> impl Iterator<Item = &Arg> {
    command.get_arguments().filter(|a| {
        !NOT_OFFERED.contains(&a.get_id().as_str()) && !a.is_hide_set() && (a.is_positional() || a.get_long().is_some())
    })
}

/// The input schema of a tool: one property per offered argument (for a
/// command with actions, `action` and the arguments of every action).
fn schema(command: &Command) -> JsonObject {
    let (properties, required) = if command.has_subcommands() {
        actions(command)
    } else {
        let properties = offered(command).map(|a| (a.get_id().to_string(), property(a))).collect();
        (properties, offered(command).filter(|a| a.is_required_set()).map(|a| a.get_id().to_string()).collect())
    };
    let schema =
        json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false});
    let Value::Object(schema) = schema else { unreachable!("json! of an object") };
    schema
}

/// The properties of a command with actions: `action` (required), then each
/// action's arguments, their descriptions naming the actions that take them.
fn actions(command: &Command) -> (Map<String, Value>, Vec<String>) {
    let names: Vec<&str> = actions_of(command).map(Command::get_name).collect();
    let mut properties = Map::new();
    properties.insert("action".into(), json!({"type": "string", "enum": names, "description": "What to do"}));
    let mut takers: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for action in actions_of(command) {
        for arg in offered(action) {
            let id = arg.get_id().to_string();
            properties.entry(id.clone()).or_insert_with(|| property(arg));
            takers.entry(id).or_default().push(action.get_name());
        }
    }
    for (id, names) in takers {
        let note = format!("(action {})", names.join(", "));
        let help = properties[&id]["description"].as_str().map_or_else(|| note.clone(), |d| format!("{d} {note}"));
        properties[&id]["description"] = help.into();
    }
    (properties, vec!["action".to_owned()])
}

/// One argument's JSON schema: its type (with a value enum's values), its help, its default.
fn property(arg: &Arg) -> Value {
    let kind = Kind::of(arg);
    let mut property = json!({"type": kind.name()});
    if kind == (Kind::Integer { unsigned: true }) {
        property["minimum"] = 0.into();
    }
    let values: Vec<String> = arg.get_possible_values().iter().map(|v| v.get_name().to_owned()).collect();
    if kind == Kind::Text && !values.is_empty() {
        property["enum"] = values.into();
    }
    if let Some(help) = arg.get_help() {
        property["description"] = help.to_string().into();
    }
    let default = arg.get_default_values().first().map(|d| d.to_string_lossy().into_owned());
    match (kind, default) {
        (Kind::Integer { .. }, Some(d)) => property["default"] = d.parse::<i64>().map_or(Value::Null, Value::from),
        (Kind::Text, Some(d)) => property["default"] = d.into(),
        _ => {}
    }
    property
}

#[cfg(test)]
mod tests;
