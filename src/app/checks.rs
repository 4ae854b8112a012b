//! Checks of what a config points at on disk and on the network, beyond its text: what
//! `gatepost serve` would refuse at start (certificate files, the relay's password and CA
//! files) is an error here too, so `check-config` never passes a config the server then
//! refuses; and what would work but is unsafe (files others can read, a relay password in
//! plain text) is a warning, which `serve` logs at every start as well.

use std::path::Path;

use super::settings;
use crate::config::{Config, ConfigError};
use crate::relay::smtp::{Security, parse_url};

/// Problems found outside the config text.
#[derive(Debug, Default)]
pub struct Findings {
    /// `gatepost serve` would refuse to start.
    pub errors: Vec<ConfigError>,
    /// It would start, but something is unsafe or will fail later.
    pub warnings: Vec<ConfigError>,
}

/// Every check of this module, in key order.
pub fn check(config: &Config) -> Findings {
    let mut f = Findings::default();
    check_tls(config, &mut f);
    check_relay(config, &mut f);
    check_permissions(config, &mut f);
    f
}

fn check_tls(config: &Config, f: &mut Findings) {
    let tls = &config.tls;
    let (cert_there, key_there) = (tls.cert.exists(), tls.key.exists());
    if tls.generate_if_missing && !cert_there && !key_there {
        return; // generated at the first start
    }
    if tls.generate_if_missing && cert_there != key_there {
        let (key, path) = if cert_there { ("tls.key", &tls.key) } else { ("tls.cert", &tls.cert) };
        f.errors.push(ConfigError::new(
            key,
            format!("{} is missing", path.display()),
            "tls.generate_if_missing creates the pair only when both files are missing: restore this one, or remove both",
        ));
        return;
    }
    match crate::tls::server_config(&tls.cert, &tls.key) {
        Ok(_) => {}
        Err(e @ crate::tls::TlsError::Cert { .. }) => f.errors.push(ConfigError::new(
            "tls.cert",
            e.to_string(),
            "a readable PEM file with the certificate chain, e.g. fullchain.pem",
        )),
        Err(e @ crate::tls::TlsError::Key { .. }) => f.errors.push(ConfigError::new(
            "tls.key",
            e.to_string(),
            "a readable PEM file with the private key, e.g. privkey.pem",
        )),
        Err(e) => f.errors.push(ConfigError::new("tls.key", e.to_string(), "tls.cert and tls.key must be one pair")),
    }
}

fn check_relay(config: &Config, f: &mut Findings) {
    let relay = &config.relay;
    if let Err(e) = settings::relay(relay, &config.hostname) {
        // The relay names the key first: "relay.password_file /x: cannot read it: …", or
        // "relay: …" for the relay as a whole (its TLS roots).
        let e = e.strip_prefix("relay: ").map(str::to_string).unwrap_or(e);
        let (key, message) = match e.split_once([' ', ':']) {
            Some((k, rest)) if k.starts_with("relay.") => {
                (k.to_string(), rest.trim_start_matches([':', ' ']).to_string())
            }
            // The CA file the relay could not load is the operator's `relay.ca_file`.
            _ if relay.ca_file.is_some() && e.contains("CA file") => ("relay.ca_file".to_string(), e.clone()),
            _ => ("relay".to_string(), e.clone()),
        };
        if key == "relay.password_env" {
            // The service manager may set it for the server only.
            f.warnings.push(ConfigError::new(
                key,
                format!("{message} here"),
                "gatepost serve needs it in its environment",
            ));
        } else {
            f.errors.push(ConfigError::new(key, message, ""));
        }
    }
    if relay.username.is_some()
        && let Ok((host, _, Security::Plain)) = parse_url(&relay.url)
        && !is_loopback_host(&host)
    {
        f.warnings.push(ConfigError::new(
            "relay.url",
            format!(
                "smtp:// is plain text: the relay password would cross the network to {host} in clear, so gatepost \
                 refuses to send it and deliveries will be deferred (unless {host} is this machine)"
            ),
            "use smtp+starttls:// or smtps://",
        ));
    }
}

/// A host gatepost may send the relay password to in clear: this machine.
fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(unix)]
fn check_permissions(config: &Config, f: &mut Findings) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).ok().map(|m| m.permissions().mode() & 0o777);
    let data = &config.data_dir;
    let mut warn = |key: &str, path: &Path, what: &str, mask: u32, fix: &str| {
        if let Some(m) = mode(path).filter(|m| m & mask != 0) {
            f.warnings.push(ConfigError::new(
                key,
                format!("{} is mode {m:04o}: {what}", path.display()),
                format!("chmod {fix} {}", path.display()),
            ));
        }
    };
    warn("data_dir", data, "other users of this host can reach the store and the mail in it", 0o077, "700");
    warn(
        "data_dir",
        &data.join(crate::store::DB_FILE),
        "the database (password hashes, every record) is readable beyond its owner",
        0o077,
        "600",
    );
    warn("tls.key", &config.tls.key, "every user of this host can read the private key", 0o004, "600");
    if let Some(key) = &config.secrets.key_file {
        warn("secrets.key_file", key, "others can read the key that opens every stored account password", 0o077, "600");
    }
    if let Some(pw) = &config.relay.password_file {
        warn("relay.password_file", pw, "every user of this host can read the relay password", 0o004, "600");
    }
}

#[cfg(not(unix))]
fn check_permissions(_: &Config, _: &mut Findings) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::from_toml(text, &[]).unwrap_or_else(|e| panic!("{e}"))
    }

    fn keys(list: &[ConfigError]) -> Vec<&str> {
        list.iter().map(|e| e.key.as_str()).collect()
    }

    #[test]
    fn certificate_files_are_checked_unless_they_will_be_generated() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let base = format!("data_dir = \"{d}/data\"\n[tls]\ncert = \"{d}/c.pem\"\nkey = \"{d}/k.pem\"\n");
        let f = check(&config(&base));
        assert_eq!(keys(&f.errors), ["tls.cert"], "{:?}", f.errors);
        assert!(f.errors[0].message.contains("c.pem"), "{:?}", f.errors);
        // both missing and generated at start: fine
        let generated = format!("{base}generate_if_missing = true\n");
        assert!(check(&config(&generated)).errors.is_empty());
        // one of the pair missing: generation would not happen
        crate::tls::generate_self_signed(&dir.path().join("c.pem"), &dir.path().join("k.pem")).unwrap();
        assert!(check(&config(&generated)).errors.is_empty());
        std::fs::remove_file(dir.path().join("k.pem")).unwrap();
        let f = check(&config(&generated));
        assert_eq!(keys(&f.errors), ["tls.key"], "{:?}", f.errors);
        std::fs::write(dir.path().join("k.pem"), "not a key").unwrap();
        let f = check(&config(&base));
        assert_eq!(keys(&f.errors), ["tls.key"], "{:?}", f.errors);
    }

    #[test]
    fn a_relay_password_in_plain_text_to_another_host_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "secret\n").unwrap();
        let text = |url: &str| {
            format!(
                "data_dir = {:?}\n[relay]\nurl = \"{url}\"\nusername = \"u\"\npassword_file = {:?}\nfrom_address = \"r@example.net\"\n",
                dir.path().join("data").display().to_string(),
                pw.display().to_string()
            )
        };
        let plain_remote = check(&config(&text("smtp://smtp.example.net:25")));
        let w = plain_remote.warnings.iter().find(|w| w.key == "relay.url").expect("a warning");
        assert!(w.message.contains("in clear") && !w.message.contains("secret"), "{w:?}");
        for url in ["smtp://127.0.0.1:2525", "smtp://localhost", "smtp://[::1]:25", "smtp+starttls://smtp.example.net"]
        {
            assert!(!keys(&check(&config(&text(url))).warnings).contains(&"relay.url"), "{url}");
        }
    }

    #[test]
    fn a_relay_file_serve_cannot_read_is_an_error_under_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let base = format!(
            "data_dir = \"{d}/data\"\n[relay]\nurl = \"smtps://smtp.example.net\"\nfrom_address = \"r@example.net\"\n"
        );
        let f = check(&config(&format!("{base}username = \"u\"\npassword_file = \"{d}/nope\"\n")));
        assert!(keys(&f.errors).contains(&"relay.password_file"), "{:?}", f.errors);
        let f = check(&config(&format!("{base}ca_file = \"{d}/nope-ca.pem\"\n")));
        assert!(keys(&f.errors).contains(&"relay.ca_file"), "{:?}", f.errors);
    }

    #[cfg(unix)]
    #[test]
    fn files_others_can_read_are_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("gatepost.redb"), "x").unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "secret\n").unwrap();
        let chmod = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        chmod(&data, 0o755);
        chmod(&data.join("gatepost.redb"), 0o644);
        chmod(&pw, 0o644);
        let text = format!(
            "data_dir = {:?}\n[relay]\nurl = \"smtps://smtp.example.net\"\nusername = \"u\"\npassword_file = {:?}\nfrom_address = \"r@example.net\"\n",
            data.display().to_string(),
            pw.display().to_string()
        );
        let f = check(&config(&text));
        let w: Vec<String> = f.warnings.iter().map(|w| w.to_string()).collect();
        assert!(w.iter().any(|w| w.contains("data_dir") && w.contains("0755") && w.contains("chmod 700")), "{w:?}");
        assert!(w.iter().any(|w| w.contains("gatepost.redb") && w.contains("0644")), "{w:?}");
        assert!(w.iter().any(|w| w.starts_with("relay.password_file") && w.contains("chmod 600")), "{w:?}");
        chmod(&data, 0o700);
        chmod(&data.join("gatepost.redb"), 0o600);
        chmod(&pw, 0o640);
        let f = check(&config(&text));
        assert!(f.warnings.is_empty(), "{:?}", f.warnings);
    }
}
