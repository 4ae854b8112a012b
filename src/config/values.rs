//! Converters from TOML values to config types. Each returns a [`Problem`] without the
//! key; the reader adds the key and keeps going.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use toml::Value;

use super::LogFormat;
use super::suggest::edit_distance;
use super::units::{DURATION_UNITS, SIZE_UNITS, parse_duration, parse_size};

pub(super) const SECRETS_HINT: &str = "secrets are never inline: use relay.password_file or relay.password_env";

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

/// A mailbox address like `relay@example.net` (no display name, no angle brackets).
pub(super) fn address(v: &Value) -> Result<String, Problem> {
    let s = nonempty_string(v)?;
    let ok = s.rsplit_once('@').is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
        && !s.chars().any(|c| c.is_whitespace() || c == '<' || c == '>' || c == '"');
    if ok { Ok(s) } else { Err(Problem::new("is not a plain address", "write it like relay@example.net")) }
}

pub(super) fn boolean(v: &Value) -> Result<bool, Problem> {
    match v {
        Value::Boolean(b) => Ok(*b),
        other => Err(Problem::new(
            format!("expected true or false, found {}", describe(other)),
            "write true or false without quotes",
        )),
    }
}

/// A whole number from `min` up to `u32::MAX`, which is far beyond any sane limit and
/// fits `u32` and `usize` on every target.
pub(super) fn integer(min: u64) -> impl Fn(&Value) -> Result<u32, Problem> {
    move |v| match v {
        Value::Integer(i) => match u32::try_from(*i) {
            Ok(n) if u64::from(n) >= min => Ok(n),
            _ => Err(Problem::new(format!("{i} is out of range"), format!("use a whole number of at least {min}"))),
        },
        other => Err(Problem::new(
            format!("expected a whole number, found {}", describe(other)),
            format!("use a whole number of at least {min}, without quotes"),
        )),
    }
}

pub(super) fn path(v: &Value) -> Result<PathBuf, Problem> {
    nonempty_string(v).map(PathBuf::from)
}

pub(super) fn count(min: u64) -> impl Fn(&Value) -> Result<usize, Problem> {
    move |v| integer(min)(v).map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// `"forever"` (None) or a duration of at least `min_secs`.
pub(super) fn duration_or_forever(min_secs: u64) -> impl Fn(&Value) -> Result<Option<Duration>, Problem> {
    let inner = duration(min_secs);
    move |v| match v {
        Value::String(s) if s.trim().eq_ignore_ascii_case("forever") => Ok(None),
        other => {
            inner(other).map(Some).map_err(|p| Problem::new(p.message, "\"forever\" or a duration such as \"365d\""))
        }
    }
}

/// A duration of at least `min_secs`. Integers are refused: the unit must be explicit.
pub(super) fn duration(min_secs: u64) -> impl Fn(&Value) -> Result<Duration, Problem> {
    move |v| {
        let hint = "a number with a unit, e.g. \"30s\", \"5m\" or \"1h30m\"";
        let d = match v {
            Value::String(s) => parse_duration(s).map_err(|m| Problem::new(m, hint))?,
            Value::Integer(i) => {
                return Err(Problem::new(
                    format!("{i} has no unit"),
                    format!("write it in quotes with a unit, e.g. \"{i}s\""),
                ));
            }
            other => {
                let m = format!("expected a duration with a unit ({DURATION_UNITS}), found {}", describe(other));
                return Err(Problem::new(m, hint));
            }
        };
        if d.as_secs() < min_secs {
            return Err(Problem::new(format!("must be at least {min_secs}s"), hint));
        }
        Ok(d)
    }
}

pub(super) fn size(v: &Value) -> Result<u64, Problem> {
    let hint = "bytes as a whole number, or a size with a unit, e.g. \"25MiB\" or \"10MB\"";
    let n = match v {
        Value::Integer(i) => u64::try_from(*i).map_err(|_| Problem::new(format!("{i} is negative"), hint))?,
        Value::String(s) => parse_size(s).map_err(|m| Problem::new(m, hint))?,
        other => {
            let m = format!("expected a size ({SIZE_UNITS}), found {}", describe(other));
            return Err(Problem::new(m, hint));
        }
    };
    if n == 0 {
        return Err(Problem::new("must be more than 0 bytes", hint));
    }
    Ok(n)
}

/// A size that may be 0 (a limit that 0 turns off).
pub(super) fn size_or_zero(v: &Value) -> Result<u64, Problem> {
    match v {
        Value::Integer(0) => Ok(0),
        Value::String(s) if parse_size(s) == Ok(0) => Ok(0),
        other => size(other),
    }
}

/// One `"IP:port"` string or a list of them; every bad entry is named in one message.
pub(super) fn listen(v: &Value) -> Result<Vec<SocketAddr>, Problem> {
    let hint = "an IP address and port, e.g. \"127.0.0.1:2587\" or \"[::]:587\"; [] disables the listener";
    let items: Vec<&Value> = match v {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    let mut addrs = Vec::new();
    let mut bad = Vec::new();
    for item in items {
        match item {
            Value::String(s) => match s.trim().parse::<SocketAddr>() {
                Ok(a) => addrs.push(a),
                Err(_) => bad.push(format!("\"{s}\"")),
            },
            other => bad.push(describe(other)),
        }
    }
    if bad.is_empty() {
        Ok(addrs)
    } else {
        Err(Problem::new(format!("not an IP:port address: {}", bad.join(", ")), hint))
    }
}

/// Our name in the greeting and `Received:`; a space or odd character would break both.
pub(super) fn hostname(v: &Value) -> Result<String, Problem> {
    let s = nonempty_string(v)?;
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if s.len() > 253 || !s.split('.').all(label_ok) {
        return Err(Problem::new(
            format!("\"{s}\" is not a valid host name"),
            "a fully qualified domain name, e.g. mail.example.com",
        ));
    }
    Ok(s)
}

pub(super) fn user_name(v: &Value) -> Result<String, Problem> {
    let s = nonempty_string(v)?;
    if s.chars().any(char::is_whitespace) {
        return Err(Problem::new(format!("\"{s}\" contains whitespace"), "a gatepost user name, e.g. \"alice\""));
    }
    Ok(s)
}

pub(super) fn env_var_name(v: &Value) -> Result<String, Problem> {
    let s = nonempty_string(v)?;
    let ok = !s.starts_with(|c: char| c.is_ascii_digit()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !ok {
        return Err(Problem::new(
            format!("\"{s}\" is not an environment variable name"),
            "letters, digits and _, e.g. \"RELAY_PASSWORD\"",
        ));
    }
    Ok(s)
}

/// Scheme checked here so a typo fails at startup, not at the first release hour.
/// Never echoes the URL once it has userinfo, which may hold a password.
pub(super) fn relay_url(v: &Value) -> Result<String, Problem> {
    let s = nonempty_string(v)?;
    let example =
        "e.g. \"smtp+starttls://smtp.example.com:587\", \"smtps://smtp.example.com\" or \"file://data/outbox\"";
    // Text with an `@` may carry a password in any position: describe it, never quote it.
    let shown = if s.contains('@') { "the URL".to_string() } else { format!("\"{s}\"") };
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err(Problem::new(format!("{shown} is not a URL"), example));
    };
    match scheme {
        "file" if rest.is_empty() => Err(Problem::new("a file:// URL needs a directory", example)),
        "file" => Ok(s),
        "smtp" | "smtp+starttls" | "smtps" => {
            let (authority, tail) = rest.split_once('/').unwrap_or((rest, ""));
            if let Some((userinfo, _)) = authority.rsplit_once('@') {
                return Err(if userinfo.contains(':') {
                    Problem::new("the URL contains a password", SECRETS_HINT)
                } else {
                    Problem::new("the URL contains a user name", "put the user name in relay.username")
                });
            }
            if !tail.is_empty() {
                return Err(Problem::new(format!("{shown} has a path; a relay URL is scheme://host[:port]"), example));
            }
            let (host, port) = match authority.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(':') && (!h.starts_with('[') || h.ends_with(']')) => (h, Some(p)),
                _ => (authority, None),
            };
            let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
                Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
                None => !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)),
            };
            let port_ok =
                port.is_none_or(|p| p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|n| n > 0));
            if host_ok && port_ok {
                Ok(s)
            } else {
                Err(Problem::new(format!("{shown} is not scheme://host[:port]"), example))
            }
        }
        other => Err(Problem::new(format!("unsupported scheme \"{other}\""), "use smtp, smtp+starttls, smtps or file")),
    }
}

/// `"08:00"` (H:MM or HH:MM, 24-hour), or an unquoted TOML time `08:00` with no seconds.
pub(super) fn time_of_day(v: &Value) -> Result<jiff::civil::Time, Problem> {
    let hint = "HH:MM in 24-hour form, e.g. \"08:00\"";
    let (h, m) = match v {
        Value::String(s) => {
            let parsed = s.trim().split_once(':').and_then(|(h, m)| {
                let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
                (digits(h) && h.len() <= 2 && digits(m) && m.len() == 2)
                    .then(|| (h.parse::<i8>().ok(), m.parse::<i8>().ok()))
            });
            match parsed {
                Some((Some(h), Some(m))) => (h, m),
                _ => return Err(Problem::new(format!("\"{s}\" is not a time of day"), hint)),
            }
        }
        Value::Datetime(d) => match (d.date, d.time, d.offset) {
            (None, Some(t), None) if t.second == 0 && t.nanosecond == 0 => {
                (i8::try_from(t.hour).unwrap_or(i8::MAX), i8::try_from(t.minute).unwrap_or(i8::MAX))
            }
            _ => {
                return Err(Problem::new(format!("{d} is not a time of day in whole minutes"), hint));
            }
        },
        other => {
            return Err(Problem::new(format!("expected a time of day, found {}", describe(other)), hint));
        }
    };
    jiff::civil::Time::new(h, m, 0, 0).map_err(|_| Problem::new(format!("{h}:{m:02} is not a time of day"), hint))
}

/// IANA names only; a near miss gets a suggestion from the bundled database.
pub(super) fn timezone(v: &Value) -> Result<(jiff::tz::TimeZone, String), Problem> {
    let name = nonempty_string(v)?;
    match jiff::tz::TimeZone::get(name.trim()) {
        Ok(tz) => {
            let canonical = tz.iana_name().unwrap_or(name.trim()).to_string();
            Ok((tz, canonical))
        }
        Err(_) => {
            let lower = name.trim().to_ascii_lowercase();
            let near = jiff::tz::db()
                .available()
                .map(|n| n.as_str().to_string())
                .map(|n| (edit_distance(&lower, &n.to_ascii_lowercase()), n))
                .filter(|(d, _)| *d <= 2)
                .min_by_key(|(d, _)| *d);
            let hint = match near {
                Some((_, n)) => format!("did you mean \"{n}\"?"),
                None => "an IANA time zone name such as \"UTC\", \"Europe/Berlin\" or \"Asia/Shanghai\"".to_string(),
            };
            Err(Problem::new(format!("unknown time zone \"{name}\""), hint))
        }
    }
}

pub(super) fn log_format(v: &Value) -> Result<LogFormat, Problem> {
    match string(v)?.as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(Problem::new(format!("unknown log format \"{other}\""), "use \"text\" or \"json\"")),
    }
}
