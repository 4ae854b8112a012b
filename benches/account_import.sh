#!/usr/bin/env bash
# Account import benchmark: the first import of one mailbox from a private Dovecot over TLS,
# by gatepost (serve, a connected account) and by mbsync (isync, to a Maildir, its default
# FSync), against the ceiling of one raw `UID FETCH 1:* BODY.PEEK[]` over TLS from the same
# server. Same messages, same run.
#
#   benches/account_import.sh [--count N] [--runs R] [--no-build]
#
# Generates N realistic messages (benches/mailgen.py, mean ~75 KB) and APPENDs them to the
# Dovecot's INBOX once. Dovecot on core 0; every client (the raw fetch, mbsync, gatepost) on
# core 1, all over TLS with the same certificate. Each run starts from an empty target. For
# gatepost the time is from the account's first pass starting to its end (the status the
# server writes), and its peak RSS (VmHWM) is reported. Prints each figure, the medians and
# the ratios. docs/benchmarks.md has the figures.
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
bench_name=import
repo="$(cd "$(dirname "$0")/.." && pwd)"
log() { printf '==> %s\n' "$*" >&2; }
die() { echo "account_import.sh: $*" >&2; exit 1; }
source "$repo/benches/common.sh"
command -v dovecot >/dev/null && [ -x /usr/lib/dovecot/imap ] || die "needs dovecot-imapd"
command -v mbsync >/dev/null || die "needs isync (mbsync)"
locate_binary

work=$(mktemp -d /tmp/gatepost-importbench.XXXXXX)
chmod 755 "$work"
gp_pid="" dv_conf=""
cleanup() {
    [ -n "$gp_pid" ] && stop_process "$gp_pid" 10
    [ -n "$dv_conf" ] && doveadm -c "$dv_conf" stop 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cert=$repo/certs/localhost-cert.pem key=$repo/certs/localhost-key.pem
printf 'bench import password\n' > "$work/password"
printf 'bench own gatepost password\n' > "$work/own-password"
log "generating $count messages"
python3 "$repo/benches/mailgen.py" "$work/msgs" --count "$count" >/dev/null
client() { taskset -c 1 python3 "$repo/benches/imap_client.py" "$1" localhost "$2" "$cert" bench "$work/password" "${@:3}"; }

dv=$work/dovecot dv_port=$((20000 + RANDOM % 20000))
start_dovecot "$dv" "$dv_port" "$(head -1 "$work/password")" gatepost-importbench
log "filling the Dovecot INBOX"
client append "$dv_port" "$work/msgs" >/dev/null

# --- gatepost's config: serve with the account, on core 1 ---
gp_port=$((dv_port + 2))
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
[secrets]
key_file = "$work/secrets.key"
generate_if_missing = true
[log]
level = "warn"
TOML

raw=() mb=() gp=() rss=()
for r in $(seq 1 "$runs"); do
    out=$(client fetch "$dv_port"); echo "raw $out"; raw+=("$out")

    rm -rf "$work/maildir" "$work/mbsync-state"
    mkdir -p "$work/maildir" "$work/mbsync-state"
    cat > "$work/mbsyncrc" <<RC
IMAPAccount src
Host localhost
Port $dv_port
User bench
PassCmd "cat $work/password"
SSLType IMAPS
CertificateFile $cert

IMAPStore src-remote
Account src

MaildirStore local
Path $work/maildir/
Inbox $work/maildir/INBOX

Channel pull
Far :src-remote:
Near :local:
Patterns *
Create Near
Sync Pull
SyncState $work/mbsync-state/
RC
    start=$(date +%s.%N)
    taskset -c 1 mbsync -q -c "$work/mbsyncrc" pull
    end=$(date +%s.%N)
    n=$(find "$work/maildir" -type f -path '*/cur/*' -o -type f -path '*/new/*' | wc -l)
    echo "mbsync $n $(python3 -c "print($end - $start)")"; mb+=("$n $(python3 -c "print($end - $start)")")

    rm -rf "$work/gp-data" "$work/secrets.key"
    "$bin" --config "$work/gatepost.toml" user add bench --email bench@example.com --password-file "$work/own-password" >/dev/null
    "$bin" --config "$work/gatepost.toml" account add bench --name Src --address bench@example.org \
        --imap "imaps://localhost:$dv_port" --login bench --password-file "$work/password" --ca-file "$cert" >/dev/null
    if [ -n "${GATEPOST_BENCH_PERF:-}" ]; then # a profile of the server's import: perf report -i FILE
        taskset -c 1 perf record -F 499 -g -o "$GATEPOST_BENCH_PERF" "$bin" --config "$work/gatepost.toml" serve 2>"$work/gatepost.log" &
    else
        taskset -c 1 "$bin" --config "$work/gatepost.toml" serve 2>"$work/gatepost.log" &
    fi
    gp_pid=$!
    wait_port "$gp_port" 30 "$gp_pid" || die "gatepost did not start: $(cat "$work/gatepost.log")"
    for _ in $(seq 1 1200); do
        s=$("$bin" --config "$work/gatepost.toml" account show bench Src --json)
        if python3 -c 'import json,sys; s=json.loads(sys.argv[1])["sync"]; sys.exit(0 if s and s["first_import_done"] else 1)' "$s"; then break; fi
        sleep 1
    done
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$gp_pid/status")
    stop_process "$gp_pid" 10; gp_pid=""
    line=$(python3 -c '
import json, re, sys
from datetime import datetime
s = json.loads(sys.argv[1])["sync"]
p = lambda t: datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", t).replace("Z", "+00:00"))
print(s["imported_messages"], s["imported_bytes"], (p(s["last_sync"]) - p(s["pass_started"])).total_seconds())
' "$s")
    echo "gatepost $line rss ${hwm}kB"; gp+=("$line"); rss+=("$hwm")
done

python3 - "${raw[@]}" -- "${mb[@]}" -- "${gp[@]}" -- "${rss[@]}" <<'PY'
import statistics, sys
a = sys.argv[1:]
i, j, k = [n for n, x in enumerate(a) if x == "--"]
raw = [x.split() for x in a[:i]]; mb = [x.split() for x in a[i + 1:j]]
gp = [x.split() for x in a[j + 1:k]]; rss = [int(x) for x in a[k + 1:]]
raw_t = statistics.median(float(x[3]) for x in raw)
mb_t = statistics.median(float(x[1]) for x in mb)
gp_t = statistics.median(float(x[2]) for x in gp)
n = int(gp[0][0]); size = int(gp[0][1])
print("first import of %d messages (%.0f MB), median of %d:" % (n, size / 1e6, len(gp)))
print("  raw UID FETCH 1:* BODY.PEEK[]  %.2f s  %.0f msg/s" % (raw_t, n / raw_t))
print("  mbsync to a Maildir            %.2f s  %.0f msg/s  (%s messages)" % (mb_t, n / mb_t, mb[0][0]))
print("  gatepost                       %.2f s  %.0f msg/s" % (gp_t, n / gp_t))
print("  gatepost / mbsync speed %.2fx; gatepost / raw fetch %.0f%%; peak RSS %d MB"
      % (mb_t / gp_t, 100 * raw_t / gp_t, max(rss) // 1024))
PY
