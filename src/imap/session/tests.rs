//! What imap-codec parses of lines real clients send (the session trusts its types).

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;

#[test]
fn codec_parses_what_clients_send() {
    for line in [
        &b"a LIST \"\" Work/*\r\n"[..],
        b"a LIST \"\" \"Work/*\"\r\n",
        b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 5 VANISHED)\r\n",
        b"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n",
        b"a STORE 1 +FLAGS.SILENT (\\Deleted)\r\n",
        b"a UID STORE 1:3 (UNCHANGEDSINCE 12) +FLAGS (\\Seen)\r\n",
        b"a ENABLE QRESYNC\r\n",
        b"a STATUS INBOX (MESSAGES DELETED DELETED-STORAGE HIGHESTMODSEQ)\r\n",
        b"a GETQUOTAROOT INBOX\r\n",
        b"a ID (\"name\" \"Thunderbird\")\r\n",
    ] {
        let r = CommandCodec::default().decode(line);
        assert!(r.is_ok(), "{:?}: {:?}", String::from_utf8_lossy(line), r.err());
    }
}

mod exact {
    //! Exact bytes in, exact bytes out, through framing and session (`imap::script`).

    use std::sync::Arc;

    use crate::accounts::quota::QuotaRule;
    use crate::blobs::memory::MemoryBlobs;
    use crate::mailstore::{MailDb, MailStore};

    fn store() -> (tempfile::TempDir, Arc<MailStore>) {
        let dir = tempfile::tempdir().unwrap();
        let rule = QuotaRule { initial: 1 << 20, grow_when_free_below: 0, grow_by: 1 << 20, ceiling: None, reserve: 0 };
        let db = MailDb::open(&dir.path().join("m.redb"), rule).unwrap();
        (dir, Arc::new(MailStore::with_blobs(db, Arc::new(MemoryBlobs::default()))))
    }

    fn lines(out: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(out).split_inclusive("\r\n").map(str::to_string).collect()
    }

    #[test]
    fn append_select_fetch_store_expunge() {
        let (_dir, store) = store();
        let input = b"a APPEND INBOX (\\Flagged) {21}\r\nSubject: hi\r\n\r\nbody\r\n\r\n\
                      b SELECT INBOX\r\nc FETCH 1 (UID FLAGS RFC822.SIZE BODY.PEEK[TEXT])\r\n\
                      d STORE 1 +FLAGS (\\Deleted)\r\ne EXPUNGE\r\nf FETCH 1 (UID)\r\n";
        let out = lines(&crate::imap::script::run(store, "alice", input));
        let want = [
            "+ ...\r\n",
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n",
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted\r\n",
            "* 1 EXISTS\r\n",
            "* 1 RECENT\r\n",
            "* OK [UNSEEN 1] First unseen\r\n",
        ];
        assert!(out[0].starts_with("+ "), "{out:?}");
        assert!(out[1].starts_with("a OK [APPENDUID "), "{out:?}");
        assert_eq!(&out[2..7], &want[1..6], "{out:?}");
        let i = out.iter().position(|l| l.starts_with("b OK [READ-WRITE]")).expect("SELECT OK");
        assert_eq!(out[i + 1], "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent) RFC822.SIZE 21 BODY[TEXT] {6}\r\n");
        assert_eq!(out[i + 2], "body\r\n");
        assert_eq!(out[i + 3], ")\r\n");
        assert!(out[i + 4].starts_with("c OK"), "{out:?}");
        assert_eq!(out[i + 5], "* 1 FETCH (FLAGS (\\Flagged \\Deleted \\Recent))\r\n");
        assert!(out[i + 6].starts_with("d OK"));
        assert_eq!(out[i + 7], "* 1 EXPUNGE\r\n");
        assert!(out[i + 8].starts_with("e OK"));
        assert_eq!(out[i + 9], "f BAD No message with sequence number 1 (session script)\r\n", "{out:?}");
    }
}
