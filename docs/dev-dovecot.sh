#!/usr/bin/env bash
# A private Dovecot to try connected accounts against (README, "Connect an external
# mailbox"): IMAP on 127.0.0.1:3143 (plain text, which gatepost allows to loopback only),
# one user `me@example.org` with the password `dev mailbox password`, a Maildir under
# /tmp/gatepost-dev-dovecot with a few messages in INBOX and in a folder `Projects`, and a
# `Sent` folder marked \Sent. Beside it, the account's own SMTP server (aiosmtpd) on
# 127.0.0.1:3587: plain text (loopback only), AUTH with the same login and password, each
# message it accepts written to /tmp/gatepost-dev-dovecot/smtp-out/ (README, "sends as it").
# Needs the Debian packages dovecot-imapd and python3-aiosmtpd.
# Stop both with: docs/dev-dovecot.sh stop
set -euo pipefail
dir=/tmp/gatepost-dev-dovecot
conf=$dir/dovecot.conf
stop_smtp() {
    if [ -f "$dir/smtp.pid" ]; then
        kill "$(cat "$dir/smtp.pid")" 2>/dev/null || true
        rm -f "$dir/smtp.pid"
    fi
}
if [ "${1:-}" = stop ]; then
    stop_smtp
    doveadm -c "$conf" stop
    exit 0
fi
command -v dovecot >/dev/null || { echo "needs dovecot-imapd (apt-get install dovecot-imapd)" >&2; exit 1; }
# Each start is a fresh mailbox.
stop_smtp
[ -f "$conf" ] && doveadm -c "$conf" stop 2>/dev/null || true
rm -rf "$dir"
mkdir -p "$dir/run" "$dir/state" "$dir/mail"
chmod 755 "$dir"
if [ "$(id -u)" = 0 ]; then
    chown nobody:nogroup "$dir/mail"
    identity="uid=nobody gid=nogroup"
    extra=""
else
    identity="uid=$(id -u) gid=$(id -g)"
    extra="default_login_user = $USER
default_internal_user = $USER"
fi
echo 'me@example.org:{PLAIN}dev mailbox password' > "$dir/passwd"
cat > "$conf" <<CONF
base_dir = $dir/run
state_dir = $dir/state
instance_name = gatepost-dev-dovecot
log_path = $dir/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
auth_mechanisms = plain
disable_plaintext_auth = no
mail_location = maildir:$dir/mail/%u
namespace inbox {
  inbox = yes
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
}
$extra
passdb {
  driver = passwd-file
  args = $dir/passwd
}
userdb {
  driver = static
  args = $identity home=$dir/mail/%u
}
service imap-login {
  inet_listener imap {
    port = 3143
  }
  inet_listener imaps {
    port = 0
  }
}
CONF
dovecot -c "$conf"
for _ in $(seq 1 50); do
    (exec 3<>/dev/tcp/127.0.0.1/3143) 2>/dev/null && break
    sleep 0.1
done
# A few messages, delivered with Dovecot's own tool.
for n in 1 2 3; do
    printf 'From: colleague@example.org\r\nTo: me@example.org\r\nSubject: Work mail %s\r\nMessage-ID: <dev%s@example.org>\r\n\r\nHello %s\r\n' "$n" "$n" "$n" |
        doveadm -c "$conf" save -u me@example.org
done
printf 'From: pm@example.org\r\nSubject: Project plan\r\nMessage-ID: <plan@example.org>\r\n\r\nThe plan.\r\n' |
    doveadm -c "$conf" save -u me@example.org -m Projects 2>/dev/null ||
    { doveadm -c "$conf" mailbox create -u me@example.org Projects &&
        printf 'From: pm@example.org\r\nSubject: Project plan\r\nMessage-ID: <plan@example.org>\r\n\r\nThe plan.\r\n' |
        doveadm -c "$conf" save -u me@example.org -m Projects; }
# The account's SMTP server (Debian's python3, which python3-aiosmtpd installs into).
py=/usr/bin/python3
[ -x "$py" ] || py=python3
if "$py" -c 'import aiosmtpd' 2>/dev/null; then
    mkdir -p "$dir/smtp-out"
    cat > "$dir/smtp.py" <<'PY'
import sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
out = sys.argv[1]
def auth(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login == b"me@example.org" and data.password == b"dev mailbox password"
    return AuthResult(success=ok, handled=False)
class Handler:
    async def handle_DATA(self, server, session, envelope):
        with open("%s/%d.eml" % (out, time.time_ns()), "wb") as f:
            f.write(("X-Envelope: %s %s\r\n" % (envelope.mail_from, " ".join(envelope.rcpt_tos))).encode())
            f.write(envelope.original_content)
        return "250 2.0.0 Ok: queued by the dev account's server"
Controller(Handler(), hostname="127.0.0.1", port=3587, authenticator=auth, auth_required=True,
           auth_require_tls=False).start()
while True:
    time.sleep(3600)
PY
    nohup "$py" "$dir/smtp.py" "$dir/smtp-out" >"$dir/smtp.log" 2>&1 &
    echo $! > "$dir/smtp.pid"
    for _ in $(seq 1 50); do
        (exec 3<>/dev/tcp/127.0.0.1/3587) 2>/dev/null && break
        sleep 0.1
    done
    echo "its SMTP server listens on 127.0.0.1:3587 (same login); what it accepts lands in $dir/smtp-out/"
else
    echo "no python3-aiosmtpd: no SMTP server for the account (apt-get install python3-aiosmtpd)" >&2
fi
echo "Dovecot listens on 127.0.0.1:3143: user me@example.org, password 'dev mailbox password'"
