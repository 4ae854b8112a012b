# Shell helpers shared by the benchmark scripts (sourced, not run). The sourcing script sets
# `bench_name` (ingest, release) first: it names the cgroups, so a script's cleanup finds
# its own; `log`, `die`, `repo`, `build` and `bin` are the script's.

# stop_process PID SECONDS: SIGTERM, wait up to SECONDS for a graceful exit, then SIGKILL.
stop_process() {
    kill -0 "$1" 2>/dev/null || return 0
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 1 $(($2 * 10))); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
}

# locate_binary: build the release binary unless $build is 0, then set $bin (unless given).
locate_binary() {
    if [ "$build" = 1 ]; then
        log "building the release binary"
        (cd "$repo" && cargo build --release --locked --quiet) || die "cargo build --release failed"
    fi
    [ -n "$bin" ] || bin=${CARGO_TARGET_DIR:-$repo/target}/release/gatepost
    [ -x "$bin" ] || die "$bin missing (build it, or drop --no-build)"
}

# wait_port PORT SECONDS [PID]: until something listens on 127.0.0.1:PORT; fails early when
# PID (the server being waited for) has exited.
wait_port() {
    local i
    for i in $(seq 1 $(($2 * 10))); do
        ss -Hltn "sport = :$1" | grep -q . && return 0
        [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null && return 1
        sleep 0.1
    done
    return 1
}

# CPU accounting (cgroup v1 cpuacct, when available): each contender's processes are moved
# into their own group, so CPU time per message counts every server process and thread
# (kernel time included) and nothing else on this shared machine.
cg_root=/sys/fs/cgroup/cpuacct
cg_new() { # NAME -> path, or nothing when cpuacct is unavailable
    local g=$cg_root/gatepost-$bench_name-$$-$1
    if [ -w "$cg_root" ] && mkdir -p "$g" 2>/dev/null; then
        echo "$g"
    fi
}
cg_add() { # PATH PID...
    local g=$1 p
    shift
    [ -n "$g" ] || return 0
    for p in "$@"; do echo "$p" > "$g/cgroup.procs" 2>/dev/null || true; done
}
cg_usage() { if [ -n "$1" ]; then cat "$1/cpuacct.usage"; else echo 0; fi; }
cg_remove_all() { # the groups this script made (empty by now)
    local d
    for d in "$cg_root"/gatepost-$bench_name-$$-*; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
    return 0
}

# start_dovecot DIR PORT PASSWORD NAME: a private Dovecot (Maildir, mail_fsync = always, TLS
# only, IMAPS on PORT, user bench with a {PLAIN} password) under DIR, on core 0. Sets
# dv_conf (for `doveadm -c "$dv_conf" stop`). Needs cert, key, die and wait_port.
start_dovecot() {
    local dv=$1 port=$2 password=$3 name=$4
    mkdir -p "$dv/run" "$dv/state" "$dv/mail"
    chown nobody:nogroup "$dv/mail"
    echo "bench:{PLAIN}$password" > "$dv/passwd"
    dv_conf=$dv/dovecot.conf
    cat > "$dv_conf" <<CONF
base_dir = $dv/run
state_dir = $dv/state
instance_name = $name-$port
log_path = $dv/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <$cert
ssl_key = <$key
auth_mechanisms = plain
mail_location = maildir:$dv/mail/%u
mail_fsync = always
passdb {
  driver = passwd-file
  args = $dv/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$dv/mail/%u
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = $port
    ssl = yes
  }
}
CONF
    taskset -c 0 dovecot -c "$dv_conf"
    wait_port "$port" 30 || die "Dovecot did not start: $(cat "$dv/dovecot.log" 2>/dev/null)"
}
