//! The collecting reader. Each getter removes its key from the table, converts it, and
//! on failure records an error and hands back the default, so one run finds every
//! problem. Whatever is still in the table afterwards is an unknown key.

use std::collections::HashMap;

use toml::{Table, Value};

use super::{ConfigError, ENV_PREFIX};

/// Why a value was refused; the reader adds the key path.
#[derive(Debug)]
pub(super) struct Problem {
    pub message: String,
    pub hint: String,
}

impl Problem {
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Problem { message: message.into(), hint: hint.into() }
    }
}

/// Where an override came from: errors name the variable, and a value whose TOML reading
/// has the wrong type gets a second chance as its raw text.
#[derive(Debug)]
pub(super) struct EnvSource {
    pub var: String,
    pub raw: String,
}

/// Key path -> the variable that set it.
pub(super) type EnvSources = HashMap<String, EnvSource>;

pub(super) struct Reader<'e> {
    table: Table,
    /// Prefix of error keys, e.g. `submission.trusted_networks[2].`.
    prefix: String,
    /// Prefix for `requested`, with indices erased: `submission.trusted_networks[].`.
    known_prefix: String,
    env: &'e EnvSources,
    pub errors: Vec<ConfigError>,
    /// Every key a getter asked for, so a test can compare the reader with `KNOWN_KEYS`.
    pub requested: Vec<String>,
}

impl<'e> Reader<'e> {
    pub fn new(table: Table, env: &'e EnvSources) -> Self {
        Reader::nested(table, env, String::new(), String::new())
    }

    pub fn nested(table: Table, env: &'e EnvSources, prefix: String, known_prefix: String) -> Self {
        Reader { table, prefix, known_prefix, env, errors: Vec::new(), requested: Vec::new() }
    }

    pub fn env(&self) -> &'e EnvSources {
        self.env
    }

    /// Record a problem at `key` (relative to this reader). Keys set from the environment
    /// get the variable name appended, since the file is not where the value came from.
    pub fn error(&mut self, key: &str, message: impl Into<String>, hint: impl Into<String>) {
        let full = format!("{}{key}", self.prefix);
        let mut message = message.into();
        let source = self.env.iter().find(|(k, _)| {
            full == **k || full.strip_prefix(k.as_str()).is_some_and(|rest| rest.starts_with(['.', '[']))
        });
        if let Some((_, src)) = source {
            message.push_str(&format!(" (set by {})", src.var));
        }
        self.errors.push(ConfigError::new(full, message, hint));
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

/// "did you mean ..." for a misspelt or misplaced key, else a pointer to the docs.
pub(super) fn suggestion(key: &str, known: &[&str]) -> String {
    match closest(key, known) {
        Some(k) => format!("did you mean `{k}`?"),
        None => "see docs/configuration.md for the list of keys".to_string(),
    }
}

/// A known key or section within edit distance 2 (ignoring case), else a known key with
/// the same last component in another section (`max_recipients` at the top level).
fn closest(key: &str, known: &[&str]) -> Option<String> {
    let mut candidates: Vec<String> = Vec::new();
    for k in known.iter().filter(|k| !k.contains("[]")) {
        candidates.push(k.to_string());
        let mut acc = String::new();
        for part in k.split('.') {
            if !acc.is_empty() {
                candidates.push(acc.clone());
                acc.push('.');
            }
            acc.push_str(part);
        }
    }
    candidates.sort();
    candidates.dedup();
    let lower = key.to_ascii_lowercase();
    let best = candidates
        .iter()
        .map(|c| (edit_distance(&lower, c), c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d);
    if let Some((_, c)) = best {
        return Some(c.clone());
    }
    let leaf = lower.rsplit('.').next().unwrap_or(&lower);
    candidates.into_iter().find(|c| c.contains('.') && c.rsplit('.').next() == Some(leaf))
}

/// Levenshtein distance over chars; key names are short, so O(n·m) is fine.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

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
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else { continue };
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

/// A short description of a value for "expected X, found Y" messages.
pub(super) fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("string \"{s}\""),
        Value::Integer(i) => format!("integer {i}"),
        Value::Float(f) => format!("float {f}"),
        Value::Boolean(b) => format!("boolean {b}"),
        Value::Datetime(d) => format!("datetime {d}"),
        Value::Array(_) => "an array".to_string(),
        Value::Table(_) => "a table".to_string(),
    }
}

pub(super) fn string(v: &Value) -> Result<String, Problem> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(Problem::new(format!("expected a string, found {}", describe(other)), "put the value in quotes")),
    }
}

pub(super) fn nonempty_string(v: &Value) -> Result<String, Problem> {
    let s = string(v)?;
    if s.trim().is_empty() {
        return Err(Problem::new("must not be empty", "remove the key to use the default"));
    }
    Ok(s)
}

pub(super) fn boolean(v: &Value) -> Result<bool, Problem> {
    match v {
        Value::Boolean(b) => Ok(*b),
        other => Err(Problem::new(format!("expected true or false, found {}", describe(other)), "write true or false without quotes")),
    }
}

/// An integer between `min` and `max` inclusive.
pub(super) fn integer(min: u64, max: u64) -> impl Fn(&Value) -> Result<u64, Problem> {
    move |v| match v {
        Value::Integer(i) => match u64::try_from(*i) {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(Problem::new(format!("{i} is out of range"), format!("use a whole number from {min} to {max}"))),
        },
        other => Err(Problem::new(
            format!("expected a whole number, found {}", describe(other)),
            format!("use a whole number from {min} to {max}, without quotes"),
        )),
    }
}
