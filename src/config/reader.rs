//! The collecting reader. Each getter removes its key from the table, converts it, and
//! on failure records an error and hands back the default, so one run finds every
//! problem. Whatever is still in the table afterwards is an unknown key.

use toml::{Table, Value};

use super::ConfigError;
use super::env::EnvSources;
use super::suggest::suggestion;
use super::values::{Problem, describe};

pub(super) struct Reader<'e> {
    table: Table,
    /// Prefix of error keys, e.g. `submission.trusted_networks[2].`.
    prefix: String,
    /// Prefix for `requested`, with indices erased: `submission.trusted_networks[].`.
    known_prefix: String,
    env: &'e EnvSources,
    pub errors: Vec<ConfigError>,
    /// Problems that do not stop the start (deprecated keys); only the top reader collects them.
    pub warnings: Vec<ConfigError>,
    /// Every key a getter asked for, so a test can compare the reader with `KNOWN_KEYS`.
    pub requested: Vec<String>,
}

impl<'e> Reader<'e> {
    pub fn new(table: Table, env: &'e EnvSources) -> Self {
        Reader::nested(table, env, String::new(), String::new())
    }

    pub fn nested(table: Table, env: &'e EnvSources, prefix: String, known_prefix: String) -> Self {
        Reader { table, prefix, known_prefix, env, errors: Vec::new(), warnings: Vec::new(), requested: Vec::new() }
    }

    pub fn env(&self) -> &'e EnvSources {
        self.env
    }

    /// Record a problem at `key` (relative to this reader). Keys set from the environment
    /// get the variable name appended, since the file is not where the value came from.
    pub fn error(&mut self, key: &str, message: impl Into<String>, hint: impl Into<String>) {
        let problem = self.problem(key, message.into(), hint.into());
        self.errors.push(problem);
    }

    /// Like [`Reader::error`], for something that works but should be changed.
    pub fn warn(&mut self, key: &str, message: impl Into<String>, hint: impl Into<String>) {
        let problem = self.problem(key, message.into(), hint.into());
        self.warnings.push(problem);
    }

    fn problem(&self, key: &str, message: String, hint: String) -> ConfigError {
        let full = format!("{}{key}", self.prefix);
        let mut message = message;
        let source = self.env.iter().find(|(k, _)| {
            full == **k || full.strip_prefix(k.as_str()).is_some_and(|rest| rest.starts_with(['.', '[']))
        });
        if let Some((_, src)) = source {
            message.push_str(&format!(" (set by {})", src.var));
        }
        ConfigError::new(full, message, hint)
    }

    /// Remove and return the value at dotted `key`. A non-table on the way is left for
    /// `finish` to report once, rather than once per key below it.
    fn take(&mut self, key: &str) -> Option<Value> {
        let mut parts: Vec<&str> = key.split('.').collect();
        let leaf = parts.pop()?;
        let mut table = &mut self.table;
        for part in parts {
            match table.get_mut(part) {
                Some(Value::Table(t)) => table = t,
                _ => return None,
            }
        }
        table.remove(leaf)
    }

    /// Read `key` with `conv`; absent or invalid gives `default` (the latter with an error).
    pub fn get<T>(&mut self, key: &str, default: T, conv: impl Fn(&Value) -> Result<T, Problem>) -> T {
        self.requested.push(format!("{}{key}", self.known_prefix));
        match self.take(key) {
            Some(value) => self.convert(key, &value, conv).unwrap_or(default),
            None => default,
        }
    }

    /// Like [`Reader::get`] for keys without a default.
    pub fn opt<T>(&mut self, key: &str, conv: impl Fn(&Value) -> Result<T, Problem>) -> Option<T> {
        self.get(key, None, |v| conv(v).map(Some))
    }

    /// Like [`Reader::opt`], but absence is an error too.
    pub fn required<T>(&mut self, key: &str, hint: &str, conv: impl Fn(&Value) -> Result<T, Problem>) -> Option<T> {
        self.requested.push(format!("{}{key}", self.known_prefix));
        match self.take(key) {
            Some(value) => self.convert(key, &value, conv),
            None => {
                self.error(key, "is required", hint);
                None
            }
        }
    }

    fn convert<T>(&mut self, key: &str, value: &Value, conv: impl Fn(&Value) -> Result<T, Problem>) -> Option<T> {
        match conv(value) {
            Ok(v) => Some(v),
            Err(problem) => {
                let full = format!("{}{key}", self.prefix);
                if let Some(src) = self.env.get(&full).filter(|_| !value.is_str())
                    && let Ok(v) = conv(&Value::String(src.raw.clone()))
                {
                    return Some(v);
                }
                self.error(key, problem.message, problem.hint);
                None
            }
        }
    }

    /// Raw access for keys that need custom handling (arrays of tables).
    pub fn take_raw(&mut self, key: &str) -> Option<Value> {
        self.requested.push(format!("{}{key}", self.known_prefix));
        self.take(key)
    }

    /// Merge a nested reader, reporting its leftovers against `known` (its own keys).
    pub fn absorb(&mut self, sub: Reader<'_>, known: &[&str]) {
        let (errors, requested) = sub.finish(known);
        self.errors.extend(errors);
        self.requested.extend(requested);
    }

    /// Report every key nobody asked for, and return all errors and requested keys.
    pub fn finish(mut self, known: &[&str]) -> (Vec<ConfigError>, Vec<String>) {
        let table = std::mem::take(&mut self.table);
        self.leftovers(&table, "", known);
        (self.errors, self.requested)
    }

    fn leftovers(&mut self, table: &Table, path: &str, known: &[&str]) {
        for (k, v) in table {
            let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            let section_prefix = format!("{p}.");
            let is_section = known.iter().any(|kk| kk.starts_with(&section_prefix));
            match v {
                Value::Table(t) if is_section => self.leftovers(t, &p, known),
                _ if is_section => self.error(
                    &p,
                    format!("expected a table, found {}", describe(v)),
                    format!("write the keys under a [{p}] header"),
                ),
                _ => {
                    let what = if v.is_table() { "unknown section" } else { "unknown key" };
                    let hint = suggestion(&p, known);
                    self.error(&p, what, hint);
                }
            }
        }
    }
}
