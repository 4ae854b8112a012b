//! `GATEPOST__SECTION__KEY` environment overrides, applied to the parsed table before it
//! is read, so overridden values go through exactly the same checks as the file.

use std::collections::HashMap;

use toml::{Table, Value};

use super::suggest::suggestion;
use super::{ConfigError, ENV_PREFIX};

/// Where an override came from: errors name the variable, and a value whose TOML reading
/// has the wrong type gets a second chance as its raw text.
#[derive(Debug)]
pub(super) struct EnvSource {
    pub var: String,
    pub raw: String,
}

/// Key path -> the variable that set it.
pub(super) type EnvSources = HashMap<String, EnvSource>;

/// Apply `GATEPOST__SECTION__KEY=value` overrides to `table`. Only known keys (and the
/// forbidden ones, so they get their pointed error) are accepted; the value is read as a
/// TOML value when it is one (`50`, `true`, `["a"]`), else taken as a string.
pub(super) fn apply_env(
    table: &mut Table,
    env: &[(String, String)],
    known: &[&str],
    forbidden: &[&str],
    errors: &mut Vec<ConfigError>,
) -> EnvSources {
    let mut sources = EnvSources::new();
    for (var, raw) in env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let parts: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if parts.iter().any(String::is_empty) {
            errors.push(ConfigError::new(
                var.clone(),
                format!("malformed override variable {var}"),
                "use GATEPOST__SECTION__KEY, with double underscores between parts",
            ));
            continue;
        }
        let path = parts.join(".");
        if !known.contains(&path.as_str()) && !forbidden.contains(&path.as_str()) {
            errors.push(ConfigError::new(
                path.clone(),
                format!("unknown key (set by {var})"),
                suggestion(&path, known),
            ));
            continue;
        }
        if let Some(previous) = sources.get(&path) {
            errors.push(ConfigError::new(
                path.clone(),
                format!("set by both {} and {var}", previous.var),
                "set each key in one variable only",
            ));
            continue;
        }
        let raw = raw.trim().to_string();
        let value = raw.parse::<Value>().unwrap_or_else(|_| Value::String(raw.clone()));
        if let Err(section) = insert(table, &parts, value) {
            errors.push(ConfigError::new(
                section.clone(),
                format!("cannot apply {var}: `{section}` in the file is not a table"),
                format!("write the keys under a [{section}] header"),
            ));
            continue;
        }
        sources.insert(path, EnvSource { var: var.clone(), raw });
    }
    sources
}

/// Insert at a path, creating sections; `Err(section)` if a section is not a table.
fn insert(table: &mut Table, parts: &[String], value: Value) -> Result<(), String> {
    let (leaf, sections) = parts.split_last().expect("path has at least one part");
    let mut t = table;
    for (i, part) in sections.iter().enumerate() {
        let entry = t.entry(part.clone()).or_insert_with(|| Value::Table(Table::new()));
        match entry {
            Value::Table(inner) => t = inner,
            _ => return Err(parts[..=i].join(".")),
        }
    }
    t.insert(leaf.clone(), value);
    Ok(())
}
