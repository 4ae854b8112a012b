#!/usr/bin/env bash
# Connected accounts: push latency and the cost of idling (issue 10's second benchmark).
#
#   benches/account_push.sh [--accounts N] [--messages M] [--idle-seconds S] [--no-build]
#
# A private Dovecot (core 0, TLS) with N users; gatepost (core 1) with one user holding N
# accounts, one per Dovecot user, every one of them in IDLE on its source INBOX once its
# first import is done. Then: M messages APPENDed one by one to the first source INBOX,
# each timed from the APPEND's OK to the `* n EXISTS` a gatepost client in IDLE on the
# unified INBOX receives (p50, p99); and the server's CPU time and RSS over S seconds of
# idling with N accounts. docs/benchmarks.md has the figures.
set -euo pipefail

accounts=100 messages=100 idle_seconds=600 build=1 bin=""
while [ $# -gt 0 ]; do
    case $1 in
    --accounts) accounts=$2; shift ;;
    --messages) messages=$2; shift ;;
    --idle-seconds) idle_seconds=$2; shift ;;
    --no-build) build=0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
bench_name=push
repo="$(cd "$(dirname "$0")/.." && pwd)"
log() { printf '==> %s\n' "$*" >&2; }
die() { echo "account_push.sh: $*" >&2; exit 1; }
source "$repo/benches/common.sh"
command -v dovecot >/dev/null && [ -x /usr/lib/dovecot/imap ] || die "needs dovecot-imapd"
locate_binary

work=$(mktemp -d /tmp/gatepost-pushbench.XXXXXX)
chmod 755 "$work"
gp_pid="" dv_conf=""
cleanup() {
    [ -n "$gp_pid" ] && stop_process "$gp_pid" 10
    [ -n "$dv_conf" ] && doveadm -c "$dv_conf" stop 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
cert=$repo/certs/localhost-cert.pem key=$repo/certs/localhost-key.pem

dv=$work/dovecot dv_port=$((20000 + RANDOM % 20000))
start_dovecot "$dv" "$dv_port" "unused" gatepost-pushbench
# One imap process per connection, and Dovecot allows 100 by default: N accounts in IDLE
# plus the benchmark's own connections need more.
echo "default_process_limit = $((accounts * 2 + 50))" >> "$dv_conf"
doveadm -c "$dv_conf" reload
for i in $(seq 0 $((accounts - 1))); do echo "src$i:{PLAIN}source password"; done > "$dv/passwd"

gp_port=$((dv_port + 2))
cat > "$work/gatepost.toml" <<TOML
data_dir = "$work/gp-data"
[submission]
starttls_listen = []
tls_listen = "127.0.0.1:$((gp_port + 1))"
[imap]
starttls_listen = []
tls_listen = "127.0.0.1:$gp_port"
[quota]
initial = "10GB"
[store]
min_free_disk = 0
[tls]
cert = "$cert"
key = "$key"
[relay]
url = "file://$work/outbox"
[secrets]
key_file = "$work/secrets.key"
generate_if_missing = true
[log]
level = "warn"
TOML
printf 'bench own password\n' > "$work/own"
printf 'source password\n' > "$work/src"
"$bin" --config "$work/gatepost.toml" user add bench --email bench@example.com --password-file "$work/own" >/dev/null
log "adding $accounts accounts"
for i in $(seq 0 $((accounts - 1))); do
    "$bin" --config "$work/gatepost.toml" account add bench --name "A$i" --address "src$i@example.org" \
        --imap "imaps://localhost:$dv_port" --login "src$i" --password-file "$work/src" --ca-file "$cert" >/dev/null
done
taskset -c 1 "$bin" --config "$work/gatepost.toml" serve 2>"$work/gatepost.log" &
gp_pid=$!
wait_port "$gp_port" 30 "$gp_pid" || die "gatepost did not start: $(cat "$work/gatepost.log")"
log "waiting for every account's first import"
for _ in $(seq 1 120); do
    done_count=0
    for i in 0 $((accounts / 2)) $((accounts - 1)); do
        s=$("$bin" --config "$work/gatepost.toml" account show bench "A$i" --json)
        python3 -c 'import json,sys; s=json.loads(sys.argv[1])["sync"]; sys.exit(0 if s and s["first_import_done"] and s["phase"]=="idle" else 1)' "$s" && done_count=$((done_count + 1))
    done
    [ "$done_count" = 3 ] && break
    sleep 1
done
sleep 3
log "push latency over $messages messages"
taskset -c 0 python3 "$repo/benches/account_push.py" latency "$gp_port" "$dv_port" "$cert" "$messages"
log "idling with $accounts accounts for $idle_seconds s"
python3 "$repo/benches/account_push.py" idle "$gp_pid" "$idle_seconds"
echo "Dovecot imap processes: $(pgrep -c -x imap || true)"
