#!/usr/bin/env python3
"""Attach latency: from starting the console command to the first board byte on its terminal.

The board is a thread writing one byte (0x02) to a pty master every millisecond, so a client sees a
board byte at most ~1 ms after it is attached. The console command runs on a pty of its own, as
LAVA's pexpect and a person's terminal run it (new session, the pty as controlling terminal); the
clock starts just before the spawn and stops when 0x02 is read from that pty.

Measured:
  lava-console BOARD            through lava-serial (hello line, banner, raw mode)
  lava-console --plain H:P      same server, no hello line (a plain telnet client's path)
  conmux-console H:P            Debian's conmux server + client on the same board, when installed

Run it through bench/console.sh. Standard library only.
"""

import argparse
import fcntl
import os
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import termios
import threading
import time
import tty

MARK = b"\x02"


def board(master, stop):
    while not stop.is_set():
        try:
            os.write(master, MARK)
        except OSError:
            return
        time.sleep(0.001)


def drain(master, stop):
    # Whatever the server writes to the board (echo of keys, nothing here) is read and dropped.
    while not stop.is_set():
        r, _, _ = select.select([master], [], [], 0.05)
        if r:
            try:
                os.read(master, 4096)
            except OSError:
                return


def make_board():
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    stop = threading.Event()
    threading.Thread(target=board, args=(master, stop), daemon=True).start()
    return master, slave, path, stop


def ctty():
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def attach_once(argv, env):
    m, s = os.openpty()
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdin=s, stdout=s, stderr=s, env=env, preexec_fn=ctty, close_fds=True)
    os.close(s)
    got = None
    seen = b""
    deadline = t0 + 10
    while time.perf_counter() < deadline:
        r, _, _ = select.select([m], [], [], 0.5)
        if not r:
            continue
        try:
            chunk = os.read(m, 65536)
        except OSError:
            break
        seen += chunk
        if MARK in chunk:
            got = time.perf_counter()
            break
    p.kill()
    p.wait()
    os.close(m)
    if got is None:
        raise RuntimeError(f"{argv[0]}: no board byte within 10 s; saw {seen[-300:]!r}")
    return (got - t0) * 1000.0


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on {port}")


def start_lava_serial(bin_dir, path, tmp):
    sock_path = os.path.join(tmp, "notify.sock")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(sock_path)
    ns.settimeout(10)
    env = dict(os.environ, NOTIFY_SOCKET=sock_path, RUST_LOG="warn")
    p = subprocess.Popen([os.path.join(bin_dir, "lava-serial"), "--device", path, "--port", "0",
                          "--name", "bench01", "--log", os.path.join(tmp, "bench01.log")],
                         env=env, stdin=subprocess.DEVNULL)
    while True:
        msg = ns.recv(1024).decode()
        if "READY=1" in msg.splitlines():
            status = [l for l in msg.splitlines() if l.startswith("STATUS=")][0]
            return p, int(status.rsplit(":", 1)[1])


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def stats(name, samples):
    samples = sorted(samples)
    p90 = samples[int(0.9 * (len(samples) - 1))]
    return (name, len(samples), statistics.median(samples), p90, samples[0], samples[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True, help="directory with release lava-console and lava-serial")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--markdown", help="append the result table to this file")
    a = ap.parse_args()
    results = []
    notes = []
    tmp = tempfile.mkdtemp(prefix="console-bench-")
    master, slave, path, stop = make_board()
    threading.Thread(target=drain, args=(master, stop), daemon=True).start()

    server, port = start_lava_serial(a.bin_dir, path, tmp)
    boards = os.path.join(tmp, "boards.toml")
    with open(boards, "w") as f:
        f.write(f'[boards.bench01]\nport = {port}\nadapter = {{ serial = "BENCH" }}\n')
    env = dict(os.environ, LAVA_BOARDS=boards, RUST_LOG="warn")
    console = os.path.join(a.bin_dir, "lava-console")
    for name, argv in [
        ("lava-console BOARD (lava-serial)", [console, "bench01"]),
        ("lava-console --plain HOST:PORT", [console, "--plain", f"127.0.0.1:{port}"]),
    ]:
        attach_once(argv, env)  # warm the page cache
        results.append(stats(name, [attach_once(argv, env) for _ in range(a.runs)]))
    server.kill()
    server.wait()

    conmux = shutil.which("conmux") or ("/usr/sbin/conmux" if os.path.exists("/usr/sbin/conmux") else None)
    client = shutil.which("conmux-console")
    if conmux and client:
        cport = free_port()
        cf = os.path.join(tmp, "bench01.cf")
        with open(cf, "w") as f:
            f.write(f"listener {cport}\napplication console 'bench01' 'socat - {path},raw,echo=0'\n")
        cm = subprocess.Popen([conmux, cf], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, cwd=tmp)
        try:
            wait_port(cport)
            argv = [client, f"127.0.0.1:{cport}"]
            attach_once(argv, env)
            results.append(stats("conmux-console HOST:PORT (conmux)", [attach_once(argv, env) for _ in range(a.runs)]))
        finally:
            cm.kill()
            cm.wait()
    else:
        notes.append("conmux not installed (apt-get install conmux): its row is missing")
    stop.set()

    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [
        f"Attach latency, command start to first board byte on the console's pty; {a.runs} runs each, "
        f"board writing a byte every 1 ms; {os.cpu_count()} CPUs ({cpu}); {time.strftime('%Y-%m-%d')}.",
        "",
        "| client (server) | runs | median ms | p90 ms | min ms | max ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, n, med, p90, lo, hi in results:
        lines.append(f"| {name} | {n} | {med:.1f} | {p90:.1f} | {lo:.1f} | {hi:.1f} |")
    for n in notes:
        lines.append(f"\n{n}")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.markdown:
        with open(a.markdown, "a") as f:
            f.write(text)


if __name__ == "__main__":
    sys.exit(main())
