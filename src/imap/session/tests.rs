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
