//! Sending as a connected account (SPEC §10, docs/accounts.md "Sending as an account"): mail
//! whose route names an account leaves through that account's own SMTP server, logged in
//! with its own sealed credential — never through the system relay, never as a fallback.
//! The client is the relay's (`relay::smtp`), so attempts are recorded the same way: server
//! IP, system IP and the final reply.

use std::sync::Arc;
use std::time::Duration;

use super::smtp::{SmtpRelay, SmtpRelayConfig};
use crate::net::server_url::{Protocol, ServerUrl};
use crate::secrets::{SealKey, Secret, owner};
use crate::store::Store;

/// What the dispatcher needs to build an account's route for each batch.
pub struct AccountRoutes {
    pub store: Arc<Store>,
    /// `[secrets] key_file`; without it no account can log in (its mail waits).
    pub key: Option<SealKey>,
    pub helo_name: String,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
}

impl std::fmt::Debug for AccountRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountRoutes").field("key", &self.key).field("helo_name", &self.helo_name).finish()
    }
}

/// Why an account's route cannot carry its mail now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    /// It may later: the account is paused, the key cannot be read. The mail is deferred.
    Wait(String),
    /// It never will: the account was removed or has no SMTP server. The mail fails (a DSN
    /// names the account); it never falls back to the system relay.
    Never(String),
}

impl AccountRoutes {
    /// The client for `user`'s account `name`, from its record as it is now.
    pub fn relay(&self, user: &str, name: &str) -> Result<SmtpRelay, Unusable> {
        let account = match self.store.connected(user, name) {
            Ok(Some(a)) if !a.removed => a,
            Ok(_) => return Err(Unusable::Never(format!("account {name:?} was removed; its mail is not sent"))),
            Err(e) => return Err(Unusable::Wait(format!("cannot read account {name:?}: {e}"))),
        };
        let Some(smtp) = &account.smtp else {
            return Err(Unusable::Never(format!("account {name:?} has no SMTP server to send through")));
        };
        if account.paused {
            return Err(Unusable::Wait(format!("account {name:?} is paused; its mail waits until it is resumed")));
        }
        let key = self.key.as_ref().ok_or_else(|| {
            Unusable::Wait(format!("account {name:?}: no usable [secrets] key_file to open its password"))
        })?;
        let secret = key
            .open(&account.credential, &owner(user, name))
            .map_err(|e| Unusable::Wait(format!("account {name:?}: cannot open its stored password: {e}")))?;
        let Secret::Password { password } = &secret;
        let url = ServerUrl::parse(smtp, &[Protocol::Smtp], "SMTP server")
            .map_err(|e| Unusable::Never(format!("account {name:?}: {e}")))?;
        let tls = super::trust::account_client_config(account.ca_pem.as_deref(), "the account's --ca-file")
            .map_err(|e| Unusable::Wait(format!("account {name:?}: {e}")))?;
        let config = SmtpRelayConfig {
            host: url.host,
            port: url.port,
            security: url.security,
            credentials: Some((account.login, password.clone())),
            ca_file: None,
            helo_name: self.helo_name.clone(),
            connect_timeout: self.connect_timeout,
            command_timeout: self.command_timeout,
            data_timeout: self.data_timeout,
        };
        SmtpRelay::with_tls(config, Arc::new(tls)).map_err(|e| Unusable::Never(format!("account {name:?}: {e}")))
    }
}
