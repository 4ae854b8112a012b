#!/usr/bin/env bash
# Ingest benchmark: gatepost against a private Postfix on the same load, in the same run.
#
# Usage:
#   benches/ingest.sh [--runs 3] [--messages 2000] [--large-messages 200] [--sessions 10]
#                     [--sizes 4096,409600] [--held 0|N] [--held-store DIR]
#                     [--release later|now] [--recovery] [--no-build] [--bin PATH]
#                     [--port-base 12600] [--keep]
#                     [--load smtp-source|persistent|per-message] [--cache-ttl SECONDS] [--pin]
#
# For every size and every run, each contender gets a fresh instance and the same load from
# Postfix's smtp-source (HELO, no TLS/AUTH; both servers trust 127.0.0.1):
#   gatepost        fresh data dir, release build, trusted network 127.0.0.1/32 as user
#                   "bench"; every 250 waits for body fsync + rename + dir fsync + redb commit
#   gatepost-held   (only with --held N) the same, on a store prefilled with N held messages
#                   (benches/prefill.rs) and its trace index built (`gatepost trace reindex`);
#                   prefilled once per invocation, or reused from --held-store DIR (prefilled
#                   there on first use), see docs/benchmarks.md
#   postfix         benches/postfix-instance.sh: cleanup(8) fsyncs each queue file before 250
# What happens to accepted mail (--release):
#   later (default) acceptance only: the recipient is a dated plus-address 90 days ahead
#                   (sink+YYYY-MM-DD@example.net), so gatepost holds every message and its
#                   dispatcher stays idle; Postfix puts every message in its hold queue
#   now             acceptance while delivering: gatepost releases at once and its dispatcher
#                   writes each message to a file:// relay (rewrite, fsync, two more commits);
#                   Postfix's queue manager hands each message to discard(8)
# Each contender gets a 20-message warm-up, then `smtp-source -m MESSAGES -s SESSIONS -l SIZE`
# is timed (wall clock). The order of contenders rotates from run to run. gatepost's peak
# RSS is VmHWM from /proc/PID/status just before SIGTERM, once the trace indexer has indexed
# the run's messages (it holds back during the load). CPU per message is measured with
# a cgroup-v1 cpuacct group per contender (all server processes, kernel time included;
# "n/a" without cpuacct). Data and queue directories are deleted only at exit: deleting
# files between runs slows the next contender's file creations (ext4 without a journal skips
# recently freed inodes; see docs/benchmarks.md).
#
#   --messages N        messages per timed run for sizes < 100 KiB (default 2000)
#   --large-messages N  messages per timed run for sizes >= 100 KiB (default 200)
#   --held N            also measure gatepost with N held messages in its store
#   --held-store DIR    keep the prefilled store in DIR and reuse it on later invocations
#                       (runs add their messages to it: a few thousand on top of N)
#   --release MODE      later (default) or now, see above
#   --recovery          with --held: before the runs, time two start-ups of the held store
#                       without its clean-shutdown marker (the full recovery scan), one with
#                       the page cache as it is and one after dropping it (as after a power
#                       cut); prints start-up seconds and VmHWM
#   --no-build          use the gatepost binary as it is
#   --bin PATH          the gatepost binary (default: $CARGO_TARGET_DIR or target/, then
#                       release/gatepost); prefill is built with cargo in the same target dir
#   --settle SECONDS    before the first timed run: sync, then wait this long (default 30),
#                       so writeback of earlier work (a prefill, a build) does not slow fsync
#   --runs 0            only prepare: prefill the held store (and --recovery), no runs
#   --keep              keep the work directory (logs, configs, results.tsv)
#   --load KIND         smtp-source (default): as above, plaintext, trusted network.
#                       persistent / per-message: the way mail clients submit, STARTTLS +
#                       AUTH PLAIN from Python smtplib (benches/submit_load.py) with SESSIONS
#                       threads, each either over one connection (persistent) or with a new
#                       connection, handshake and login for every message (per-message,
#                       Outlook's habit). gatepost: no trusted network, user "bench" with an
#                       argon2id password. Postfix: the same certificate (certs/localhost-*),
#                       AUTH through a private Dovecot (postfix-instance.sh --dovecot-sasl)
#                       checking an argon2id PHC string of gatepost's cost.
#   --cache-ttl SECONDS with --load persistent/per-message: both sides cache verified logins
#                       for this long (gatepost [login] cache_ttl, Dovecot auth_cache_ttl);
#                       0 turns both caches off (default 3600)
#   --pin               the servers on CPU 1, the load generator on CPU 0 (taskset), so the
#                       client's own CPU cannot be taken from the server it measures
#
# Prints per-run lines, then a table of medians. Must run as root (Postfix). Everything it
# starts is stopped on exit, also on failure or Ctrl-C.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
bench_name=ingest
# shellcheck source=benches/common.sh
. "$here/common.sh"

runs=3 messages=2000 large_messages=200 sessions=10 sizes=4096,409600 held=0
held_store="" release=later build=1 port_base=12600 keep=0 recovery=0 bin="" settle=30
load=smtp-source cache_ttl=3600 pin=0
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs=$2; shift ;;
    --messages) messages=$2; shift ;;
    --large-messages) large_messages=$2; shift ;;
    --sessions) sessions=$2; shift ;;
    --sizes) sizes=$2; shift ;;
    --held) held=$2; shift ;;
    --held-store) held_store=$2; shift ;;
    --release) release=$2; shift ;;
    --recovery) recovery=1 ;;
    --no-build) build=0 ;;
    --bin) bin=$2; shift ;;
    --port-base) port_base=$2; shift ;;
    --settle) settle=$2; shift ;;
    --keep) keep=1 ;;
    --load) load=$2; shift ;;
    --cache-ttl) cache_ttl=$2; shift ;;
    --pin) pin=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "ingest: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

die() { echo "ingest: $*" >&2; exit 1; }
log() { echo "ingest: $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root (the private Postfix needs it)"
for t in smtp-source postfix python3 ss; do
    command -v "$t" >/dev/null || die "$t not found (Postfix tools live in /usr/sbin)"
done
case "$release" in
later) rcpt="sink+$(date -u -d '+90 days' +%F)@example.net" ;;
now) rcpt="sink@example.net" ;;
*) die "--release must be later or now" ;;
esac
case "$load" in smtp-source | persistent | per-message) ;; *) die "--load must be smtp-source, persistent or per-message" ;; esac
for n in "$runs" "$messages" "$large_messages" "$sessions" "$held" "$port_base" "$settle" "$cache_ttl"; do
    [[ "$n" =~ ^[0-9]+$ ]] || die "not a number: $n"
done

gp_port=$port_base gps_port=$((port_base + 1)) pf_port=$((port_base + 2))
for p in $gp_port $gps_port $pf_port; do
    ss -Hltn "sport = :$p" | grep -q . && die "port $p is in use (try --port-base)"
done

work=$(mktemp -d /tmp/gatepost-ingest.XXXXXX)
chmod 755 "$work" # the Postfix daemons (user postfix) must be able to enter it
results=$work/results.tsv
gp_pid=""
pf_dirs=()

cleanup() {
    local rc=$?
    if [ -n "$gp_pid" ]; then stop_process "$gp_pid" 10; fi
    for d in "${pf_dirs[@]}"; do
        bash "$here/postfix-instance.sh" stop "$d" >/dev/null 2>&1 || true
    done
    cg_remove_all
    if [ "$keep" = 1 ] || [ "$rc" != 0 ]; then
        log "work directory kept: $work"
        # Bodies of finished runs are large and of no further use.
        find "$work" -maxdepth 1 -name 'gp-*' -type d -exec rm -rf {} + 2>/dev/null || true
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

locate_binary

printf 'bench password, not a secret\n' > "$work/password"
# taskset prefixes: servers on CPU 1, the load generator on CPU 0 (--pin).
server_cpu=() client_cpu=()
if [ "$pin" = 1 ]; then
    [ "$(nproc)" -ge 2 ] || die "--pin needs two CPUs"
    server_cpu=(taskset -c 1) client_cpu=(taskset -c 0)
fi

# Write a gatepost config for DATA_DIR to stdout.
gp_config() {
    cat <<EOF
data_dir = "$1"
hostname = "gatepost-bench.test"

[imap]
starttls_listen = []
tls_listen = []
[submission]
starttls_listen = "127.0.0.1:$gp_port"
tls_listen = "127.0.0.1:$gps_port"
max_message_size = "25MiB"
max_connections = 1000
max_connections_per_ip = 1000
shutdown_grace = "10s"
$(gp_auth_config)

[tls]
cert = "$repo/certs/localhost-cert.pem"
key = "$repo/certs/localhost-key.pem"

[relay]
url = "file://$1/outbox"

[log]
level = "warn"
EOF
}

# smtp-source cannot AUTH: it submits as "bench" from a trusted network. Clients log in.
gp_auth_config() {
    if [ "$load" = smtp-source ]; then
        printf '\n[[submission.trusted_networks]]\nnetwork = "127.0.0.1/32"\nuser = "bench"\n'
    else
        printf '\n[login]\ncache_ttl = "%ss"\n' "$cache_ttl"
    fi
}

# Make sure DATA_DIR's store has the user "bench" (user add refuses a duplicate: ignore that).
gp_user() {
    local cfg=$1
    if ! "$bin" --config "$cfg" user add bench --email bench@gatepost.test \
        --password-file "$work/password" >"$work/useradd.log" 2>&1; then
        grep -qi "exist" "$work/useradd.log" || { cat "$work/useradd.log" >&2; die "user add failed"; }
    fi
}

count_bodies() { [ -d "$1/bodies" ] || { echo 0; return; }; find "$1/bodies" -name '*.eml' | wc -l; }



# run_load PORT COUNT SIZE LABEL [CGROUP] -> prints "elapsed-seconds cpu-ns client-cpu-s" of
# the timed part; dies on any load generator error.
run_load() {
    local port=$1 count=$2 size=$3 label=$4 cg=${5:-} t0 t1 c0 c1 out
    if [ "$load" != smtp-source ]; then
        "${client_cpu[@]}" python3 "$here/submit_load.py" 127.0.0.1 "$port" bench "$work/password" 20 \
            "$sessions" "$size" "$load" bench@gatepost.test "$rcpt" >/dev/null 2>"$work/warmup.err" ||
            { cat "$work/warmup.err" >&2; die "$label: warm-up failed"; }
        c0=$(cg_usage "$cg")
        out=$("${client_cpu[@]}" python3 "$here/submit_load.py" 127.0.0.1 "$port" bench "$work/password" \
            "$count" "$sessions" "$size" "$load" bench@gatepost.test "$rcpt" 2>"$work/load.err") ||
            { cat "$work/load.err" >&2; die "$label: submit_load.py failed"; }
        c1=$(cg_usage "$cg")
        read -r t0 t1 _ <<< "$out"
        echo "$t0 $((c1 - c0)) $t1"
        return
    fi
    smtp-source -m 20 -s "$sessions" -l "$size" -f bench@gatepost.test -t "$rcpt" \
        "127.0.0.1:$port" 2>"$work/warmup.err" || { cat "$work/warmup.err" >&2; die "$label: warm-up failed"; }
    c0=$(cg_usage "$cg")
    t0=$(date +%s.%N)
    smtp-source -m "$count" -s "$sessions" -l "$size" -f bench@gatepost.test -t "$rcpt" \
        "127.0.0.1:$port" 2>"$work/load.err" || { cat "$work/load.err" >&2; die "$label: smtp-source failed"; }
    t1=$(date +%s.%N)
    c1=$(cg_usage "$cg")
    [ -s "$work/load.err" ] && { cat "$work/load.err" >&2; die "$label: smtp-source reported errors"; }
    python3 -c "print(f'{$t1 - $t0:.3f} {$c1 - $c0} 0')"
}

# wait_indexed CONFIG -> seconds until the running server's trace indexer has applied every
# change (it holds back while submissions keep coming, up to 10 s: docs/trace.md), so the
# peak RSS includes indexing the run's messages. Polls `gatepost trace`, which says on
# stderr when changes are still waiting for the running server to index them.
wait_indexed() {
    local cfg=$1 t0 i
    t0=$(date +%s.%N)
    for i in $(seq 1 240); do
        "$bin" --config "$cfg" trace --limit 1 >/dev/null 2>"$work/trace-poll.err" ||
            { cat "$work/trace-poll.err" >&2; return 1; }
        if ! grep -q "still being indexed" "$work/trace-poll.err"; then
            python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')"
            return 0
        fi
        sleep 0.5
    done
    return 1
}

# bench_gatepost KIND DATA_DIR SIZE COUNT RUN -> appends a result line.
bench_gatepost() {
    local kind=$1 dir=$2 size=$3 count=$4 run=$5 cfg before after secs cpu ccpu cpu_all loaded rss t0 startup cg indexed
    cfg=$work/$kind-$size-$run.toml
    gp_config "$dir" > "$cfg"
    gp_user "$cfg"
    before=$(count_bodies "$dir")
    t0=$(date +%s.%N)
    "${server_cpu[@]}" "$bin" --config "$cfg" serve >"$work/$kind-$size-$run.log" 2>&1 &
    gp_pid=$!
    wait_port "$gp_port" 900 "$gp_pid" || { tail -20 "$work/$kind-$size-$run.log" >&2; die "$kind did not start"; }
    startup=$(python3 -c "print(f'{$(date +%s.%N) - $t0:.2f}')")
    cg=$(cg_new "$kind-$size-$run")
    cg_add "$cg" "$gp_pid"
    read -r secs cpu ccpu <<< "$(run_load "$gp_port" "$count" "$size" "$kind" "$cg")"
    loaded=$(cg_usage "$cg")
    indexed=$(wait_indexed "$cfg") || die "$kind: the trace index did not catch up within 120 s"
    # The trace indexer holds back during a flood and indexes the run's messages after it:
    # that work is theirs too, so "with indexing" adds the CPU spent until it caught up.
    cpu_all=$((cpu + $(cg_usage "$cg") - loaded))
    rss=$(awk '/^VmHWM:/ {print $2}' "/proc/$gp_pid/status")
    kill -TERM "$gp_pid"
    wait "$gp_pid" || die "$kind exited with status $? (log: $work/$kind-$size-$run.log)"
    gp_pid=""
    after=$(count_bodies "$dir")
    [ $((after - before)) = $((count + 20)) ] ||
        die "$kind stored $((after - before)) bodies, expected $((count + 20))"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$size" "$run" "$count" "$secs" "$rss" "$startup" "$cpu" "$ccpu" "$cpu_all" >> "$results"
    log "run $run size $size: $kind $count msgs in $secs s ($(python3 -c "print(round($count / $secs))") msgs/s, $(python3 -c "print(f'{$cpu / $count / 1e6:.2f}')") CPU ms/msg, $(python3 -c "print(f'{$cpu_all / $count / 1e6:.2f}')") with indexing), VmHWM $(((rss + 512) / 1024)) MiB (index caught up $indexed s after the load), startup $startup s"
}

bench_postfix() {
    local size=$1 count=$2 run=$3 d secs cpu ccpu cg master dmaster extra=()
    [ "$release" = later ] && extra=(--hold)
    if [ "$load" != smtp-source ]; then
        extra+=(--tls --tls-cert "$repo/certs/localhost-cert.pem" --tls-key "$repo/certs/localhost-key.pem"
            --dovecot-sasl "bench:$work/password" --auth-cache-ttl "$cache_ttl")
    fi
    d=$work/pf-$size-$run
    pf_dirs+=("$d")
    "${server_cpu[@]}" bash "$here/postfix-instance.sh" start "$d" "$pf_port" "${extra[@]}" 2>"$work/pf-start.log" ||
        { cat "$work/pf-start.log" >&2; die "postfix did not start"; }
    cg=$(cg_new "postfix-$size-$run")
    master=$(tr -dc 0-9 < "$d/queue/pid/master.pid")
    # The master and the daemons it has already started; later ones inherit the group.
    cg_add "$cg" "$master" $(pgrep -P "$master" || true)
    if [ -f "$d/dovecot/run/master.pid" ]; then
        # Dovecot's auth processes check the passwords: they are part of Postfix's cost.
        dmaster=$(tr -dc 0-9 < "$d/dovecot/run/master.pid")
        cg_add "$cg" "$dmaster" $(pgrep -P "$dmaster" || true)
    fi
    read -r secs cpu ccpu <<< "$(run_load "$pf_port" "$count" "$size" postfix "$cg")"
    bash "$here/postfix-instance.sh" stop "$d" 2>/dev/null
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' postfix "$size" "$run" "$count" "$secs" 0 0 "$cpu" "$ccpu" "$cpu" >> "$results"
    log "run $run size $size: postfix $count msgs in $secs s ($(python3 -c "print(round($count / $secs))") msgs/s, $(python3 -c "print(f'{$cpu / $count / 1e6:.2f}')") CPU ms/msg)"
}

# The held store: prefilled once (or reused), shared by all gatepost-held runs.
held_dir=""
if [ "$held" -gt 0 ]; then
    if [ -n "$held_store" ]; then
        mkdir -p "$held_store"
        held_dir=$(cd "$held_store" && pwd)
    else
        held_dir=$work/held
    fi
    if [ -f "$held_dir/.prefilled" ] && [ "$(cat "$held_dir/.prefilled")" -ge "$held" ]; then
        log "reusing the store in $held_dir ($(cat "$held_dir/.prefilled") held messages prefilled)"
    else
        [ -e "$held_dir/gatepost.redb" ] && die "$held_dir holds a store that was not (fully) prefilled; remove it"
        log "prefilling $held held messages into $held_dir (this takes a while)"
        (cd "$repo" && cargo bench --locked --quiet --bench prefill -- "$held_dir" "$held" 16) ||
            die "prefill failed"
        # A server that has held these messages for a while has them in its trace index;
        # without it, the first start would index them all in the background of the runs.
        gp_config "$held_dir" > "$work/held-reindex.toml"
        t0=$(date +%s.%N)
        "$bin" --config "$work/held-reindex.toml" trace reindex >"$work/held-reindex.log" 2>&1 ||
            { cat "$work/held-reindex.log" >&2; die "trace reindex of the held store failed"; }
        log "trace index built in $(python3 -c "print(f'{$(date +%s.%N) - $t0:.0f}')") s: $(tail -1 "$work/held-reindex.log")"
        echo "$held" > "$held_dir/.prefilled"
    fi
fi

# Start-up of the held store without the clean-shutdown marker: the full recovery scan.
recovery_start() { # LABEL
    local cfg=$work/recovery-$1.toml t0 startup rss
    gp_config "$held_dir" > "$cfg"
    rm -f "$held_dir/clean-shutdown"
    t0=$(date +%s.%N)
    GATEPOST__LOG__LEVEL=info "$bin" --config "$cfg" serve >"$work/recovery-$1.log" 2>&1 &
    gp_pid=$!
    wait_port "$gp_port" 1800 "$gp_pid" || { tail -20 "$work/recovery-$1.log" >&2; die "recovery start ($1) failed"; }
    startup=$(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')")
    rss=$(awk '/^VmHWM:/ {print $2}' "/proc/$gp_pid/status")
    kill -TERM "$gp_pid"
    wait "$gp_pid" || die "recovery start ($1) exited with status $?"
    gp_pid=""
    [ -f "$held_dir/clean-shutdown" ] || die "gatepost did not leave the clean-shutdown marker"
    grep -q "checking the store for debris" "$work/recovery-$1.log" ||
        die "recovery start ($1) did not run the recovery scan (log: $work/recovery-$1.log)"
    echo "$1 $startup $rss" >> "$work/recovery.tsv"
    log "recovery start-up ($1 cache) with $(cat "$held_dir/.prefilled") held: listening after $startup s, VmHWM $(((rss + 512) / 1024)) MiB"
}
if [ "$recovery" = 1 ]; then
    [ "$held" -gt 0 ] || die "--recovery needs --held N"
    sync
    recovery_start warm
    sync
    echo 3 > /proc/sys/vm/drop_caches
    recovery_start cold
fi

[ "$runs" -gt 0 ] || { log "--runs 0: preparation done"; exit 0; }

log "sync, then settling for $settle s"
sync
sleep "$settle"

IFS=, read -r -a size_list <<< "$sizes"
log "gatepost $(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown), $(nproc) CPUs, $(date -u '+%F %H:%M UTC')"
log "work dir $work; runs=$runs sessions=$sessions sizes=$sizes messages=$messages/$large_messages held=$held release=$release rcpt=$rcpt load=$load${pin:+ pin=$pin}$([ "$load" != smtp-source ] && echo " cache_ttl=${cache_ttl}s")"
for size in "${size_list[@]}"; do
    [[ "$size" =~ ^[0-9]+$ ]] || die "bad size $size"
    count=$messages
    [ "$size" -ge 102400 ] && count=$large_messages
    contenders=(gatepost postfix)
    [ "$held" -gt 0 ] && contenders=(gatepost gatepost-held postfix)
    for run in $(seq 1 "$runs"); do
        # Rotate the order so that no contender always runs first (or last) on a warm disk.
        n=${#contenders[@]}
        for k in $(seq 0 $((n - 1))); do
            c=${contenders[$(((k + run - 1) % n))]}
            case "$c" in
            gatepost) bench_gatepost gatepost "$work/gp-$size-$run" "$size" "$count" "$run" ;;
            gatepost-held) bench_gatepost gatepost-held "$held_dir" "$size" "$count" "$run" ;;
            postfix) bench_postfix "$size" "$count" "$run" ;;
            esac
        done
    done
done

python3 - "$results" "$sessions" "$held" "$load" <<'EOF'
import statistics, sys
from collections import defaultdict
path, sessions, held, load = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
rate = defaultdict(list); rss = defaultdict(list); cpu = defaultdict(list); startup = defaultdict(list)
client = defaultdict(list); cpu_all = defaultdict(list)
count = {}; sizes = []
for line in open(path):
    kind, size, run, n, secs, kib, up, ns, ccpu, ns_all = line.rstrip("\n").split("\t")
    cpu_all[kind, int(size)].append(int(ns_all) / int(n) / 1e6)
    client[kind, int(size)].append(float(ccpu) / float(secs))
    size, n = int(size), int(n)
    if size not in sizes:
        sizes.append(size)
    count[size] = n
    rate[kind, size].append(n / float(secs))
    rss[kind, size].append(int(kib) / 1024)
    startup[kind, size].append(float(up))
    cpu[kind, size].append(int(ns) / n / 1e6)
def med(d, k): return statistics.median(d[k]) if d[k] else float("nan")
def ms(k): return f"{med(cpu, k):.2f}" if med(cpu, k) > 0 else "n/a"
def human(b): return f"{b // 1024} KiB" if b % 1024 == 0 else f"{b} B"
kinds = ["gatepost"] + (["gatepost-held"] if held else []) + ["postfix"]
label = {"gatepost": "gatepost", "gatepost-held": f"gatepost+{held:,} held", "postfix": "postfix"}
head = ["size", "msgs", "sessions"] + [f"{label[k]} msgs/s" for k in kinds] + ["ratio"]
head += ["CPU ratio", "CPU ratio w/ indexing"]
if held:
    head.append("held/empty")
head += [f"{label[k]} CPU ms/msg" for k in kinds]
head += [f"{label[k]} peak RSS" for k in kinds if k != "postfix"]
rows = []
for s in sizes:
    row = [human(s), str(count[s]), sessions] + [f"{med(rate, (k, s)):.0f}" for k in kinds]
    row.append(f"{med(rate, ('gatepost', s)) / med(rate, ('postfix', s)):.2f}x")
    row.append(f"{med(cpu, ('gatepost', s)) / med(cpu, ('postfix', s)):.2f}" if med(cpu, ('postfix', s)) > 0 else "n/a")
    row.append(f"{med(cpu_all, ('gatepost', s)) / med(cpu_all, ('postfix', s)):.2f}" if med(cpu_all, ('postfix', s)) > 0 else "n/a")
    if held:
        row.append(f"{med(rate, ('gatepost-held', s)) / med(rate, ('gatepost', s)):.2f}")
    row += [ms((k, s)) for k in kinds]
    row += [f"{max(rss[k, s]):.0f} MiB" for k in kinds if k != "postfix"]
    rows.append(row)
w = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
print()
print("| " + " | ".join(h.ljust(w[i]) for i, h in enumerate(head)) + " |")
print("|" + "|".join("-" * (x + 2) for x in w) + "|")
for r in rows:
    print("| " + " | ".join(c.rjust(w[i]) for i, c in enumerate(r)) + " |")
print()
print("medians of", len(rate["gatepost", sizes[0]]), "runs; ratio = gatepost / postfix msgs/s (empty store);",
      "CPU ratio = gatepost / postfix CPU per message (w/ indexing: gatepost's CPU until its trace",
      "index caught up, Postfix's as measured); CPU = all server processes (Postfix: with",
      "Dovecot auth), kernel included; RSS = max VmHWM over runs; load:", load)
for s in sizes:
    for k in kinds:
        print(f"  {human(s):>8} {k:<14} msgs/s: " + ", ".join(f"{r:.0f}" for r in rate[k, s])
              + "; CPU ms/msg: " + ", ".join(f"{c:.2f}" for c in cpu[k, s])
              + ("; with indexing: " + ", ".join(f"{c:.2f}" for c in cpu_all[k, s]) if k != "postfix" else "")
              + (f"; startup {statistics.median(startup[k, s]):.1f} s" if k != "postfix" else "")
              + (f"; client core busy " + ", ".join(f"{c:.0%}" for c in client[k, s]) if load != "smtp-source" else ""))
EOF
