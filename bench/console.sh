#!/bin/sh
# Attach latency of lava-console (command start -> first board byte on the person's terminal),
# compared with Debian's conmux-console on the same pty board (docs/performance.md, "lava-console").
#
#   bench/console.sh [--runs N] [--markdown FILE]
#
# Builds lava-console and lava-serial in release mode, then runs bench/console_bench.py (python3,
# standard library only). conmux is measured when Debian's conmux package is installed
# (`apt-get install conmux`); otherwise its rows are skipped with a note. About a minute.
set -eu
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p lava-console -p lava-serial --bins
exec python3 bench/console_bench.py --bin-dir "$target/release" "$@"
