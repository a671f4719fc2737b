#!/usr/bin/env python3
"""Side-by-side benchmark of lava-serial and ser2net on the same pty setup.

The "board" is a child process on the pty master; the server under test owns the slave, as it would
own /dev/ttyUSBn; the clients are TCP sockets in this process. Measured per server:
1-byte round trip (p50/p99), bulk MB/s both ways, fan-out to 1/8/32 clients (each client must get
every byte: CRC checked), Debian telnet's attach time (start to first board byte), idle wakeups per
second (context switches of all its threads over a quiet interval with one client attached) and
memory: VmRSS and Pss idle, VmHWM at the end, and the memory one instance costs on a host serving
64 boards (its anonymous memory plus 1/64 of its file-backed pages, which the instances share).

Run it through bench/serial.sh, which builds lava-serial and installs ser2net. Standard library only.
"""

import argparse
import json
import os
import platform
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time
import tty
import zlib

# Data pattern: every byte value except 0xFF and CR, so the same stream is untouched by a telnet
# server in NVT mode too (we never answer its negotiation).
PATTERN = bytes(b for b in range(256) if b not in (0xFF, 0x0D))
BLOCK = PATTERN * (65536 // len(PATTERN))

# Memory per instance is counted as on a host serving this many boards: each instance's anonymous
# memory, plus its share of the file-backed pages (the binary, libc) that all instances of the same
# program share through the page cache.
HOST_INSTANCES = 64

# What lava-serial sends first in telnet mode (docs/protocols.md).
IAC, WILL, DO = 255, 251, 253
TELNET_GREETING = bytes([IAC, WILL, 1, IAC, WILL, 3, IAC, DO, 3, IAC, WILL, 0, IAC, DO, 0])


def stream_crc(size):
    """CRC32 of the first `size` bytes of the endless BLOCK stream."""
    crc, left = 0, size
    while left:
        n = min(left, len(BLOCK))
        crc = zlib.crc32(BLOCK[:n], crc)
        left -= n
    return crc


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# The board: forked children on the pty master.


def fork_board(fn, *args):
    """Runs fn(report_fd, *args) in a child; returns (pid, read end of its report pipe)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            fn(w, *args)
        finally:
            os._exit(0)
    os.close(w)
    return pid, r


def board_ticker(_report, master):
    """Writes a byte every millisecond (and discards what it is sent): a board that is talking."""
    os.set_blocking(master, False)
    while True:
        try:
            os.write(master, b"B")
        except BlockingIOError:
            pass
        try:
            os.read(master, 4096)
        except BlockingIOError:
            pass
        time.sleep(0.001)


def board_echo(_report, master):
    while True:
        d = os.read(master, 4096)
        os.write(master, d)


def board_send(report, master, size, go, acks, window):
    """Waits for `go` bytes from the clients, then writes `size` bytes of the stream, keeping at
    most `window` bytes ahead of what every client has received (reported on the `acks` pipe)."""
    got = 0
    while got < go:
        got += len(os.read(master, 4096))
    t0 = time.monotonic_ns()
    os.write(report, struct.pack("q", t0))
    mv = memoryview(BLOCK)
    sent = acked = 0
    while sent < size:
        if sent >= acked + window:
            d = os.read(acks, 8 * 512)
            if not d:
                return
            acked = struct.unpack_from("q", d, len(d) - 8)[0]
            continue
        off = sent % len(BLOCK)
        n = min(len(BLOCK) - off, size - sent, acked + window - sent)
        sent += os.write(master, mv[off : off + n])


def board_sink(report, master, size):
    """Reads `size` bytes; reports the time of the last one and their CRC."""
    crc, got = 0, 0
    while got < size:
        d = os.read(master, 65536)
        crc = zlib.crc32(d, crc)
        got += len(d)
    os.write(report, struct.pack("qqI", time.monotonic_ns(), got, crc))


def read_report(fd, fmt, timeout):
    want = struct.calcsize(fmt)
    buf = b""
    deadline = time.monotonic() + timeout
    while len(buf) < want:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        d = os.read(fd, want - len(buf))
        if not d:
            return None
        buf += d
    return struct.unpack(fmt, buf)


def stop_child(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


# ---------------------------------------------------------------------------------------------
# The servers.


class Server:
    def __init__(self, name, argv, port, telnet, env=None):
        self.name, self.port, self.telnet = name, port, telnet
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log, env=env)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited at start: {self.output()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} does not listen on {port}: {self.output()}")
                time.sleep(0.01)
        self.pid = self.proc.pid

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-2000:]

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def proc_status(self, key):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def smaps_rollup(self):
        """Rss, Pss, Shared_Clean, Private_Clean, Private_Dirty... in KiB."""
        out = {}
        try:
            with open(f"/proc/{self.pid}/smaps_rollup") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if v.strip().endswith("kB"):
                        out[k] = int(v.split()[0])
        except OSError:
            pass
        return out

    def ctxt_switches(self):
        total = 0
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            try:
                with open(f"/proc/{self.pid}/task/{tid}/status") as f:
                    for line in f:
                        if "ctxt_switches" in line:
                            total += int(line.split()[1])
            except FileNotFoundError:
                pass
        return total

    def cpu_seconds(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def ser2net_server(binary, tty_path, tuned, workdir):
    port = free_port()
    options = ["    max-connections: 32"]
    if tuned:
        options.append("    chardelay: false")
    cfg = os.path.join(workdir, f"ser2net-{'tuned' if tuned else 'default'}.yaml")
    with open(cfg, "w") as f:
        f.write(
            "%YAML 1.1\n---\n"
            "connection: &bench\n"
            f"  accepter: tcp,127.0.0.1,{port}\n"
            f"  connector: serialdev,{tty_path},115200n81,local\n"
            "  options:\n" + "\n".join(options) + "\n"
        )
    argv = [binary, "-n", "-u", "-c", cfg, "-P", os.path.join(workdir, "ser2net.pid")]
    name = "ser2net tuned" if tuned else "ser2net default"
    return Server(name, argv, port, telnet=False), argv, cfg


def lava_server(binary, tty_path, protocol):
    port = free_port()
    argv = [binary, "--device", tty_path, "--port", str(port), "--bind", "127.0.0.1",
            "--protocol", protocol]
    env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
    return Server(f"lava-serial {protocol}", argv, port, telnet=protocol == "telnet", env=env), argv, None


# ---------------------------------------------------------------------------------------------
# The measurements.


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, int(round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def measure_rtt(setups, floor_pty, count):
    """1-byte round trips, interleaved: one ping to each server in turn (and to the bare pty), so
    whatever else the machine is doing hits every server alike."""
    boards = [fork_board(board_echo, st.master) for st in setups]
    floor_board = fork_board(board_echo, floor_pty[0])
    try:
        socks = []
        for st in setups:
            s = st.srv.connect()
            s.settimeout(5)
            # First ping: drains a telnet greeting and makes us a plain client at once.
            s.sendall(b"x")
            buf = b""
            while not buf.endswith(b"x"):
                buf += s.recv(4096)
            socks.append(s)
        samples = [[] for _ in setups]
        floor = []
        slave = floor_pty[1]
        for i in range(count + 50):
            for k, s in enumerate(socks):
                t0 = time.perf_counter_ns()
                s.sendall(b"y")
                d = s.recv(1)
                t1 = time.perf_counter_ns()
                if d != b"y":
                    raise RuntimeError(f"{setups[k].srv.name}: echo gave {d!r}")
                if i >= 50:
                    samples[k].append((t1 - t0) / 1000)
            t0 = time.perf_counter_ns()
            os.write(slave, b"y")
            d = os.read(slave, 1)
            t1 = time.perf_counter_ns()
            if i >= 50:
                floor.append((t1 - t0) / 1000)
        for s in socks:
            s.close()
    finally:
        for pid, rep in boards + [floor_board]:
            stop_child(pid)
            os.close(rep)

    def summary(v):
        v.sort()
        return {"p50_us": percentile(v, 50), "p99_us": percentile(v, 99), "mean_us": sum(v) / len(v)}

    return [summary(v) for v in samples], summary(floor)


NOTICE = re.compile(rb"\r\n\[lava-serial: [^\]\r]*\]\r\n")


def strip_notices(st, chunk):
    """Takes lava-serial's notice lines (docs/protocols.md) out of a client's stream: the data
    pattern has no CR, so a CR starts a notice. A notice split across reads is kept pending."""
    text = st["pending"] + chunk
    st["pending"] = b""
    for m in NOTICE.finditer(text):
        # Name-independent sample: "writer attached", "lost 1234 bytes (client too slow)"...
        words = m.group()[2:-3].split(b" ")[2:]
        st["notices"].append(b" ".join(w if not w[:1].isdigit() else b"N" for w in words).decode(errors="replace")[:40])
    text = NOTICE.sub(b"", text)
    cr = text.find(b"\r")
    if cr >= 0 and len(text) - cr < 512:
        st["pending"] = text[cr:]
        text = text[:cr]
    return text


def measure_fanout(srv, master, clients, size, window, timeout=60.0):
    """Board → `clients` clients, `size` bytes each, the board at most `window` bytes ahead of the
    slowest client. Returns aggregate MB/s and per-client checks."""
    socks = [srv.connect() for _ in range(clients)]
    ack_r, ack_w = os.pipe()
    pid, rep = fork_board(board_send, master, size, clients, ack_r, window)
    os.close(ack_r)
    acked = 0
    cpu0 = srv.cpu_seconds()
    state = {}
    ep = select.epoll()
    for s in socks:
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        state[s.fileno()] = {"sock": s, "got": 0, "crc": 0, "skip": len(TELNET_GREETING) if srv.telnet else 0,
                             "notices": [], "pending": b"", "done": False, "extra": 0}
        ep.register(s.fileno(), select.EPOLLIN)
    # Every client speaks first: it is then a plain client at once (no hello wait) and the
    # board starts only when every client's byte went through the server.
    for s in socks:
        s.send(b"g")
    buf = bytearray(1 << 18)
    mv = memoryview(buf)
    t0 = None
    t_end = None
    last_progress = time.monotonic()
    left = clients
    try:
        while left:
            if t0 is None:
                r = read_report(rep, "q", 0) if select.select([rep], [], [], 0)[0] else None
                if r:
                    t0 = r[0]
            events = ep.poll(0.5)
            now = time.monotonic()
            if not events:
                if now - last_progress > 3 or now - last_progress > timeout:
                    break
                continue
            for fd, _ in events:
                st = state[fd]
                try:
                    n = st["sock"].recv_into(buf)
                except BlockingIOError:
                    continue
                if n == 0:
                    ep.unregister(fd)
                    if not st["done"]:
                        st["done"] = True
                        left -= 1
                    continue
                last_progress = now
                chunk = mv[:n]
                if st["skip"]:
                    k = min(st["skip"], n)
                    chunk = chunk[k:]
                    st["skip"] -= k
                if st["pending"] or buf.find(b"\r", n - len(chunk), n) >= 0:
                    chunk = strip_notices(st, bytes(chunk))
                want = size - st["got"]
                take = chunk[:want]
                st["crc"] = zlib.crc32(take, st["crc"])
                st["got"] += len(take)
                st["extra"] += len(chunk) - len(take)
                if st["got"] >= size and not st["done"]:
                    st["done"] = True
                    left -= 1
                    t_end = time.monotonic_ns()
                if st["got"] - acked >= window // 4:
                    low = min(x["got"] for x in state.values())
                    if low - acked >= window // 4:
                        acked = low
                        try:
                            os.write(ack_w, struct.pack("q", acked))
                        except BrokenPipeError:
                            pass  # the board has sent everything
    finally:
        cpu1 = srv.cpu_seconds()
        for s in socks:
            s.close()
        ep.close()
        if t0 is None:
            r = read_report(rep, "q", 1)
            t0 = r[0] if r else None
        stop_child(pid)
        os.close(rep)
        os.close(ack_w)
    want_crc = stream_crc(size)
    complete = sum(1 for st in state.values() if st["got"] == size and st["crc"] == want_crc)
    got_total = sum(st["got"] for st in state.values())
    if t_end is None or t0 is None or complete != clients:
        t_end = t_end or time.monotonic_ns()
    secs = (t_end - t0) / 1e9 if t0 else float("nan")
    return {
        "clients": clients,
        "bytes_per_client": size,
        "complete_clients": complete,
        "lost_bytes": clients * size - got_total,
        "notices": sum(len(st["notices"]) for st in state.values()),
        "notice_samples": sorted({n for st in state.values() for n in st["notices"]})[:5],
        "seconds": secs,
        "aggregate_MBps": got_total / secs / 1e6 if secs == secs and secs > 0 else 0.0,
        "server_cpu_s": cpu1 - cpu0,
    }


def measure_upload(srv, master, size, timeout=60.0):
    """One client → board, `size` bytes."""
    s = srv.connect()
    if srv.telnet:
        # Read the greeting so it is not left unread; we never answer (NVT mode, no CR/0xFF sent).
        s.settimeout(5)
        got = b""
        while len(got) < len(TELNET_GREETING):
            got += s.recv(64)
    pid, rep = fork_board(board_sink, master, size)
    cpu0 = srv.cpu_seconds()
    t0 = time.monotonic_ns()
    s.settimeout(timeout)
    mv = memoryview(BLOCK)
    sent = 0
    try:
        while sent < size:
            off = sent % len(BLOCK)
            n = min(len(BLOCK) - off, size - sent)
            s.sendall(mv[off : off + n])
            sent += n
        r = read_report(rep, "qqI", timeout)
    finally:
        cpu1 = srv.cpu_seconds()
        s.close()
        stop_child(pid)
        os.close(rep)
    if r is None:
        return {"bytes": size, "complete": False, "MBps": 0.0, "server_cpu_s": cpu1 - cpu0}
    t_end, got, crc = r
    secs = (t_end - t0) / 1e9
    return {"bytes": size, "complete": got == size and crc == stream_crc(size), "seconds": secs,
            "MBps": size / secs / 1e6, "server_cpu_s": cpu1 - cpu0}


def pts_watch():
    """An inotify watch on /dev/pts (ptys created/removed by anything on the machine), to tell
    apart wakeups a server causes itself from wakeups caused by its watch on the device's
    directory. Returns a function giving the events seen so far, or None without inotify."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        # IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
        if fd < 0 or libc.inotify_add_watch(fd, b"/dev/pts", 0x4 | 0x40 | 0x80 | 0x100 | 0x200) < 0:
            return None
    except (OSError, AttributeError):
        return None
    count = [0]

    def events():
        while True:
            try:
                d = os.read(fd, 65536)
            except BlockingIOError:
                return count[0]
            off = 0
            while off + 16 <= len(d):
                count[0] += 1
                off += 16 + struct.unpack_from("I", d, off + 12)[0]

    return events


def measure_idle(setups, seconds):
    """Wakeups per second and memory of every server over the same quiet interval, each with one
    client attached and a silent board."""
    socks = []
    for st in setups:
        s = st.srv.connect()
        s.sendall(b"i")  # plain client at once; ser2net opens the device now
        socks.append(s)
    time.sleep(0.5)  # let the connections settle before counting
    pts = pts_watch()
    c0 = [st.srv.ctxt_switches() for st in setups]
    time.sleep(seconds)
    c1 = [st.srv.ctxt_switches() for st in setups]
    pts_events = pts() if pts else None
    out = []
    for st, a, b in zip(setups, c0, c1):
        srv = st.srv
        anon, file = srv.proc_status("RssAnon"), srv.proc_status("RssFile")
        smaps = srv.smaps_rollup()
        out.append({"seconds": seconds, "wakeups_per_s": (b - a) / seconds,
                    "rss_kib": srv.proc_status("VmRSS"), "rss_anon_kib": anon,
                    "rss_file_kib": file, "pss_kib": smaps.get("Pss"),
                    "private_kib": smaps.get("Private_Clean", 0) + smaps.get("Private_Dirty", 0),
                    "per_instance_kib": anon + file / HOST_INSTANCES,
                    "threads": len(os.listdir(f"/proc/{srv.pid}/task")),
                    "dev_pts_events_per_s": pts_events / seconds if pts_events is not None else None})
    for s in socks:
        s.close()
    return out


def measure_attach(setups, runs):
    """Debian's `telnet HOST PORT`, started under a pty as LAVA's dispatcher starts it, until the
    first board byte shows on its terminal; the board writes a byte every millisecond. The servers
    take turns. None when telnet is not installed."""
    import pty
    telnet = shutil.which("telnet")
    if not telnet:
        return None
    boards = [fork_board(board_ticker, st.master) for st in setups]
    samples = [[] for _ in setups]
    try:
        for _ in range(runs):
            for k, st in enumerate(setups):
                t0 = time.monotonic()
                pid, fd = pty.fork()
                if pid == 0:
                    os.execv(telnet, ["telnet", "127.0.0.1", str(st.srv.port)])
                buf = b""
                try:
                    while True:
                        if not select.select([fd], [], [], 5)[0]:
                            break
                        try:
                            buf += os.read(fd, 4096)
                        except OSError:
                            break
                        after = buf.split(b"Escape character is '^]'.", 1)
                        if len(after) == 2 and b"B" in after[1]:
                            samples[k].append((time.monotonic() - t0) * 1000)
                            break
                finally:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    os.close(fd)
                time.sleep(0.05)
    finally:
        for pid, rep in boards:
            stop_child(pid)
            os.close(rep)
    out = []
    for v in samples:
        v.sort()
        out.append({"runs": len(v), "p50_ms": percentile(v, 50), "max_ms": v[-1] if v else float("nan")})
    return out


def flush_pty(slave):
    termios.tcflush(slave, termios.TCIOFLUSH)


class Setup:
    """One server under test on its own pty."""

    def __init__(self, make, workdir):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.tty = os.ttyname(self.slave)
        self.srv, argv, cfg = make(self.tty, workdir)
        self.res = {"name": self.srv.name, "argv": argv}
        if cfg:
            with open(cfg) as f:
                self.res["config"] = f.read()
        print(f"== {self.srv.name}: pid {self.srv.pid}, port {self.srv.port}, {self.tty}", flush=True)

    def close(self):
        self.srv.stop()
        os.close(self.master)
        os.close(self.slave)


def complete(r):
    return r.get("complete", r.get("complete_clients") == r.get("clients"))


def interleaved_best(setups, runs, measure, key, size, target_s=1.0, max_size=256 << 20):
    """The best of `runs` runs of measure(setup, size) per server, the servers taking turns (the
    machine may be shared: the best run is the least disturbed one); a run that lost bytes is
    never preferred to a complete one; every run is kept. A first run shorter than half of
    `target_s` is a pilot: that server's size is scaled so its runs last about `target_s`."""
    sizes, all_runs = [], []
    for st in setups:
        flush_pty(st.slave)
        first = measure(st, size)
        secs = first.get("seconds", 0)
        if complete(first) and secs and secs == secs and secs < target_s / 2:
            sizes.append(min(max_size, int(size * target_s / max(secs, 1e-3))))
            all_runs.append([])
        else:
            sizes.append(size)
            all_runs.append([first])
    for _ in range(runs):
        for st, sz, rs in zip(setups, sizes, all_runs):
            if len(rs) < runs:
                flush_pty(st.slave)
                rs.append(measure(st, sz))
    out = []
    for rs in all_runs:
        best = max(rs, key=lambda r: (complete(r), r[key]))
        out.append(dict(best, runs=[round(r[key], 2) for r in rs]))
    return out


def run_all(makers, args, workdir):
    setups = []
    floor_pty = os.openpty()
    tty.setraw(floor_pty[1])
    try:
        for make in makers:
            setups.append(Setup(make, workdir))
        for st in setups:
            st.res["rss_start_kib"] = st.srv.proc_status("VmRSS")
        rtts, floor = measure_rtt(setups, floor_pty, args.rtt_count)
        for st, r in zip(setups, rtts):
            st.res["rtt"] = r
        print(f"   rtt: " + ", ".join(f"{st.srv.name} {st.res['rtt']['p50_us']:.0f} µs" for st in setups)
              + f", pty alone {floor['p50_us']:.0f} µs", flush=True)
        window = args.window_kib << 10
        for st, r in zip(setups, interleaved_best(
                setups, args.runs, lambda st, size: measure_fanout(st.srv, st.master, 1, size, window),
                "aggregate_MBps", args.bulk_mb << 20)):
            st.res["down"] = r
            print(f"   board->client {st.srv.name}: {r}", flush=True)
        for st, r in zip(setups, interleaved_best(
                setups, args.runs, lambda st, size: measure_upload(st.srv, st.master, size),
                "MBps", args.bulk_mb << 20)):
            st.res["up"] = r
            print(f"   client->board {st.srv.name}: {r}", flush=True)
        for st in setups:
            st.res["fanout"] = []
        for n in (1, 8, 32):
            for st, r in zip(setups, interleaved_best(
                    setups, args.runs,
                    lambda st, size: measure_fanout(st.srv, st.master, n, size, window),
                    "aggregate_MBps", max(64 << 10, (args.fanout_mb << 20) // n), max_size=(1 << 30) // n)):
                st.res["fanout"].append(r)
                print(f"   fan-out {st.srv.name}: {r}", flush=True)
        attach = measure_attach(setups, args.attach_runs)
        for st, r in zip(setups, attach or [None] * len(setups)):
            st.res["attach"] = r
        print("   telnet attach: " + (", ".join(f"{st.srv.name} {st.res['attach']['p50_ms']:.1f} ms" for st in setups)
                                      if attach else "telnet not installed (apt-get install telnet)"), flush=True)
        for st, r in zip(setups, measure_idle(setups, args.idle_seconds)):
            st.res["idle"] = r
            print(f"   idle {st.srv.name}: {r}", flush=True)
        for st in setups:
            st.res["hwm_kib"] = st.srv.proc_status("VmHWM")
            # Peak anonymous memory ~ VmHWM less the file-backed pages (mapped at start, stable).
            file = st.srv.proc_status("RssFile")
            st.res["peak_per_instance_kib"] = st.res["hwm_kib"] - file + file / HOST_INSTANCES
    finally:
        for st in setups:
            st.close()
        os.close(floor_pty[0])
        os.close(floor_pty[1])
    return [st.res for st in setups], floor


def ratio(a, b):
    return a / b if b else float("inf")


def markdown(results, floor, args):
    by = {r["name"]: r for r in results}
    lines = []
    lines.append("| | " + " | ".join(by) + " |")
    lines.append("|---|" + "---|" * len(by))

    def row(label, f):
        vals = []
        for r in by.values():
            try:
                vals.append(f(r))
            except (KeyError, IndexError, TypeError):
                vals.append("–")
        lines.append(f"| {label} | " + " | ".join(vals) + " |")

    row("RTT p50 (µs)", lambda r: f"{r['rtt']['p50_us']:.0f}")
    row("RTT p99 (µs)", lambda r: f"{r['rtt']['p99_us']:.0f}")
    row("board → client (MB/s)", lambda r: f"{r['down']['aggregate_MBps']:.1f}" + ("" if r['down']['complete_clients'] == 1 else " ⚠ incomplete"))
    row("client → board (MB/s)", lambda r: f"{r['up']['MBps']:.1f}" + ("" if r['up']['complete'] else " ⚠ incomplete"))
    for i, n in enumerate((1, 8, 32)):
        row(f"fan-out {n}: aggregate MB/s (complete clients)",
            lambda r, i=i: f"{r['fanout'][i]['aggregate_MBps']:.1f} ({r['fanout'][i]['complete_clients']}/{r['fanout'][i]['clients']})")
    row(f"telnet attach → first board byte, p50 (ms, {args.attach_runs} runs)",
        lambda r: f"{r['attach']['p50_ms']:.1f}")
    row("server CPU s, fan-out 32", lambda r: f"{r['fanout'][2]['server_cpu_s']:.2f}")
    row(f"idle wakeups/s (1 client, {args.idle_seconds} s)", lambda r: f"{r['idle']['wakeups_per_s']:.1f}")
    row("… /dev/pts events/s meanwhile (other processes' ptys)", lambda r: f"{r['idle']['dev_pts_events_per_s']:.1f}")
    row("threads", lambda r: f"{r['idle']['threads']}")
    row("VmRSS idle (KiB)", lambda r: f"{r['idle']['rss_kib']}")
    row("… of which anonymous / file-backed (KiB)", lambda r: f"{r['idle']['rss_anon_kib']} / {r['idle']['rss_file_kib']}")
    row("Pss idle (KiB; one instance, so the binary's pages count whole)", lambda r: f"{r['idle']['pss_kib']}")
    row("VmHWM after fan-out 32 (KiB)", lambda r: f"{r['hwm_kib']}")
    row(f"per instance of {HOST_INSTANCES}: anonymous + file-backed/{HOST_INSTANCES}, idle / peak (KiB)",
        lambda r: f"{r['idle']['per_instance_kib']:.0f} / {r['peak_per_instance_kib']:.0f}")
    out = "\n".join(lines)
    out += f"\n\npty alone (no server), RTT p50 {floor['p50_us']:.0f} µs, p99 {floor['p99_us']:.0f} µs.\n"

    lava = [r for r in results if r["name"].startswith("lava-serial raw")]
    dflt, tuned = by.get("ser2net default"), by.get("ser2net tuned")
    if lava and dflt and tuned:
        l = lava[0]
        checks = [
            ("RTT p50 ≤ 1/20 of ser2net default", l["rtt"]["p50_us"] <= dflt["rtt"]["p50_us"] / 20,
             f"ser2net/lava-serial = {ratio(dflt['rtt']['p50_us'], l['rtt']['p50_us']):.1f} (≥ 20 needed)"),
            ("RTT p50 ≤ ser2net tuned", l["rtt"]["p50_us"] <= tuned["rtt"]["p50_us"],
             f"ser2net/lava-serial = {ratio(tuned['rtt']['p50_us'], l['rtt']['p50_us']):.2f} (≥ 1 needed)"),
            ("bulk board→client ≥ 3× ser2net default",
             l["down"]["aggregate_MBps"] >= 3 * dflt["down"]["aggregate_MBps"] and l["down"]["complete_clients"] == 1,
             f"{ratio(l['down']['aggregate_MBps'], dflt['down']['aggregate_MBps']):.1f}×"),
            ("bulk client→board ≥ 3× ser2net default",
             l["up"]["MBps"] >= 3 * dflt["up"]["MBps"] and l["up"]["complete"],
             f"{ratio(l['up']['MBps'], dflt['up']['MBps']):.1f}×"),
            ("fan-out 32 aggregate ≥ 3× ser2net default, every client every byte",
             l["fanout"][2]["aggregate_MBps"] >= 3 * dflt["fanout"][2]["aggregate_MBps"]
             and l["fanout"][2]["complete_clients"] == 32,
             f"{ratio(l['fanout'][2]['aggregate_MBps'], dflt['fanout'][2]['aggregate_MBps']):.1f}×"),
            ("0 idle wakeups/s", l["idle"]["wakeups_per_s"] == 0, f"{l['idle']['wakeups_per_s']:.1f}/s"),
            (f"RSS ≤ 3 MB per instance (of {HOST_INSTANCES} on a host), idle and peak",
             l["idle"]["per_instance_kib"] <= 3 * 1024 and l["peak_per_instance_kib"] <= 3 * 1024,
             f"{l['idle']['per_instance_kib']:.0f} KiB idle, {l['peak_per_instance_kib']:.0f} KiB peak "
             f"(VmRSS {l['idle']['rss_kib']} idle, {l['hwm_kib']} peak)"),
        ]
        out += "\n| target (lava-serial raw vs ser2net, same run) | result | met |\n|---|---|---|\n"
        for label, ok, what in checks:
            out += f"| {label} | {what} | {'yes' if ok else '**no**'} |\n"
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lava-serial", help="lava-serial binary (release build)")
    ap.add_argument("--ser2net", default=shutil.which("ser2net") or "/usr/sbin/ser2net")
    ap.add_argument("--only", default="", help="comma list: ser2net-default,ser2net-tuned,lava-raw,lava-telnet")
    ap.add_argument("--rtt-count", type=int, default=2000)
    ap.add_argument("--bulk-mb", type=int, default=4, help="MiB of the first bulk run (scaled to last ~1 s)")
    ap.add_argument("--fanout-mb", type=int, default=4,
                    help="MiB sent through the server per fan-out run, split between the clients")
    ap.add_argument("--window-kib", type=int, default=256,
                    help="board → clients: bytes the board may be ahead of the slowest client")
    ap.add_argument("--runs", type=int, default=3, help="bulk and fan-out runs, the best is reported")
    ap.add_argument("--idle-seconds", type=float, default=10)
    ap.add_argument("--attach-runs", type=int, default=10,
                    help="Debian telnet attach → first board byte, runs per server")
    ap.add_argument("--json", help="write the raw results here")
    ap.add_argument("--markdown", help="write the results table here")
    args = ap.parse_args()

    makers = {
        "ser2net-default": lambda p, w: ser2net_server(args.ser2net, p, False, w),
        "ser2net-tuned": lambda p, w: ser2net_server(args.ser2net, p, True, w),
    }
    if args.lava_serial:
        makers["lava-raw"] = lambda p, w: lava_server(args.lava_serial, p, "raw")
        makers["lava-telnet"] = lambda p, w: lava_server(args.lava_serial, p, "telnet")
    chosen = [k for k in makers if not args.only or k in args.only.split(",")]

    started = time.time()
    with tempfile.TemporaryDirectory() as workdir:
        results, floor = run_all([makers[k] for k in chosen], args, workdir)

    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": f"{platform.node()}, {platform.machine()}, {os.cpu_count()} CPUs, "
                   f"{cpu_model()}, Linux {platform.release()}",
        "ser2net": subprocess.run([args.ser2net, "-v"], capture_output=True, text=True).stdout.strip(),
        "python": platform.python_version(),
        "seconds": round(time.time() - started, 1),
        "args": vars(args),
    }
    table = markdown(results, floor, args)
    print()
    print(f"{meta['date']} — {meta['machine']} — {meta['ser2net']} — {meta['seconds']} s")
    print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "floor": floor, "results": results}, f, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(f"{meta['date']} — {meta['machine']} — {meta['ser2net']} — run took {meta['seconds']} s\n\n")
            f.write(table)
    return 0


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
