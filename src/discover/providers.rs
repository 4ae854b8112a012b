//! Large providers, built in: the first step of discovery, and the only one that may name
//! servers outside the address's domain without `--accept-server` (the table is gatepost's
//! own word, not something a network answered). Providers that take only OAuth2 are named
//! with "not supported yet", so the user learns why instead of meeting a refused login.

/// What the table says of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    Servers {
        name: &'static str,
        incoming: &'static str,
        smtp: &'static str,
        /// What the user needs to know to log in (app passwords).
        note: &'static str,
    },
    /// Password logins are refused there; gatepost cannot log in yet.
    Unsupported { name: &'static str, why: &'static str },
}

const APP_PASSWORD: &str =
    "this provider wants an app password (made in the account's security settings), not the account's own password";

const TABLE: &[(&[&str], Provider)] = &[
    (
        &["gmail.com", "googlemail.com"],
        Provider::Servers {
            name: "Gmail",
            incoming: "imaps://imap.gmail.com:993",
            smtp: "smtps://smtp.gmail.com:465",
            note: APP_PASSWORD,
        },
    ),
    (
        &[
            "outlook.com",
            "hotmail.com",
            "live.com",
            "msn.com",
            "hotmail.co.uk",
            "outlook.de",
            "hotmail.de",
            "hotmail.fr",
        ],
        Provider::Unsupported {
            name: "Outlook.com",
            why: "Microsoft accepts only OAuth2 sign-in for IMAP and SMTP, which gatepost does not support yet",
        },
    ),
    (
        &["office365.com", "onmicrosoft.com"],
        Provider::Unsupported {
            name: "Microsoft 365",
            why: "Microsoft accepts only OAuth2 sign-in for IMAP and SMTP, which gatepost does not support yet",
        },
    ),
    (
        &["proton.me", "protonmail.com", "pm.me"],
        Provider::Unsupported {
            name: "Proton Mail",
            why: "Proton Mail offers IMAP only through its Bridge application; run the Bridge and give its address with --incoming",
        },
    ),
    (
        &["yahoo.com", "ymail.com", "rocketmail.com", "yahoo.co.uk", "yahoo.de", "yahoo.fr"],
        Provider::Servers {
            name: "Yahoo Mail",
            incoming: "imaps://imap.mail.yahoo.com:993",
            smtp: "smtps://smtp.mail.yahoo.com:465",
            note: APP_PASSWORD,
        },
    ),
    (
        &["aol.com"],
        Provider::Servers {
            name: "AOL Mail",
            incoming: "imaps://imap.aol.com:993",
            smtp: "smtps://smtp.aol.com:465",
            note: APP_PASSWORD,
        },
    ),
    (
        &["icloud.com", "me.com", "mac.com"],
        Provider::Servers {
            name: "iCloud Mail",
            incoming: "imaps://imap.mail.me.com:993",
            smtp: "smtp+starttls://smtp.mail.me.com:587",
            note: "iCloud wants an app-specific password (appleid.apple.com), and the login is the address",
        },
    ),
    (
        &["fastmail.com", "fastmail.fm"],
        Provider::Servers {
            name: "Fastmail",
            incoming: "imaps://imap.fastmail.com:993",
            smtp: "smtps://smtp.fastmail.com:465",
            note: APP_PASSWORD,
        },
    ),
    (
        &["gmx.de", "gmx.net", "gmx.at", "gmx.ch"],
        Provider::Servers {
            name: "GMX",
            incoming: "imaps://imap.gmx.net:993",
            smtp: "smtps://mail.gmx.net:465",
            note: "IMAP access must be switched on in GMX's settings first",
        },
    ),
    (
        &["gmx.com"],
        Provider::Servers {
            name: "GMX",
            incoming: "imaps://imap.gmx.com:993",
            smtp: "smtps://mail.gmx.com:465",
            note: "IMAP access must be switched on in GMX's settings first",
        },
    ),
    (
        &["web.de"],
        Provider::Servers {
            name: "WEB.DE",
            incoming: "imaps://imap.web.de:993",
            smtp: "smtp+starttls://smtp.web.de:587",
            note: "IMAP access must be switched on in WEB.DE's settings first",
        },
    ),
    (
        &["yandex.com", "yandex.ru"],
        Provider::Servers {
            name: "Yandex Mail",
            incoming: "imaps://imap.yandex.com:993",
            smtp: "smtps://smtp.yandex.com:465",
            note: APP_PASSWORD,
        },
    ),
    (
        &["zoho.com", "zohomail.com"],
        Provider::Servers {
            name: "Zoho Mail",
            incoming: "imaps://imap.zoho.com:993",
            smtp: "smtps://smtp.zoho.com:465",
            note: "IMAP access must be switched on in Zoho's settings first",
        },
    ),
];

/// The table's entry for `domain` (lower case), if any.
pub fn lookup(domain: &str) -> Option<&'static Provider> {
    TABLE.iter().find(|(domains, _)| domains.contains(&domain)).map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::server_url::{Protocol, ServerUrl};

    #[test]
    fn every_entry_parses_and_oauth_only_providers_say_so() {
        for (domains, p) in TABLE {
            assert!(
                domains.iter().all(|d| d.chars().all(|c| c.is_ascii_lowercase() || c == '.' || c.is_ascii_digit()))
            );
            if let Provider::Servers { incoming, smtp, .. } = p {
                assert!(ServerUrl::parse(incoming, &[Protocol::Imap], "x").is_ok(), "{incoming}");
                assert!(ServerUrl::parse(smtp, &[Protocol::Smtp], "x").is_ok(), "{smtp}");
            }
        }
        assert!(matches!(lookup("hotmail.com"), Some(Provider::Unsupported { why, .. }) if why.contains("OAuth2")));
        assert!(matches!(lookup("gmail.com"), Some(Provider::Servers { name: "Gmail", .. })));
        assert_eq!(lookup("example.org"), None);
    }
}
