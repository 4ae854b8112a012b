#!/usr/bin/env bash
# IMAP benchmark: gatepost against a private Dovecot, the same messages, the same run.
#
#   benches/imap_fetch.sh [--count N] [--runs R] [--no-build]
#
# Generates N realistic messages (benches/mailgen.py, mean ~75 KB), then for each server:
# APPENDs them one by one over TLS on one connection (durable APPEND rate: gatepost commits
# every APPEND; Dovecot with mail_fsync = always), then R times one `UID FETCH 1:*
# BODY.PEEK[]` over TLS (messages/s and MB/s). Servers on core 0, the client on core 1, both
# over TLS with the same certificate. Prints each figure, the medians and gatepost/Dovecot.
# Needs: dovecot-imapd, python3. docs/benchmarks.md has the figures.
set -euo pipefail

count=10000 runs=3 build=1 bin=""
while [ $# -gt 0 ]; do
    case $1 in
    --count) count=$2; shift ;;
    --runs) runs=$2; shift ;;
    --no-build) build=0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
bench_name=imap
repo="$(cd "$(dirname "$0")/.." && pwd)"
log() { printf '==> %s\n' "$*" >&2; }
die() { echo "imap_fetch.sh: $*" >&2; exit 1; }
source "$repo/benches/common.sh"
command -v dovecot >/dev/null && [ -x /usr/lib/dovecot/imap ] || die "needs dovecot-imapd (apt-get install dovecot-imapd)"
locate_binary

work=$(mktemp -d /tmp/gatepost-imapbench.XXXXXX)
chmod 755 "$work"
gp_pid="" dv_conf=""
cleanup() {
    [ -n "$gp_pid" ] && stop_process "$gp_pid" 10
    [ -n "$dv_conf" ] && doveadm -c "$dv_conf" stop 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cert=$repo/certs/localhost-cert.pem key=$repo/certs/localhost-key.pem
printf 'bench imap password\n' > "$work/password"
log "generating $count messages"
python3 "$repo/benches/mailgen.py" "$work/msgs" --count "$count" >/dev/null
client() { client_as bench "$@"; }
client_as() { taskset -c 1 python3 "$repo/benches/imap_client.py" "$2" localhost "$3" "$cert" "$1" "$work/password" "${@:4}"; }

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
max_append_size = "100MiB"
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
log "gatepost: APPEND $count"
gp_append=$(client append "$gp_port" "$work/msgs")
echo "gatepost $gp_append"
gp_fetch=()
for r in $(seq 1 "$runs"); do
    out=$(client fetch "$gp_port"); echo "gatepost $out"; gp_fetch+=("$out")
done
# Dedup: the same messages for a second user take no second copy of their bytes.
blob_bytes() { du -sb "$work/gp-data/blobs" | cut -f1; }
blobs_one=$(blob_bytes)
"$bin" --config "$work/gatepost.toml" user add bench2 --email bench2@example.com --password-file "$work/password" >/dev/null
log "gatepost: APPEND $count again, for a second user"
client_as bench2 append "$gp_port" "$work/msgs" >/dev/null
blobs_two=$(blob_bytes)
stop_process "$gp_pid" 10; gp_pid=""

# --- Dovecot ---
dv=$work/dovecot dv_port=$((gp_port + 2))
start_dovecot "$dv" "$dv_port" "$(head -1 "$work/password")" gatepost-imapbench
log "Dovecot: APPEND $count"
dv_append=$(client append "$dv_port" "$work/msgs")
echo "dovecot $dv_append"
dv_fetch=()
for r in $(seq 1 "$runs"); do
    out=$(client fetch "$dv_port"); echo "dovecot $out"; dv_fetch+=("$out")
done

dv_bytes=$(du -sb "$dv/mail/bench" | cut -f1)
echo "dedup: gatepost blobs $((blobs_one / 1000000)) MB for one user, $((blobs_two / 1000000)) MB for two (ratio $(python3 -c "print('%.3f' % ($blobs_two / $blobs_one))")); Dovecot's Maildir for one user $((dv_bytes / 1000000)) MB"
python3 - "$gp_append" "$dv_append" "${gp_fetch[@]}" -- "${dv_fetch[@]}" <<'PY'
import statistics, sys
args = sys.argv[1:]
gp_a, dv_a = args[0].split(), args[1].split()
sep = args.index("--")
gp_f = [a.split() for a in args[2:sep]]
dv_f = [a.split() for a in args[sep + 1:]]
rate = lambda a: int(a[1]) / float(a[2])
print("durable APPEND, one connection: gatepost %.0f msg/s, Dovecot %.0f msg/s, ratio %.2f"
      % (rate(gp_a), rate(dv_a), rate(gp_a) / rate(dv_a)))
def med(fs):
    return statistics.median(int(f[1]) / float(f[3]) for f in fs), statistics.median(int(f[2]) / float(f[3]) / 1e6 for f in fs)
(gm, gb), (dm, db) = med(gp_f), med(dv_f)
print("UID FETCH 1:* BODY.PEEK[] (median of %d): gatepost %.0f msg/s %.1f MB/s, Dovecot %.0f msg/s %.1f MB/s, ratio %.2f"
      % (len(gp_f), gm, gb, dm, db, gm / dm))
PY
