#!/usr/bin/env bash
# 10,000 IDLE sessions (100 users x 100 sessions) against gatepost: server RSS with all of
# them idling, and how fast one APPEND per user reaches every session as EXISTS.
#
#   benches/idle_fanout.sh [--users U] [--sessions S] [--no-build] [--perf FILE]
#
# --perf FILE records the server with `perf record -g` during the fan-out only (read it with
# `perf report -i FILE`).
#
# Server on core 0, the load generator (benches/idle_fanout.rs, one thread) on core 1.
set -euo pipefail
users=100 sessions=100 build=1 bin="" perf_out=""
while [ $# -gt 0 ]; do
    case $1 in
    --users) users=$2; shift ;;
    --sessions) sessions=$2; shift ;;
    --no-build) build=0 ;;
    --perf) perf_out=$2; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
bench_name=idle
repo="$(cd "$(dirname "$0")/.." && pwd)"
log() { printf '==> %s\n' "$*" >&2; }
die() { echo "idle_fanout.sh: $*" >&2; exit 1; }
source "$repo/benches/common.sh"
locate_binary
if [ "$build" = 1 ]; then
    log "building the load generator"
    (cd "$repo" && cargo bench --locked --quiet --no-run --bench idle_fanout) || die "cargo bench --no-run failed"
fi
work=$(mktemp -d /tmp/gatepost-idlebench.XXXXXX)
gp_pid=""
cleanup() { [ -n "$gp_pid" ] && stop_process "$gp_pid" 10; rm -rf "$work"; }
trap cleanup EXIT
cert=$repo/certs/localhost-cert.pem
port=$((20000 + RANDOM % 20000))
total=$((users * sessions))
cat > "$work/gatepost.toml" <<TOML
data_dir = "$work/data"
[submission]
starttls_listen = "127.0.0.1:$((port + 1))"
tls_listen = []
[imap]
starttls_listen = []
tls_listen = "127.0.0.1:$port"
max_connections = $((total * 2 + 1000))
max_connections_per_ip = $((total + 1000))
max_connections_per_user = $((sessions + 10))
[login]
failures_before_lockout = 1000000
max_waiting_verifications = 100000
max_verification_wait = "600s"
[store]
min_free_disk = 0
[tls]
cert = "$cert"
key = "$repo/certs/localhost-key.pem"
[log]
level = "info"
TOML
printf 'idle bench password\n' > "$work/pw"
log "adding $users users"
for u in $(seq 0 $((users - 1))); do
    "$bin" --config "$work/gatepost.toml" user add "$(printf 'u%03d' "$u")" --email "$(printf 'u%03d' "$u")@example.com" --password-file "$work/pw" >/dev/null
done
taskset -c 0 "$bin" --config "$work/gatepost.toml" serve 2>"$work/gatepost.log" &
gp_pid=$!
wait_port "$port" 30 "$gp_pid" || die "gatepost did not start"
grep -o 'open_files=[^ ]*' "$work/gatepost.log" | head -1 >&2 || true
coproc GEN { cd "$repo" && taskset -c 1 cargo bench --locked --quiet --bench idle_fanout -- localhost "$port" "$cert" "idle bench password" "$users" "$sessions" 2>&1; }
ready=0
while read -r l <&"${GEN[0]}"; do
    echo "$l"
    [ "$l" = ready ] && ready=1 && break
done
if [ "$ready" = 0 ]; then
    echo "the load generator failed; the server's warnings:" >&2
    grep -E "WARN|ERROR" "$work/gatepost.log" | cut -c1-300 | sort | uniq -c | sort -rn | head -20 >&2
    exit 1
fi
rss=$(awk '/VmRSS/ {print $2}' "/proc/$gp_pid/status")
echo "server RSS with $total IDLE sessions: $((rss / 1024)) MiB"
cpu() { awk '{print $14 + $15}' "/proc/$gp_pid/stat"; }
ticks=$(getconf CLK_TCK)
before=$(cpu)
perf_pid=""
if [ -n "$perf_out" ]; then
    perf record -q -F 2000 -g -p "$gp_pid" -o "$perf_out" 2>/dev/null &
    perf_pid=$!
    sleep 1
fi
echo go >&"${GEN[1]}"
while read -r l <&"${GEN[0]}"; do [ "$l" = end ] && break; echo "$l"; done
if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true; fi
echo "server: $(python3 -c "print('%.2f' % (($(cpu) - $before) / $ticks))") s of CPU for the fan-out (the $users APPENDs and $total EXISTS)"
echo quit >&"${GEN[1]}"
wait "$GEN_PID" 2>/dev/null || true
