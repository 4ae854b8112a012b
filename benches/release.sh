#!/usr/bin/env bash
# Release benchmark: N messages due at the same moment, relayed to Postfix's smtp-sink.
# gatepost against a private Postfix releasing the same N messages from its hold queue, and
# against the sink's ceiling, in the same run.
#
# Usage:
#   benches/release.sh [--runs 3] [--messages 10000] [--size 4096] [--concurrency 4]
#                      [--per-connection 50] [--postfix-concurrency N] [--load-sessions 20]
#                      [--lead 30] [--settle 30] [--no-build] [--bin PATH]
#                      [--port-base 12700] [--keep]
#
# Every run measures three contenders, each with a fresh smtp-sink (`smtp-sink -c`: its
# running counters are read by a small watcher that time-stamps the first message and the
# N-th one as the sink receives them):
#   gatepost   fresh data dir, trusted network 127.0.0.1/32 as user "bench", relay
#              smtp://127.0.0.1:SINK, rewrite on (relay.from_address set), delivery.concurrency
#              and messages_per_connection as given, [schedule] timezone UTC. smtp-source
#              submits N messages to sink+YYYYMMDDTHHMM@example.net, the first whole minute
#              at least --lead seconds ahead (T): every message is held until T. After the
#              load: sync, and nothing else happens until T. Measured from T: the first
#              message at the sink (punctuality) and the N-th (release time).
#   postfix    benches/postfix-instance.sh --hold --relay 127.0.0.1:SINK: the same N messages
#              (same recipient, same size, same load) go to its hold queue; after a sync and
#              a short pause, `postsuper -H ALL; postqueue -f` (the operator's release) starts
#              the clock. Its connections to the sink are limited to --postfix-concurrency
#              (default: gatepost's --concurrency, so both may use as many connections).
#   ceiling    smtp-source -d (connections reused, like both contenders) straight into the
#              sink: N messages, same size, as many sessions as gatepost's concurrency.
# The order of contenders rotates from run to run. CPU per message is the contender's
# cgroup-v1 cpuacct usage (every server process, kernel time included; not the sink)
# between the start of the clock and the N-th message; "n/a" without cpuacct. gatepost's
# peak RSS is VmHWM at the end. After each gatepost run the store must say N messages sent
# and the sink must have got exactly N (no duplicates); each Postfix run must leave an
# empty queue.
#
#   --messages N           messages released at once (default 10000)
#   --size BYTES           smtp-source message size (-l, default 4096)
#   --concurrency N        gatepost delivery.concurrency, and the ceiling's sessions (4)
#   --per-connection N     gatepost delivery.messages_per_connection (default 50)
#   --postfix-concurrency N  Postfix smtp_destination_concurrency_limit (default: --concurrency)
#   --load-sessions N      smtp-source sessions used to load the messages (default 20)
#   --lead SECONDS         least time between the start of the gatepost load and T (30);
#                          the load must end 5 s before T or the run stops with an error
#   --settle SECONDS       sync and wait this long before the first run (default 30)
#   --no-build / --bin PATH  as in benches/ingest.sh
#   --keep                 keep the work directory (configs, logs, results.tsv)
#
# Prints per-run lines, then a table of medians. Must run as root (Postfix). Everything it
# starts is stopped on exit, also on failure or Ctrl-C.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
bench_name=release
# shellcheck source=benches/common.sh
. "$here/common.sh"

runs=3 messages=10000 size=4096 concurrency=4 per_connection=50 pf_concurrency=""
load_sessions=20 lead=30 settle=30 build=1 bin="" port_base=12700 keep=0
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs=$2; shift ;;
    --messages) messages=$2; shift ;;
    --size) size=$2; shift ;;
    --concurrency) concurrency=$2; shift ;;
    --per-connection) per_connection=$2; shift ;;
    --postfix-concurrency) pf_concurrency=$2; shift ;;
    --load-sessions) load_sessions=$2; shift ;;
    --lead) lead=$2; shift ;;
    --settle) settle=$2; shift ;;
    --no-build) build=0 ;;
    --bin) bin=$2; shift ;;
    --port-base) port_base=$2; shift ;;
    --keep) keep=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "release: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$pf_concurrency" ] || pf_concurrency=$concurrency

die() { echo "release: $*" >&2; exit 1; }
log() { echo "release: $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root (the private Postfix needs it)"
for t in smtp-source smtp-sink postfix postsuper postqueue python3 ss; do
    command -v "$t" >/dev/null || die "$t not found (Postfix tools live in /usr/sbin)"
done
for n in "$runs" "$messages" "$size" "$concurrency" "$per_connection" "$pf_concurrency" \
    "$load_sessions" "$lead" "$settle" "$port_base"; do
    [[ "$n" =~ ^[0-9]+$ ]] || die "not a number: $n"
done
[ "$runs" -ge 1 ] && [ "$messages" -ge 1 ] && [ "$concurrency" -ge 1 ] || die "runs, messages and concurrency must be at least 1"

gp_port=$port_base gps_port=$((port_base + 1)) pf_port=$((port_base + 2)) sink_port=$((port_base + 3))
for p in $gp_port $gps_port $pf_port $sink_port; do
    ss -Hltn "sport = :$p" | grep -q . && die "port $p is in use (try --port-base)"
done

work=$(mktemp -d /tmp/gatepost-release.XXXXXX)
chmod 755 "$work" # the Postfix daemons (user postfix) must be able to enter it
results=$work/results.tsv
gp_pid="" sink_pid=""
pf_dirs=()

stop_gatepost() {
    [ -n "$gp_pid" ] || return 0
    stop_process "$gp_pid" 15
    wait "$gp_pid" 2>/dev/null || true
    gp_pid=""
}
stop_sink() {
    [ -n "$sink_pid" ] || return 0
    kill -TERM "$sink_pid" 2>/dev/null || true # the watcher stops its smtp-sink
    wait "$sink_pid" 2>/dev/null || true
    sink_pid=""
}
cleanup() {
    local rc=$?
    stop_gatepost
    stop_sink
    for d in "${pf_dirs[@]}"; do
        bash "$here/postfix-instance.sh" stop "$d" >/dev/null 2>&1 || true
    done
    cg_remove_all
    if [ "$keep" = 1 ] || [ "$rc" != 0 ]; then
        log "work directory kept: $work"
        # Keep the logs; message bodies and queue files are of no further use.
        rm -rf "$work"/gp-*/bodies "$work"/pf-*/queue 2>/dev/null || true
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

locate_binary
printf 'dummy-password-not-used\n' > "$work/password"

# The sink watcher: runs `smtp-sink -c` and reads its counters ("sess=.. quit=.. mesg=N",
# one per CR, flushed as they change). Writes "first EPOCH" when the first message has
# arrived, "done EPOCH" at the N-th, and "final COUNT" when told to stop (SIGTERM).
cat > "$work/sinkwatch.py" <<'EOF'
import os, signal, subprocess, sys, time
port, want, events = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sink = subprocess.Popen(["smtp-sink", "-u", "root", "-c", "-4", f"127.0.0.1:{port}", "1000"],
                        stdout=subprocess.PIPE, bufsize=0)
out = open(events, "w", buffering=1)
count = 0
def stop(*_):
    sink.terminate()
    sink.wait()
    out.write(f"final {count}\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
pending = b""
while True:
    chunk = os.read(sink.stdout.fileno(), 65536)
    now = time.time()
    if not chunk:
        break
    pending += chunk
    *lines, pending = pending.split(b"\r")
    for line in lines:
        if b"mesg=" not in line:
            continue
        n = int(line.rsplit(b"mesg=", 1)[1])
        if n >= 1 and count == 0:
            out.write(f"first {now:.6f}\n")
        if n >= want and count < want:
            out.write(f"done {now:.6f}\n")
        count = max(count, n)
out.write(f"final {count}\nsink exited\n")
EOF


start_sink() { # LABEL -> events file in $events
    events=$work/sink-$1.events
    python3 "$work/sinkwatch.py" "$sink_port" "$messages" "$events" 2>"$work/sink-$1.err" &
    sink_pid=$!
    wait_port "$sink_port" 10 "$sink_pid" || { cat "$work/sink-$1.err" >&2; die "smtp-sink did not start"; }
}

# wait_sink SECONDS -> prints "FIRST LAST" (epochs) once the sink has all N messages. The
# times come from the watcher; polling slowly here only keeps this loop off the CPU.
wait_sink() {
    local i
    for i in $(seq 1 $(($1 * 5))); do
        if grep -q '^done ' "$events"; then
            echo "$(awk '/^first / {print $2}' "$events") $(awk '/^done / {print $2}' "$events")"
            return 0
        fi
        sleep 0.2
    done
    return 1
}
sink_count() { awk '/^final / {print $2}' "$events" | tail -1; }


now() { date +%s.%N; }
calc() { python3 -c "print($1)"; }

load() { # PORT RCPT LABEL: submit N messages, die on any error
    smtp-source -m "$messages" -s "$load_sessions" -l "$size" -f bench@gatepost.test -t "$2" \
        "127.0.0.1:$1" 2>"$work/load.err" || { cat "$work/load.err" >&2; die "$3: loading failed"; }
    [ -s "$work/load.err" ] && { cat "$work/load.err" >&2; die "$3: smtp-source reported errors"; }
    return 0
}

gp_config() { # DATA_DIR
    cat <<EOF
data_dir = "$1"
hostname = "gatepost-bench.test"

[imap]
starttls_listen = []
tls_listen = []
[submission]
starttls_listen = "127.0.0.1:$gp_port"
tls_listen = "127.0.0.1:$gps_port"
max_connections = 1000
max_connections_per_ip = 1000
shutdown_grace = "10s"

[[submission.trusted_networks]]
network = "127.0.0.1/32"
user = "bench"

[tls]
cert = "$repo/certs/localhost-cert.pem"
key = "$repo/certs/localhost-key.pem"

[relay]
url = "smtp://127.0.0.1:$sink_port"
from_address = "gatepost@gatepost.test"

[delivery]
concurrency = $concurrency
messages_per_connection = $per_connection

[schedule]
timezone = "UTC"

[log]
level = "warn"
EOF
}

record() { # KIND RUN FIRST_S ALL_S CPU_NS RSS_KIB
    local cpu=""
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$results"
    [ "$5" -gt 0 ] && cpu=", $(calc "f'{$5 / $messages / 1e6:.2f}'") CPU ms/msg"
    log "run $2: $1: first after $3 s, all $messages after $4 s ($(calc "round($messages / $4)") msgs/s$cpu)${6:+, VmHWM $((($6 + 512) / 1024)) MiB}"
}

bench_gatepost() { # RUN
    local run=$1 dir=$work/gp-$1 cfg=$work/gp-$1.toml t tag rcpt T cg c0 c1 times first last rss sent n
    gp_config "$dir" > "$cfg"
    "$bin" --config "$cfg" user add bench --email bench@gatepost.test \
        --password-file "$work/password" >"$work/useradd.log" 2>&1 || { cat "$work/useradd.log" >&2; die "user add failed"; }
    start_sink "gatepost-$run"
    "$bin" --config "$cfg" serve >"$work/gp-$run.log" 2>&1 &
    gp_pid=$!
    wait_port "$gp_port" 60 "$gp_pid" || { tail -20 "$work/gp-$run.log" >&2; die "gatepost did not start"; }
    cg=$(cg_new "gatepost-$run")
    cg_add "$cg" "$gp_pid"
    # T: the first whole minute at least --lead seconds from now.
    T=$(calc "(int($(now)) + $lead + 59) // 60 * 60")
    tag=$(date -u -d "@$T" +%Y%m%dT%H%M)
    rcpt="sink+$tag@example.net"
    t=$(now)
    load "$gp_port" "$rcpt" gatepost
    log "run $run: gatepost: $messages messages held for $tag UTC, loaded in $(calc "f'{$(now) - $t:.1f}'") s"
    n=$(find "$dir/bodies" -name '*.eml' | wc -l)
    [ "$n" = "$messages" ] || die "gatepost stored $n bodies, expected $messages"
    sync
    [ "$(calc "int($(now) < $T - 5)")" = 1 ] || die "the load ended less than 5 s before T; raise --lead"
    grep -q . "$events" && die "the sink got mail before T"
    sleep "$(calc "max(0, $T - 1 - $(now))")"
    c0=$(cg_usage "$cg")
    times=$(wait_sink 600) || die "gatepost: the sink did not get $messages messages within 600 s of T"
    read -r first last <<< "$times"
    c1=$(cg_usage "$cg")
    rss=$(awk '/^VmHWM:/ {print $2}' "/proc/$gp_pid/status")
    # Every message recorded as sent (the outcome transactions follow the relay's replies).
    for _ in $(seq 1 300); do
        sent=$("$bin" --config "$cfg" queue list --state sent --limit $((messages + 1)) --json 2>/dev/null |
            python3 -c 'import json, sys; print(len(json.load(sys.stdin)))' 2>/dev/null || echo 0)
        [ "$sent" = "$messages" ] && break
        sleep 0.2
    done
    [ "$sent" = "$messages" ] || die "gatepost recorded $sent messages as sent, expected $messages (log: $work/gp-$run.log)"
    stop_gatepost
    stop_sink
    [ "$(sink_count)" = "$messages" ] || die "the sink got $(sink_count) messages from gatepost, expected $messages"
    record gatepost "$run" "$(calc "f'{$first - $T:.3f}'")" "$(calc "f'{$last - $T:.3f}'")" $((c1 - c0)) "$rss"
}

bench_postfix() { # RUN
    local run=$1 d=$work/pf-$1 cg master t0 c0 c1 times first last n left
    start_sink "postfix-$run"
    pf_dirs+=("$d")
    bash "$here/postfix-instance.sh" start "$d" "$pf_port" --hold \
        --relay "127.0.0.1:$sink_port" --relay-concurrency "$pf_concurrency" 2>"$work/pf-start.log" ||
        { cat "$work/pf-start.log" >&2; die "postfix did not start"; }
    cg=$(cg_new "postfix-$run")
    master=$(tr -dc 0-9 < "$d/queue/pid/master.pid")
    cg_add "$cg" "$master" $(pgrep -P "$master" || true)
    t0=$(now)
    load "$pf_port" "sink+$(date -u -d '+2 min' +%Y%m%dT%H%M)@example.net" postfix
    log "run $run: postfix: $messages messages in the hold queue, loaded in $(calc "f'{$(now) - $t0:.1f}'") s"
    n=$(find "$d/queue/hold" -type f | wc -l)
    [ "$n" = "$messages" ] || die "postfix holds $n messages, expected $messages"
    sync
    sleep 5
    grep -q . "$events" && die "the sink got mail from postfix before the release"
    c0=$(cg_usage "$cg")
    t0=$(now)
    postsuper -c "$d/etc" -H ALL 2>"$work/postsuper.log"
    postqueue -c "$d/etc" -f
    times=$(wait_sink 900) || die "postfix: the sink did not get $messages messages within 900 s"
    read -r first last <<< "$times"
    c1=$(cg_usage "$cg")
    # The queue empties once the last replies are in.
    for _ in $(seq 1 300); do
        left=$(find "$d/queue/active" "$d/queue/deferred" "$d/queue/incoming" "$d/queue/hold" -type f | wc -l)
        [ "$left" = 0 ] && break
        sleep 0.2
    done
    [ "$left" = 0 ] || die "postfix still has $left messages queued (log: $d/log/postfix.log)"
    bash "$here/postfix-instance.sh" stop "$d" 2>/dev/null
    stop_sink
    [ "$(sink_count)" = "$messages" ] || die "the sink got $(sink_count) messages from postfix, expected $messages"
    record postfix "$run" "$(calc "f'{$first - $t0:.3f}'")" "$(calc "f'{$last - $t0:.3f}'")" $((c1 - c0)) ""
}

bench_ceiling() { # RUN
    local run=$1 t0 times first last
    start_sink "ceiling-$run"
    t0=$(now)
    smtp-source -d -m "$messages" -s "$concurrency" -l "$size" -f bench@gatepost.test \
        -t sink@example.net "127.0.0.1:$sink_port" 2>"$work/load.err" ||
        { cat "$work/load.err" >&2; die "ceiling: smtp-source failed"; }
    times=$(wait_sink 60) || die "ceiling: the sink did not count $messages messages"
    read -r first last <<< "$times"
    stop_sink
    record ceiling "$run" "$(calc "f'{$first - $t0:.3f}'")" "$(calc "f'{$last - $t0:.3f}'")" 0 ""
}

log "gatepost $(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown), $(nproc) CPUs, $(date -u '+%F %H:%M UTC')"
log "work dir $work; runs=$runs messages=$messages size=$size concurrency=$concurrency per_connection=$per_connection postfix_concurrency=$pf_concurrency"
log "sync, then settling for $settle s"
sync
sleep "$settle"

contenders=(gatepost postfix ceiling)
for run in $(seq 1 "$runs"); do
    n=${#contenders[@]}
    for k in $(seq 0 $((n - 1))); do
        c=${contenders[$(((k + run - 1) % n))]}
        "bench_$c" "$run"
    done
done

python3 - "$results" "$messages" "$size" "$concurrency" "$per_connection" "$pf_concurrency" <<'EOF'
import statistics, sys
from collections import defaultdict
path, n, size, conc, per, pfconc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
first = defaultdict(list); total = defaultdict(list); cpu = defaultdict(list); rss = defaultdict(list)
for line in open(path):
    kind, run, f, a, ns, kib = line.rstrip("\n").split("\t")
    first[kind].append(float(f)); total[kind].append(float(a)); cpu[kind].append(int(ns) / n / 1e6)
    if kib:
        rss[kind].append(int(kib) / 1024)
med = statistics.median
rate = {k: n / med(total[k]) for k in total}
conns = {"gatepost": f"{conc} × {per} msgs", "postfix": f"{pfconc} (cached)", "ceiling": f"{conc} (reused)"}
what = {"gatepost": "gatepost (T → sink)", "postfix": "postfix (postsuper -H → sink)", "ceiling": "sink ceiling (smtp-source -d)"}
rows = [["contender", "connections", "first msg", f"all {n:,}", "msgs/s", "CPU ms/msg", "peak RSS"]]
for k in ["gatepost", "postfix", "ceiling"]:
    rows.append([what[k], conns[k], f"{med(first[k]):.3f} s", f"{med(total[k]):.2f} s", f"{rate[k]:.0f}",
                 f"{med(cpu[k]):.2f}" if k != "ceiling" and med(cpu[k]) > 0 else "n/a",
                 f"{max(rss[k]):.0f} MiB" if rss[k] else "-"])
w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
print()
print(f"{n:,} messages of {size} bytes due at once; medians of {len(total['gatepost'])} runs")
print("| " + " | ".join(h.ljust(w[i]) for i, h in enumerate(rows[0])) + " |")
print("|" + "|".join("-" * (x + 2) for x in w) + "|")
for r in rows[1:]:
    print("| " + " | ".join(c.rjust(w[i]) if i > 0 else c.ljust(w[i]) for i, c in enumerate(r)) + " |")
print()
print(f"gatepost / postfix: {rate['gatepost'] / rate['postfix']:.2f}x (target >= 2x)")
print(f"gatepost / sink ceiling: {100 * rate['gatepost'] / rate['ceiling']:.0f}% (target >= 30%)")
print(f"gatepost first message after T: {med(first['gatepost']):.3f} s, worst {max(first['gatepost']):.3f} s (target <= 1 s)")
for k in ["gatepost", "postfix", "ceiling"]:
    print(f"  {k:<9} first: " + ", ".join(f"{x:.3f}" for x in first[k]) + "; all: "
          + ", ".join(f"{x:.2f}" for x in total[k]) + " s; msgs/s: " + ", ".join(f"{n / x:.0f}" for x in total[k])
          + ("; CPU ms/msg: " + ", ".join(f"{c:.2f}" for c in cpu[k]) if k != "ceiling" else ""))
EOF
