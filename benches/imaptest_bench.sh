#!/usr/bin/env bash
# Dovecot's imaptest in benchmark mode against gatepost and a private Dovecot, same run:
# its default command mix (LOGIN, LIST, STATUS, SELECT, FETCH, STORE, EXPUNGE, APPEND,
# LOGOUT), N clients for S seconds over TLS on the same mbox. Prints each server's totals per
# operation and gatepost/Dovecot for each. Servers on core 0, imaptest on core 1. Passwords:
# imaptest logs in again and again; gatepost checks argon2id once and then its verified-login
# cache (an HMAC); Dovecot's auth cache would still re-hash each LOGIN, so Dovecot gets a
# {PLAIN} password file — no hash at all, the most favourable to Dovecot.
#
#   benches/imaptest_bench.sh [--clients N] [--secs S] [--no-build]
#
# Needs: dovecot-imapd, imaptest (in GATEPOST_IMAPTEST or /tmp/imaptest, built by
# ../shared/tools/imaptest/build.sh). docs/benchmarks.md has the figures.
set -euo pipefail
clients=10 secs=60 build=1 bin=""
while [ $# -gt 0 ]; do
    case $1 in
    --clients) clients=$2; shift ;;
    --secs) secs=$2; shift ;;
    --no-build) build=0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
bench_name=imaptest
repo="$(cd "$(dirname "$0")/.." && pwd)"
log() { printf '==> %s\n' "$*" >&2; }
die() { echo "imaptest_bench.sh: $*" >&2; exit 1; }
source "$repo/benches/common.sh"
imaptest=${GATEPOST_IMAPTEST:-/tmp/imaptest}/imaptest
[ -x "$imaptest" ] || die "needs imaptest at $imaptest (../shared/tools/imaptest/build.sh /tmp/imaptest)"
command -v dovecot >/dev/null && [ -x /usr/lib/dovecot/imap ] || die "needs dovecot-imapd"
locate_binary

work=$(mktemp -d /tmp/gatepost-imaptest.XXXXXX)
chmod 755 "$work"
gp_pid="" dv_conf=""
cleanup() {
    [ -n "$gp_pid" ] && stop_process "$gp_pid" 10
    [ -n "$dv_conf" ] && doveadm -c "$dv_conf" stop 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
cert=$repo/certs/localhost-cert.pem key=$repo/certs/localhost-key.pem
password='bench imap password'
printf '%s\n' "$password" > "$work/password"
mbox=$repo/tests/imap/stress.mbox
run_imaptest() {
    taskset -c 1 "$imaptest" host=localhost port="$1" ssl=any-cert user=bench pass="$password" \
        mbox="$mbox" clients="$clients" secs="$secs" 2>&1
}

# --- gatepost ---
gp_port=$((20000 + RANDOM % 20000))
cat > "$work/gatepost.toml" <<TOML
data_dir = "$work/gp-data"
[submission]
starttls_listen = []
tls_listen = "127.0.0.1:$((gp_port + 1))"
[imap]
starttls_listen = []
tls_listen = "127.0.0.1:$gp_port"
[quota]
initial = "100GB"
[store]
min_free_disk = 0
[tls]
cert = "$cert"
key = "$key"
[relay]
url = "file://$work/outbox"
[log]
level = "warn"
TOML
"$bin" --config "$work/gatepost.toml" user add bench --email bench@example.com --password-file "$work/password" >/dev/null
taskset -c 0 "$bin" --config "$work/gatepost.toml" serve 2>"$work/gatepost.log" &
gp_pid=$!
wait_port "$gp_port" 30 "$gp_pid" || die "gatepost did not start: $(cat "$work/gatepost.log")"
log "imaptest against gatepost: $clients clients, $secs s"
run_imaptest "$gp_port" > "$work/gp.out" || true
stop_process "$gp_pid" 10; gp_pid=""

# --- Dovecot ---
dv=$work/dovecot dv_port=$((gp_port + 2))
start_dovecot "$dv" "$dv_port" "$password" gatepost-imaptest
log "imaptest against Dovecot: $clients clients, $secs s"
run_imaptest "$dv_port" > "$work/dv.out" || true

cp "$work/gp.out" "$work/dv.out" /tmp/ 2>/dev/null || true
for s in gp dv; do
    errors=$(grep -c '^Error:' "$work/$s.out" || true)
    echo "$s: $errors protocol errors reported"
done
python3 - "$work/gp.out" "$work/dv.out" <<'PY'
import sys
def totals(path):
    lines = open(path, errors="replace").read().splitlines()
    i = max(n for n, l in enumerate(lines) if l.startswith("Totals:"))
    names = lines[i + 1].split()
    counts = next(l.split() for l in lines[i + 2:i + 6] if l.split() and all(w.isdigit() for w in l.split()))
    return dict(zip(names, map(int, counts)))
gp, dv = totals(sys.argv[1]), totals(sys.argv[2])
print("%-6s %10s %10s %7s" % ("op", "gatepost", "Dovecot", "ratio"))
for op in gp:
    r = gp[op] / dv[op] if dv.get(op) else float("nan")
    print("%-6s %10d %10d %7.2f" % (op, gp[op], dv.get(op, 0), r))
PY
