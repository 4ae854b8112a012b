#!/usr/bin/env bash
# A private, throwaway Postfix instance for the ingest and release benchmarks (comparison peer).
#
# Usage:
#   benches/postfix-instance.sh start DIR PORT [--tls [--tls-cert CERT --tls-key KEY]]
#                                              [--sasl USER:PASS | --dovecot-sasl USER:PASSFILE
#                                               [--auth-cache-ttl SECONDS]] [--hold]
#                                              [--relay IP:PORT [--relay-concurrency N]]
#   benches/postfix-instance.sh stop DIR
#   benches/postfix-instance.sh status DIR
#
# Everything lives under DIR: DIR/etc (main.cf, master.cf, TLS/SASL files),
# DIR/queue (queue_directory), DIR/data, DIR/log/postfix.log. smtpd listens on
# 127.0.0.1:PORT only; IPv4 only; no DNS. Accepted mail is fsync'ed into DIR/queue by
# cleanup(8) before the 250 reply, then the queue manager hands it to discard(8) (default,
# nothing is ever delivered), or to smtp(8) towards one relay host (--relay), or it stays in
# the hold queue (--hold) until `postsuper -c DIR/etc -H ALL; postqueue -c DIR/etc -f`.
# Clients in 127.0.0.0/8 may submit without AUTH (smtp-source has no AUTH/TLS).
#
#   --tls          offer STARTTLS with a fresh self-signed certificate (CN=localhost)
#   --tls-cert CERT --tls-key KEY  with --tls: use this certificate and key instead (the
#                  benchmarks give Postfix gatepost's own, so both pay the same handshake)
#   --dovecot-sasl USER:PASSFILE  offer AUTH PLAIN/LOGIN through a private Dovecot auth
#                  service (DIR/dovecot, started and stopped with the instance) that checks
#                  USER's password from PASSFILE against an argon2id PHC string at gatepost's
#                  cost (m=19456 KiB, t=2, p=1; made with Python argon2-cffi, pip-installed
#                  if missing), in Dovecot's auth-worker processes; like --sasl, AUTH is then
#                  required. The passdb is a Lua verify-only one (package dovecot-auth-lua):
#                  a passwd-file passdb has no cache key, and even with one Dovecot's cache
#                  would keep the argon2 hash and re-run argon2 on every hit.
#   --auth-cache-ttl SECONDS  with --dovecot-sasl: Dovecot's auth_cache on with this
#                  lifetime (0, the default, leaves it off). A hit then checks the password
#                  against a SHA1 of it kept from the last success, not against argon2:
#                  what gatepost's [login] cache does with an HMAC.
#   --sasl U:P     offer AUTH PLAIN/LOGIN (Cyrus sasldb, user U@gatepost.test or U,
#                  password P) and require it: mynetworks no longer relays; with --tls,
#                  AUTH is only offered after STARTTLS. Installs sasl2-bin if missing.
#   --hold         keep accepted mail in the hold queue instead of discarding it.
#   --relay IP:PORT  deliver everything with smtp(8) to relayhost [IP]:PORT (no TLS, no
#                  AUTH, connection cache on demand as by default) instead of discarding it.
#   --relay-concurrency N  parallel connections to that relay
#                  (smtp_destination_concurrency_limit; Postfix's default is 20).
#
# Must run as root (the Postfix master starts as root and drops to user "postfix").
# Needs only the Debian "postfix" package; the system instance stays stopped.
set -euo pipefail

die() { echo "postfix-instance: $*" >&2; exit 1; }
log() { echo "postfix-instance: $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root"
command -v postfix >/dev/null || die "postfix not installed (see .ci/run)"

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: $0 start DIR PORT [--tls] [--sasl USER:PASS] [--hold] | stop DIR | status DIR"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
etc=$dir/etc

case "$cmd" in
stop)
    if [ -f "$dir/dovecot/dovecot.conf" ]; then
        doveadm -c "$dir/dovecot/dovecot.conf" stop 2>/dev/null || true
        # A busy auth process can outlive its master: end the whole private instance.
        name=$(awk '$1 == "instance_name" {print $3}' "$dir/dovecot/dovecot.conf")
        for _ in $(seq 1 50); do pgrep -f "dovecot-$name/" >/dev/null || break; sleep 0.1; done
        pkill -KILL -f "dovecot-$name/" 2>/dev/null || true
    fi
    if [ -f "$etc/main.cf" ]; then
        postfix -c "$etc" stop 2>/dev/null || true
        # postfix stop returns before master has exited; wait for its pid to go.
        pidfile=$dir/queue/pid/master.pid
        if [ -f "$pidfile" ]; then
            pid=$(tr -dc 0-9 < "$pidfile")
            for _ in $(seq 1 100); do
                [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
        fi
    fi
    log "stopped instance in $dir"
    exit 0
    ;;
status)
    # postfix status reports to the instance's log file, not the terminal.
    if [ -f "$etc/main.cf" ] && postfix -c "$etc" status 2>/dev/null; then
        echo "running"
    else
        echo "not running"
        exit 1
    fi
    ;;
start) ;;
*) die "unknown command $cmd" ;;
esac

port=${3:-}
[[ "$port" =~ ^[0-9]+$ ]] || die "start needs a numeric PORT"
shift 3
tls=0 sasl="" hold=0 relay="" relay_concurrency="" tls_cert="" tls_key="" dovecot_sasl="" cache_ttl=0
while [ $# -gt 0 ]; do
    case "$1" in
    --tls) tls=1 ;;
    --tls-cert) tls_cert=${2:?--tls-cert needs a file}; shift ;;
    --tls-key) tls_key=${2:?--tls-key needs a file}; shift ;;
    --dovecot-sasl) dovecot_sasl=${2:?--dovecot-sasl needs USER:PASSFILE}; shift ;;
    --auth-cache-ttl) cache_ttl=${2:?--auth-cache-ttl needs seconds}; shift ;;
    --sasl) sasl=${2:?--sasl needs USER:PASS}; shift ;;
    --hold) hold=1 ;;
    --relay) relay=${2:?--relay needs IP:PORT}; shift ;;
    --relay-concurrency) relay_concurrency=${2:?--relay-concurrency needs a number}; shift ;;
    *) die "unknown option $1" ;;
    esac
    shift
done
if [ -n "$relay" ]; then
    [[ "$relay" =~ ^[0-9.]+:[0-9]+$ ]] || die "--relay wants IPv4:PORT, got $relay"
fi
if [ -n "$tls_cert$tls_key" ]; then
    [ "$tls" = 1 ] && [ -f "$tls_cert" ] && [ -f "$tls_key" ] || die "--tls-cert/--tls-key need --tls and both files"
fi
[ -n "$sasl" ] && [ -n "$dovecot_sasl" ] && die "--sasl and --dovecot-sasl exclude each other"
[[ "$cache_ttl" =~ ^[0-9]+$ ]] || die "--auth-cache-ttl wants seconds"
if [ -n "$relay_concurrency" ]; then
    [ -n "$relay" ] || die "--relay-concurrency needs --relay"
    [[ "$relay_concurrency" =~ ^[1-9][0-9]*$ ]] || die "--relay-concurrency wants a positive number"
fi

if ss -Hltn "sport = :$port" | grep -q .; then
    die "port $port is already in use"
fi

mkdir -p "$etc" "$dir/queue" "$dir/data" "$dir/log"
# Postfix refuses queue/data directories it does not own in the expected way;
# the directories leading to them must be root-owned and not group/world writable.
chown root:root "$dir" "$etc" "$dir/queue" "$dir/log"
chmod 755 "$dir" "$etc" "$dir/queue" "$dir/log"
chown postfix:postfix "$dir/data"
chmod 700 "$dir/data"

cat > "$etc/main.cf" <<EOF
# Private benchmark instance generated by benches/postfix-instance.sh
compatibility_level = 3.6
config_directory = $etc
queue_directory = $dir/queue
data_directory = $dir/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-gatepost-bench
maillog_file = $dir/log/postfix.log
maillog_file_prefixes = $dir/log
myhostname = postfix-bench.gatepost.test
mydomain = gatepost.test
myorigin = \$myhostname
mydestination =
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject
smtpd_recipient_restrictions =
# No DNS anywhere: no client name lookup, native (files) host lookups, no MX lookups.
smtpd_peername_lookup = no
smtp_host_lookup = native
smtp_dns_support_level = disabled
lmtp_host_lookup = native
# Nothing leaves: every transport is discard (or hold, see below).
default_transport = discard:gatepost-bench
relay_transport = discard:gatepost-bench
local_transport = discard:gatepost-bench
virtual_transport = discard:gatepost-bench
# No size cap surprises for big test messages; no bounces to nowhere.
message_size_limit = 52428800
notify_classes =
biff = no
append_dot_mydomain = no
smtputf8_enable = no
EOF

if [ "$hold" = 1 ]; then
    postconf -c "$etc" -e "smtpd_end_of_data_restrictions = check_client_access static:HOLD"
fi

if [ -n "$relay" ]; then
    # Everything (there are no local, relay or virtual domains) goes to the default transport.
    postconf -c "$etc" -e \
        "relayhost = [${relay%:*}]:${relay##*:}" \
        "default_transport = smtp" \
        "smtp_tls_security_level = none" \
        "smtp_sasl_auth_enable = no"
    if [ -n "$relay_concurrency" ]; then
        postconf -c "$etc" -e "smtp_destination_concurrency_limit = $relay_concurrency"
    fi
fi

if [ "$tls" = 1 ]; then
    if [ -n "$tls_cert" ]; then
        cp "$tls_cert" "$etc/cert.pem"
        cp "$tls_key" "$etc/key.pem"
    else
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=localhost \
            -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
            -keyout "$etc/key.pem" -out "$etc/cert.pem" 2>/dev/null
    fi
    chmod 600 "$etc/key.pem"
    postconf -c "$etc" -e \
        "smtpd_tls_security_level = may" \
        "smtpd_tls_cert_file = $etc/cert.pem" \
        "smtpd_tls_key_file = $etc/key.pem" \
        "smtpd_tls_session_cache_database =" \
        "smtpd_tls_loglevel = 0"
fi

if [ -n "$sasl" ]; then
    user=${sasl%%:*}
    pass=${sasl#*:}
    if ! command -v saslpasswd2 >/dev/null; then
        log "installing sasl2-bin for saslpasswd2"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends sasl2-bin >/dev/null
    fi
    mkdir -p "$etc/sasl"
    rm -f "$etc/sasl/sasldb2"
    printf '%s' "$pass" | saslpasswd2 -p -c -f "$etc/sasl/sasldb2" -u gatepost.test "$user"
    chown root:postfix "$etc/sasl/sasldb2"
    chmod 640 "$etc/sasl/sasldb2"
    cat > "$etc/sasl/smtpd.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
mech_list: PLAIN LOGIN
sasldb_path: $etc/sasl/sasldb2
EOF
    postconf -c "$etc" -e \
        "smtpd_sasl_auth_enable = yes" \
        "smtpd_sasl_type = cyrus" \
        "smtpd_sasl_path = smtpd" \
        "cyrus_sasl_config_path = $etc/sasl" \
        "smtpd_sasl_local_domain = gatepost.test" \
        "smtpd_sasl_security_options = noanonymous" \
        "smtpd_relay_restrictions = permit_sasl_authenticated, reject"
    if [ "$tls" = 1 ]; then
        postconf -c "$etc" -e "smtpd_tls_auth_only = yes"
    fi
fi

if [ -n "$dovecot_sasl" ]; then
    command -v dovecot >/dev/null && [ -f /usr/lib/dovecot/modules/auth/libauthdb_lua.so ] ||
        die "--dovecot-sasl needs Dovecot with Lua auth (apt-get install dovecot-core dovecot-auth-lua)"
    duser=${dovecot_sasl%%:*}
    dpassfile=${dovecot_sasl#*:}
    [ -f "$dpassfile" ] || die "no password file $dpassfile"
    python3 -c 'import argon2' 2>/dev/null || pip install --quiet argon2-cffi >/dev/null 2>&1 ||
        die "Python argon2-cffi is missing and pip could not install it"
    dv=$dir/dovecot
    mkdir -p "$dv/run" "$dv/state"
    chmod 755 "$dv" "$dv/run"
    # gatepost's cost (the argon2 crate's defaults: 19 MiB, 2 passes, 1 lane, 16-byte salt).
    hash=$(python3 -c 'import argon2, sys
h = argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, hash_len=32,
                          salt_len=16, type=argon2.Type.ID)
print(h.hash(open(sys.argv[1]).read().splitlines()[0]))' "$dpassfile")
    cat > "$dv/passdb.lua" <<LUA
-- Verify-only passdb: Dovecot never sees the hash, so its auth cache keeps {SHA1} of a
-- verified password instead of re-running argon2 on every hit.
local user, hash = "$duser", "{ARGON2ID}$hash"
function auth_password_verify(request, password)
  if request.user ~= user then
    return dovecot.auth.PASSDB_RESULT_USER_UNKNOWN, "no such user"
  end
  if request:password_verify(hash, password) > 0 then
    return dovecot.auth.PASSDB_RESULT_OK, ""
  end
  return dovecot.auth.PASSDB_RESULT_PASSWORD_MISMATCH, "wrong password"
end
LUA
    chgrp dovecot "$dv/passdb.lua"
    chmod 640 "$dv/passdb.lua"
    cache_size=0
    [ "$cache_ttl" -gt 0 ] && cache_size=10M
    cat > "$dv/dovecot.conf" <<DOVECOT_CONF
# Private auth-only Dovecot for the benchmark's Postfix (benches/postfix-instance.sh).
base_dir = $dv/run
state_dir = $dv/state
instance_name = gatepost-bench-$port
log_path = $dir/log/dovecot.log
protocols =
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_cache_size = $cache_size
auth_cache_ttl = ${cache_ttl}s
auth_cache_negative_ttl = 0
passdb {
  driver = lua
  args = file=$dv/passdb.lua blocking=yes cache_key=%u
}
userdb {
  driver = static
  args = uid=postfix gid=postfix home=/nonexistent
}
service auth {
  unix_listener $dir/queue/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
DOVECOT_CONF
    postconf -c "$etc" -e \
        "smtpd_sasl_auth_enable = yes" \
        "smtpd_sasl_type = dovecot" \
        "smtpd_sasl_path = private/auth" \
        "smtpd_sasl_security_options = noanonymous" \
        "smtpd_relay_restrictions = permit_sasl_authenticated, reject"
    if [ "$tls" = 1 ]; then
        postconf -c "$etc" -e "smtpd_tls_auth_only = yes"
    fi
fi

# Every service unchrooted (the chroot jail under the queue directory would lack
# /etc/hosts, resolv.conf, the sasldb and the certificate).
cat > "$etc/master.cf" <<EOF
# service  type  private unpriv chroot wakeup maxproc command
127.0.0.1:$port inet n   -      n      -      -       smtpd
pickup     unix  n       -      n      60     1       pickup
cleanup    unix  n       -      n      -      0       cleanup
qmgr       unix  n       -      n      300    1       qmgr
tlsmgr     unix  -       -      n      1000?  1       tlsmgr
rewrite    unix  -       -      n      -      -       trivial-rewrite
bounce     unix  -       -      n      -      0       bounce
defer      unix  -       -      n      -      0       bounce
trace      unix  -       -      n      -      0       bounce
verify     unix  -       -      n      -      1       verify
flush      unix  n       -      n      1000?  0       flush
proxymap   unix  -       -      n      -      -       proxymap
proxywrite unix  -       -      n      -      1       proxymap
showq      unix  n       -      n      -      -       showq
error      unix  -       -      n      -      -       error
retry      unix  -       -      n      -      -       error
discard    unix  -       -      n      -      -       discard
smtp       unix  -       -      n      -      -       smtp
anvil      unix  -       -      n      -      1       anvil
scache     unix  -       -      n      -      1       scache
postlog    unix-dgram n  -      n      -      1       postlogd
EOF

# "check" creates the queue subdirectories with the right owners (post-install
# create-missing) and fails on unsafe ownership; then master starts.
# The daemons run as user postfix and must reach DIR (a mktemp -d parent is 0700).
runuser -u postfix -- test -x "$dir/queue" ||
    die "user postfix cannot enter $dir: make every parent directory world-searchable (chmod 755)"

# Postfix writes its errors to the log file, not to the terminal: show them on failure.
fail() { tail -n 20 "$dir/log/postfix.log" >&2 2>/dev/null || true; die "$1"; }
postfix -c "$etc" check || fail "postfix check failed"
if [ -n "$dovecot_sasl" ]; then
    # After `postfix check` has made queue/private: Dovecot puts its socket there.
    dovecot -c "$dir/dovecot/dovecot.conf" || fail "dovecot did not start (log: $dir/log/dovecot.log)"
fi
postfix -c "$etc" start || fail "postfix start failed"

for _ in $(seq 1 100); do
    if ss -Hltn "sport = :$port" | grep -q .; then
        log "started in $dir, smtpd on 127.0.0.1:$port (tls=$tls sasl=${sasl:+cyrus}${dovecot_sasl:+dovecot, cache ${cache_ttl}s} hold=$hold relay=${relay:-none})"
        exit 0
    fi
    sleep 0.1
done
fail "smtpd did not start listening on 127.0.0.1:$port"
