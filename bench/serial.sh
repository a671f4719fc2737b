#!/bin/sh
# Benchmark lava-serial against ser2net on the same pty setup (docs/performance.md).
#
#   bench/serial.sh [--only lava-raw,ser2net-default,...] [--json FILE] [--markdown FILE] [...]
#
# Builds lava-serial in release mode, installs Debian's ser2net if it is missing (needs root or
# sudo), then runs bench/serial_bench.py (python3, standard library only; Debian's telnet for the
# attach measurement, skipped without it). Extra flags go to it; `bench/serial.sh --help` lists
# them. A full run takes about 2 minutes.
set -eu
cd "$(dirname "$0")/.."

if ! command -v ser2net >/dev/null 2>&1 && [ ! -x /usr/sbin/ser2net ]; then
    echo "bench: installing ser2net (Debian package)" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get install -y ser2net || { $SUDO apt-get update && $SUDO apt-get install -y ser2net; }
fi
# The package enables a ser2net.service with the example config: the benchmark runs its own
# instances and needs none of it.

target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p lava-serial
exec python3 bench/serial_bench.py --lava-serial "$target/release/lava-serial" \
    --ser2net "$(command -v ser2net || echo /usr/sbin/ser2net)" "$@"
