#!/usr/bin/env bash
# Ingest baseline: how fast a private Postfix instance accepts (and fsyncs) mail from
# smtp-source on this machine, for comparison with gatepost's ingest benchmark.
#
# Usage: benches/postfix-baseline.sh [MESSAGES] [SESSIONS] [SIZE] [PORT] [--hold]
#   defaults: 1000 messages, 10 parallel sessions, 4096-byte payload, port 12525.
# Prints one line: "postfix-baseline: N msgs, S sessions, L bytes: T s, R msgs/s".
# Runs as root (see postfix-instance.sh); starts and always stops its own instance.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
messages=${1:-1000}
sessions=${2:-10}
size=${3:-4096}
port=${4:-12525}
extra=()
[ "${5:-}" = "--hold" ] && extra=(--hold)

work=$(mktemp -d /tmp/gatepost-postfix-baseline.XXXXXX)
chmod 755 "$work" # the Postfix daemons (user postfix) must be able to enter it
cleanup() {
    bash "$here/postfix-instance.sh" stop "$work/pf" || true
    rm -rf "$work"
}
trap cleanup EXIT

bash "$here/postfix-instance.sh" start "$work/pf" "$port" "${extra[@]}"
# Warm-up: spawn smtpd/cleanup processes before timing.
smtp-source -m 20 -s "$sessions" -l "$size" -f bench@gatepost.test -t sink@example.net "127.0.0.1:$port"

start=$(date +%s.%N)
smtp-source -m "$messages" -s "$sessions" -l "$size" \
    -f bench@gatepost.test -t sink@example.net "127.0.0.1:$port"
end=$(date +%s.%N)

python3 - "$messages" "$sessions" "$size" "$start" "$end" <<'EOF'
import sys
n, s, l = (int(x) for x in sys.argv[1:4])
t = float(sys.argv[5]) - float(sys.argv[4])
print(f"postfix-baseline: {n} msgs, {s} sessions, {l} bytes: {t:.2f} s, {n / t:.0f} msgs/s")
EOF
