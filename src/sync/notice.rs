//! Notices gatepost files in a user's INBOX about an account's sync (docs/accounts.md,
//! "Quota"): one per pause, within the quota's reserve, so the user learns why new mail of
//! that account stopped arriving even though the mailbox is full.

use jiff::Timestamp;

/// The notice that an account's import paused at the user's quota ceiling.
pub fn quota_paused(account: &str, hostname: &str, now: Timestamp) -> Vec<u8> {
    use mail_builder::MessageBuilder;
    use mail_builder::headers::address::Address;
    use mail_builder::headers::raw::Raw;

    let account = account.replace(['\r', '\n'], " ");
    let text = format!(
        "gatepost stopped importing mail from your account {account} because your mailbox has\r\n\
         reached its size limit. Nothing is lost: the mail stays at {account} and the import\r\n\
         resumes by itself as soon as there is room (delete mail, or ask your operator for a\r\n\
         larger limit).\r\n"
    );
    let id = format!(
        "quota.{}.{}@{hostname}",
        now.as_second(),
        crate::store::sha256_hex(account.as_bytes()).get(..12).unwrap_or_default()
    );
    let postmaster = format!("postmaster@{hostname}");
    MessageBuilder::new()
        .from(("gatepost", postmaster.as_str()))
        .to(Address::new_group(Some("undisclosed-recipients"), Vec::new()))
        .subject(format!("Import of {account} paused: your mailbox is full"))
        .date(now.as_second())
        .message_id(id)
        .header("Auto-Submitted", Raw::new("auto-generated"))
        .text_body(text)
        .write_to_vec()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_notice_is_a_parseable_message_naming_the_account() {
        let raw =
            super::quota_paused("Work\r\nBcc: x", "gp.example", jiff::Timestamp::from_second(1_800_000_000).unwrap());
        let text = String::from_utf8(raw.clone()).unwrap();
        assert!(text.contains("Subject: Import of Work  Bcc: x paused"), "{text}");
        assert!(!text.contains("\r\nBcc:"), "no header injection: {text}");
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert!(parsed.date().is_some() && parsed.message_id().is_some());
    }
}
