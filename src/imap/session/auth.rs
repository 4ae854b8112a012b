//! CAPABILITY, LOGIN (the password check itself is the driver's, through the shared login
//! door), ENABLE, ID and NAMESPACE.

use imap_types::core::{IString, NString};
use imap_types::extensions::enable::CapabilityEnable;

use super::{Session, Step, User};
use crate::imap::wire::code;

impl Session {
    /// The capability list for the current state (RFC 3501 §6.1.1; LOGINDISABLED and no AUTH=
    /// before TLS, RFC 8314 / RFC 3501 §6.2.3).
    pub fn capabilities(&self) -> String {
        let mut caps = String::from("IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE NAMESPACE");
        if !self.tls {
            caps.push_str(" STARTTLS LOGINDISABLED");
        } else if self.user.is_none() {
            caps.push_str(" AUTH=PLAIN");
        }
        if self.user.is_some() {
            caps.push_str(&format!(
                " UIDPLUS MOVE UNSELECT CHILDREN SPECIAL-USE QUOTA QUOTA=RES-STORAGE CONDSTORE QRESYNC APPENDLIMIT={}",
                self.env.settings.max_append_size
            ));
        }
        caps
    }

    pub(super) fn capability(&mut self, tag: &str) -> Step {
        let caps = self.capabilities();
        self.out.raw("* CAPABILITY ").raw(&caps).crlf();
        self.ok(tag, None, "CAPABILITY completed")
    }

    pub(super) fn login(&mut self, tag: &str, login: &[u8], password: &[u8]) -> Step {
        if !self.tls {
            return self.no(tag, Some(code::PRIVACYREQUIRED), "Log in only after STARTTLS");
        }
        let (Ok(login), Ok(password)) = (std::str::from_utf8(login), std::str::from_utf8(password)) else {
            return self.no(tag, Some(code::AUTHENTICATIONFAILED), "Wrong user name or password");
        };
        Step::Login { tag: tag.to_string(), login: login.to_string(), password: password.to_string() }
    }

    /// The login door accepted `name`: open (or make) the user's mail store entry.
    pub fn login_done(&mut self, tag: &str, name: &str) -> bool {
        match self.env.store.db.user(name, self.env.clock.now()) {
            Ok(id) => {
                self.user = Some(User { name: name.to_string(), id });
                let caps = self.capabilities();
                self.out.tagged(tag, "OK", Some(&format!("CAPABILITY {caps}")), "Logged in");
                true
            }
            Err(e) => {
                self.store_error(tag, e);
                false
            }
        }
    }

    pub(super) fn enable(&mut self, tag: &str, caps: &[CapabilityEnable<'_>]) -> Step {
        let mut enabled = Vec::new();
        for c in caps {
            match c {
                CapabilityEnable::CondStore if !self.condstore => {
                    self.condstore = true;
                    enabled.push("CONDSTORE");
                }
                CapabilityEnable::Other(_) if c.to_string().eq_ignore_ascii_case("QRESYNC") && !self.qresync => {
                    self.qresync = true;
                    // QRESYNC implies CONDSTORE (RFC 7162 §3.2.3).
                    self.condstore = true;
                    enabled.push("QRESYNC");
                }
                _ => {}
            }
        }
        self.out.raw("* ENABLED");
        for e in enabled {
            self.out.raw(" ").raw(e);
        }
        self.out.crlf();
        self.ok(tag, None, "ENABLE completed")
    }

    pub(super) fn id_command(&mut self, tag: &str, params: Option<Vec<(IString<'_>, NString<'_>)>>) -> Step {
        if let Some(params) = params {
            let shown: Vec<String> = params
                .iter()
                .take(30)
                .map(|(k, v)| {
                    let v = v.0.as_ref().map(|v| String::from_utf8_lossy(v.as_ref()).into_owned());
                    format!("{}={}", String::from_utf8_lossy(k.as_ref()), v.unwrap_or_default())
                })
                .collect();
            tracing::info!(session = %self.id, client = ?shown, "client ID");
        }
        self.out
            .raw("* ID (\"name\" \"gatepost\" \"version\" ")
            .string(env!("CARGO_PKG_VERSION").as_bytes())
            .raw(")")
            .crlf();
        self.ok(tag, None, "ID completed")
    }

    pub(super) fn namespace(&mut self, tag: &str) -> Step {
        self.out.raw("* NAMESPACE ((\"\" \"/\")) NIL NIL").crlf();
        self.ok(tag, None, "NAMESPACE completed")
    }
}
