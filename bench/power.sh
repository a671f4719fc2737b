#!/bin/sh
# Gateway overhead of lava-power vs pdudaemon 1.1.1, same machine, same run, same "instant" PDU
# (a command that runs `sh -c true`, as pdudaemon's localcmdline runs its command through a shell):
#   - p50/p99 of one request at a time over pdudaemon's TCP protocol
#   - 1000 concurrent requests to one PDU (queued and run one at a time by both)
#
# Usage: bench/power.sh            (from the repository root)
# Needs: cargo; python3; pdudaemon 1.1.1 in the venv $LAVA_TEST_VENV (default build/venv):
#        python3 -m venv build/venv && build/venv/bin/pip install pdudaemon==1.1.1
set -eu
cd "$(dirname "$0")/.."
VENV=${LAVA_TEST_VENV:-build/venv}
N=${N:-500}
C=${C:-1000}
[ -x "$VENV/bin/pdudaemon" ] || { echo "no pdudaemon in $VENV: $VENV/bin/pip install pdudaemon==1.1.1" >&2; exit 1; }
cargo build --release -p lava-power >&2
BIN=${CARGO_TARGET_DIR:-target}/release/lava-power
T=$(mktemp -d)
trap 'kill $PIDS 2>/dev/null || true; rm -rf "$T"' EXIT
PIDS=""

cat > "$T/bench.toml" <<TOML
driver = "command"
on = ["sh", "-c", "true {outlet}"]
off = ["sh", "-c", "true {outlet}"]
deadline = "600s"
TOML
RUST_LOG=warn "$BIN" --runtime-dir "$T/run" serve --config "$T/bench.toml" & PIDS="$PIDS $!"
RUST_LOG=warn "$BIN" --runtime-dir "$T/run" gateway --listen 127.0.0.1:16431 & PIDS="$PIDS $!"

cat > "$T/pdudaemon.conf" <<JSON
{"daemon": {"hostname": "127.0.0.1", "port": 16432, "logging_level": "ERROR", "listener": "tcp"},
 "pdus": {"bench": {"driver": "localcmdline", "cmd_on": "true %s", "cmd_off": "true %s"}}}
JSON
"$VENV/bin/pdudaemon" --conf "$T/pdudaemon.conf" --loglevel ERROR >/dev/null 2>&1 & PIDS="$PIDS $!"

for port in 16431 16432; do
  i=0; until python3 -c "import socket; socket.create_connection(('127.0.0.1', $port)).close()" 2>/dev/null; do
    i=$((i+1)); [ $i -lt 100 ] || { echo "nothing listening on $port" >&2; exit 1; }; sleep 0.1; done
done
i=0; until [ -S "$T/run/bench.sock" ]; do i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.1; done

echo "== lava-power gateway ($(nproc) cores)"
python3 bench/power_client.py 127.0.0.1 16431 bench sequential "$N"
python3 bench/power_client.py 127.0.0.1 16431 bench concurrent "$C"
echo "== pdudaemon 1.1.1"
python3 bench/power_client.py 127.0.0.1 16432 bench sequential "$N"
python3 bench/power_client.py 127.0.0.1 16432 bench concurrent "$C"
