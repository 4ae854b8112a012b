#!/usr/bin/env bash
# Login storm benchmark (issue 8 item 5): 1,000 parallel wrong logins from 100 addresses
# against gatepost's implicit-TLS listener, and one correct login, in the middle of the storm,
# from an (address, user) pair that logged in successfully before (the priority lane).
#
# Usage: benches/login_storm.sh [--runs 5] [--wrong 1000] [--addresses 100] [--no-build]
#                               [--bin PATH] [--port 12650] [--keep]
#
# Each run starts a fresh gatepost process on the same data directory (the successful pair is
# remembered in the store), runs benches/login_storm.py, and reads the server's peak RSS
# (VmHWM) after the storm. The verified-password cache is off ([login] cache_ttl = "0s"), so
# the rightful login pays argon2 like every wrong one, waiting in the priority lane. Prints per-run lines and the medians: peak RSS
# (target < 200 MB) and the rightful login's time from AUTH to 235 (target < 1 s). The client
# uses source addresses 127.0.0.2-127.0.0.101 and 127.0.0.200 (all of 127/8 is loopback).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
bench_name=login-storm
# shellcheck source=benches/common.sh
. "$here/common.sh"

runs=5 wrong=1000 addresses=100 build=1 bin="" port=12650 keep=0
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs=$2; shift ;;
    --wrong) wrong=$2; shift ;;
    --addresses) addresses=$2; shift ;;
    --no-build) build=0 ;;
    --bin) bin=$2; shift ;;
    --port) port=$2; shift ;;
    --keep) keep=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "login_storm: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
die() { echo "login_storm: $*" >&2; exit 1; }
log() { echo "login_storm: $*" >&2; }
for n in "$runs" "$wrong" "$addresses" "$port"; do [[ "$n" =~ ^[0-9]+$ ]] || die "not a number: $n"; done
[ "$addresses" -le 100 ] || die "--addresses at most 100 (127.0.0.2-127.0.0.101)"

work=$(mktemp -d /tmp/gatepost-storm.XXXXXX)
gp_pid=""
cleanup() {
    local rc=$?
    [ -n "$gp_pid" ] && stop_process "$gp_pid" 10
    if [ "$keep" = 1 ] || [ "$rc" != 0 ]; then log "work directory kept: $work"; else rm -rf "$work"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
locate_binary
ulimit -n 65536 2>/dev/null || true

printf 'storm password, not a secret\n' > "$work/password"
cat > "$work/gatepost.toml" <<EOF
data_dir = "$work/data"
hostname = "gatepost-bench.test"

[imap]
starttls_listen = []
tls_listen = []
[submission]
starttls_listen = "127.0.0.1:$((port + 1))"
tls_listen = "127.0.0.1:$port"
max_connections = $((wrong * 2 + 100))
max_connections_per_ip = $((wrong / addresses + 10))
shutdown_grace = "5s"

[login]
# No cached logins: the rightful login must get through argon2, in the priority lane.
cache_ttl = "0s"

[tls]
cert = "$repo/certs/localhost-cert.pem"
key = "$repo/certs/localhost-key.pem"

[log]
level = "${STORM_LOG_LEVEL:-error}"
EOF
"$bin" --config "$work/gatepost.toml" user add bench --email bench@gatepost.test \
    --password-file "$work/password" >/dev/null || die "user add failed"

: > "$work/results.tsv"
for run in $(seq 1 "$runs"); do
    "$bin" --config "$work/gatepost.toml" serve >"$work/serve-$run.log" 2>&1 &
    gp_pid=$!
    wait_port "$port" 60 "$gp_pid" || { tail "$work/serve-$run.log" >&2; die "gatepost did not start"; }
    if [ "$run" = 1 ]; then
        # The rightful pair logs in once before any storm: it then waits in the priority lane.
        python3 "$here/login_storm.py" 127.0.0.1 "$port" bench "$work/password" 0 1 127.0.0.200 --prime \
            >/dev/null || die "the priming login failed"
    fi
    out=$(python3 "$here/login_storm.py" 127.0.0.1 "$port" bench "$work/password" "$wrong" "$addresses" 127.0.0.200) ||
        die "login_storm.py failed"
    rss=$(awk '/^VmHWM:/ {print $2}' "/proc/$gp_pid/status")
    stop_process "$gp_pid" 10
    wait "$gp_pid" 2>/dev/null || true
    gp_pid=""
    log "run $run: peak RSS $(((rss + 512) / 1024)) MiB; $out"
    printf '%s\t%s\n' "$rss" "$out" >> "$work/results.tsv"
done

python3 - "$work/results.tsv" "$wrong" "$addresses" <<'EOF'
import json, statistics, sys
rows = [line.rstrip("\n").split("\t", 1) for line in open(sys.argv[1])]
rss = [int(r[0]) / 1024 for r in rows]
res = [json.loads(r[1]) for r in rows]
auth = [r["good_auth_s"] for r in res]
ok = all(r["good_reply"].startswith("235") for r in res)
print()
print(f"{sys.argv[2]} wrong logins from {sys.argv[3]} addresses, {len(rows)} runs (medians):")
print(f"  gatepost peak RSS        {statistics.median(rss):.0f} MiB (max {max(rss):.0f}; target < 200 MB)")
print(f"  rightful login AUTH->235 {statistics.median(auth):.3f} s (max {max(auth):.3f}; target < 1 s; "
      f"{'all 235' if ok else 'NOT ALL 235: ' + str([r['good_reply'] for r in res])})")
print(f"  connect->235             {statistics.median(r['good_total_s'] for r in res):.3f} s")
print(f"  wrong-login replies      {res[len(res) // 2]['wrong']} (middle run)")
print(f"  storm answered in        {statistics.median(r['storm_s'] for r in res):.1f} s")
EOF
