#!/usr/bin/env bash
# A private Dovecot to try connected accounts against (README, "Connect an external
# mailbox"): IMAP on 127.0.0.1:3143 (plain text, which gatepost allows to loopback only),
# one user `me@example.org` with the password `dev mailbox password`, a Maildir under
# /tmp/gatepost-dev-dovecot with a few messages in INBOX and in a folder `Projects`.
# Needs the Debian package dovecot-imapd. Stop it with: docs/dev-dovecot.sh stop
set -euo pipefail
dir=/tmp/gatepost-dev-dovecot
conf=$dir/dovecot.conf
if [ "${1:-}" = stop ]; then
    doveadm -c "$conf" stop
    exit 0
fi
command -v dovecot >/dev/null || { echo "needs dovecot-imapd (apt-get install dovecot-imapd)" >&2; exit 1; }
# Each start is a fresh mailbox.
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
echo "Dovecot listens on 127.0.0.1:3143: user me@example.org, password 'dev mailbox password'"
