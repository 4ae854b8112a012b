//! The `file://` relay: each outgoing message becomes `<dir>/<queue id>.eml`, written to a
//! temporary name, fsynced and renamed, so a reader of the folder never sees half a message.
//! For development and demos: nothing leaves the machine.

use std::io::Write;
use std::path::PathBuf;

use super::{Delivery, Outgoing, RecipientResult, Refusal};
use crate::store::sync_dir;

#[derive(Debug, Clone)]
pub struct FileRelay {
    dir: PathBuf,
}

impl FileRelay {
    pub fn new(dir: PathBuf) -> Self {
        FileRelay { dir }
    }

    /// Write the message with its envelope as `X-Gatepost-*` headers in front, the way
    /// Postfix's smtp-sink dumps do, so a demo shows who it went to.
    pub fn deliver(&self, msg: &Outgoing) -> Delivery {
        match self.write(msg) {
            Ok(path) => Delivery {
                recipients: vec![RecipientResult::Delivered; msg.recipients.len()],
                relay_ip: None,
                system_ip: None,
                reply: format!("written to {}", path.display()),
            },
            Err(e) => Delivery::all(
                msg.recipients.len(),
                RecipientResult::Deferred(Refusal::why(format!("file relay: {e}"))),
                format!("file relay could not write to {}: {e}", self.dir.display()),
            ),
        }
    }

    fn write(&self, msg: &Outgoing) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(format!("{}.eml", msg.queue_id));
        let tmp = self.dir.join(format!(".{}.tmp", msg.queue_id));
        let mut f = std::fs::File::create(&tmp)?;
        let mut head = format!("X-Gatepost-Sender: <{}>\r\n", msg.sender);
        for r in &msg.recipients {
            head.push_str(&format!("X-Gatepost-Recipient: <{r}>\r\n"));
        }
        f.write_all(head.as_bytes())?;
        f.write_all(&msg.body)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &path)?;
        sync_dir(&self.dir)?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_files_and_reports_failure() {
        let dir = tempfile::tempdir().unwrap();
        let relay = FileRelay::new(dir.path().join("outbox"));
        let msg = Outgoing {
            queue_id: "01ABC".into(),
            sender: "relay@example.com".into(),
            recipients: vec!["bob@example.net".into(), "carol@example.net".into()],
            body: b"Subject: x\r\n\r\nbody\r\n".to_vec(),
        };
        let d = relay.deliver(&msg);
        assert_eq!(d.recipients, vec![RecipientResult::Delivered; 2]);
        let written = std::fs::read_to_string(dir.path().join("outbox/01ABC.eml")).unwrap();
        assert!(
            written
                .starts_with("X-Gatepost-Sender: <relay@example.com>\r\nX-Gatepost-Recipient: <bob@example.net>\r\n")
        );
        assert!(written.ends_with("Subject: x\r\n\r\nbody\r\n"));
        std::fs::write(dir.path().join("blocked"), b"a file, not a folder").unwrap();
        let d = FileRelay::new(dir.path().join("blocked")).deliver(&msg);
        assert!(matches!(d.recipients[0], RecipientResult::Deferred(_)), "{d:?}");
    }
}
