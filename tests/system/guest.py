"""Drives a QEMU guest for the system test: boots it, talks QMP (hotplug USB adapters, reset) and
the guest agent (run commands, read their output), all over unix sockets in a private directory."""

import base64
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


class GuestError(RuntimeError):
    """Something the guest or QEMU did not do."""


class JsonChannel:
    """One JSON-lines conversation over a unix socket (QMP or the guest agent)."""

    def __init__(self, path: Path, timeout: float):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.buf = b""

    def send(self, obj) -> None:
        self.sock.sendall(json.dumps(obj).encode() + b"\n")

    def recv(self, timeout: float):
        self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise GuestError("channel closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        line = line.strip().lstrip(b"\xff")
        if not line:
            return self.recv(timeout)
        return json.loads(line)

    def close(self) -> None:
        self.sock.close()


class Qmp:
    """QEMU's monitor: device hotplug and resets."""

    def __init__(self, path: Path):
        self.ch = JsonChannel(path, 10)
        self.ch.recv(10)  # greeting
        self.events = []
        self.cmd("qmp_capabilities")

    def cmd(self, name: str, **args):
        self.ch.send({"execute": name, "arguments": args} if args else {"execute": name})
        while True:
            msg = self.ch.recv(30)
            if "event" in msg:
                self.events.append(msg)
                continue
            if "error" in msg:
                raise GuestError(f"QMP {name}: {msg['error'].get('desc')}")
            return msg.get("return")


class Agent:
    """qemu-guest-agent: commands in the guest. Reconnects across guest reboots."""

    def __init__(self, path: Path):
        self.path = path
        self.ch = None

    def connect(self, deadline: float) -> None:
        """Waits until the agent answers a sync (the guest has booted far enough)."""
        while True:
            try:
                if self.ch is None:
                    self.ch = JsonChannel(self.path, 2)
                token = int(time.time() * 1000) % 2**31
                self.ch.sock.sendall(b"\xff")
                self.ch.send({"execute": "guest-sync-delimited", "arguments": {"id": token}})
                while True:
                    msg = self.ch.recv(2)
                    if msg.get("return") == token:
                        return
            except (OSError, GuestError, json.JSONDecodeError):
                if self.ch is not None:
                    self.ch.close()
                    self.ch = None
                if time.monotonic() > deadline:
                    raise GuestError("the guest agent did not answer")
                time.sleep(0.5)

    def disconnect(self) -> None:
        if self.ch is not None:
            self.ch.close()
            self.ch = None

    def call(self, name: str, timeout: float = 30, **args):
        self.ch.send({"execute": name, "arguments": args})
        msg = self.ch.recv(timeout)
        if "error" in msg:
            raise GuestError(f"guest agent {name}: {msg['error'].get('desc')}")
        return msg.get("return")

    def run(self, script: str, timeout: float = 60, check: bool = True):
        """Runs a shell script in the guest; returns (exit code, stdout, stderr)."""
        if self.ch is None:
            self.connect(time.monotonic() + timeout)
        try:
            return self._run(script, timeout, check)
        except (OSError, ValueError):
            # A half-read answer would desynchronise the channel: the next call syncs again.
            self.disconnect()
            raise

    def _run(self, script: str, timeout: float, check: bool):
        pid = self.call("guest-exec", path="/bin/sh", arg=["-c", script],
                        **{"capture-output": True})["pid"]
        deadline = time.monotonic() + timeout
        while True:
            st = self.call("guest-exec-status", pid=pid)
            if st.get("exited"):
                break
            if time.monotonic() > deadline:
                raise GuestError(f"guest command timed out: {script}")
            time.sleep(0.1)
        out = base64.b64decode(st.get("out-data", "")).decode(errors="replace")
        err = base64.b64decode(st.get("err-data", "")).decode(errors="replace")
        code = st.get("exitcode", -1)
        if check and code != 0:
            raise GuestError(f"guest command failed ({code}): {script}\n{out}{err}")
        return code, out, err


class Guest:
    """A QEMU process running the test image, with its sockets and forwarded ports."""

    def __init__(self, image, workdir: Path, share: Path, forwards: dict, log, extra_forwards=()):
        self.image = image
        self.dir = workdir
        self.share = share
        self.forwards = forwards  # guest port -> host port on 127.0.0.1
        self.extra_forwards = list(extra_forwards)  # (host address, host port, guest port)
        self.log = log
        self.proc = None
        self.qmp = None
        self.agent = Agent(workdir / "qga.sock")

    def kvm_usable(self) -> bool:
        if not os.access("/dev/kvm", os.R_OK | os.W_OK):
            return False
        flags = Path("/proc/cpuinfo").read_text()
        return " vmx" in flags or " svm" in flags

    def start(self) -> None:
        qemu = shutil.which("qemu-system-x86_64")
        if qemu is None:
            raise GuestError("qemu-system-x86_64 not found: install the Debian package qemu-system-x86")
        fwd = "".join(f",hostfwd=tcp:127.0.0.1:{h}-:{g}" for g, h in self.forwards.items())
        fwd += "".join(f",hostfwd=tcp:{a}:{h}-:{g}" for a, h, g in self.extra_forwards)
        accel = ["-accel", "kvm", "-cpu", "host"] if self.kvm_usable() else ["-accel", "tcg", "-cpu", "max"]
        cmd = [qemu, "-nodefaults", "-no-user-config", "-display", "none", "-m", "1024", "-smp", "2",
               *accel,
               "-kernel", str(self.image.kernel), "-initrd", str(self.image.initrd),
               "-append", "root=/dev/vda rw net.ifnames=0 console=ttyS0 quiet loglevel=4 systemd.show_status=0 "
                          "mitigations=off tsc=reliable",
               "-drive", f"file={self.image.rootfs},if=virtio,format=raw,snapshot=on,discard=unmap",
               "-netdev", f"user,id=n0,restrict=on{fwd}", "-device", "virtio-net-pci,netdev=n0",
               "-chardev", f"socket,id=qga0,path={self.dir / 'qga.sock'},server=on,wait=off",
               "-device", "virtio-serial-pci",
               "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
               "-virtfs", f"local,path={self.share},mount_tag=host0,security_model=none,readonly=on",
               # A fixed PCI slot: the adapters' udev ID_PATH is pci-0000:00:08.0-usb-0:PORT:1.0.
               "-device", "qemu-xhci,id=xhci,addr=0x8,p2=8,p3=8",
               "-serial", f"file:{self.dir / 'console.log'}",
               "-qmp", f"unix:{self.dir / 'qmp.sock'},server=on,wait=off"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=open(self.dir / "qemu.log", "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not (self.dir / "qmp.sock").exists():
            if self.proc.poll() is not None:
                raise GuestError(f"qemu exited: {(self.dir / 'qemu.log').read_text()}")
            if time.monotonic() > deadline:
                raise GuestError("qemu did not create its monitor socket")
            time.sleep(0.05)
        self.qmp = Qmp(self.dir / "qmp.sock")

    def wait_booted(self, timeout: float = 120) -> None:
        self.agent.connect(time.monotonic() + timeout)

    def run(self, script: str, **kw):
        return self.agent.run(script, **kw)

    def plug(self, dev_id: str, serial: str, board_sock: Path, port: str = None) -> None:
        """Adds an emulated FTDI adapter whose wire is the host's listening socket board_sock,
        on the given xhci port when given (its udev ID_PATH then is known in advance)."""
        self.qmp.cmd("chardev-add", id=f"c-{dev_id}", backend={
            "type": "socket", "data": {"addr": {"type": "unix", "data": {"path": str(board_sock)}},
                                       "server": False}})
        where = {"port": port} if port else {}
        self.qmp.cmd("device_add", driver="usb-serial", id=dev_id, chardev=f"c-{dev_id}",
                     serial=serial, bus="xhci.0", **where)

    def unplug(self, dev_id: str, timeout: float = 10) -> None:
        """Removes an adapter and its chardev (waits for the guest to let go of it)."""
        self.qmp.cmd("device_del", id=dev_id)
        deadline = time.monotonic() + timeout
        while True:
            ids = [d.get("data", {}).get("device") for d in self.qmp.events
                   if d.get("event") == "DEVICE_DELETED"]
            if dev_id in ids:
                self.qmp.events = [e for e in self.qmp.events if e.get("data", {}).get("device") != dev_id]
                break
            if time.monotonic() > deadline:
                raise GuestError(f"{dev_id} was not removed")
            self.qmp.cmd("query-status")  # collects pending events
            time.sleep(0.1)
        self.qmp.cmd("chardev-remove", id=f"c-{dev_id}")

    def reboot(self) -> None:
        """Reboots the guest (a clean systemd reboot); the same QEMU process keeps its disk overlay."""
        # guest-exec answers at once with a pid; the agent then goes down with the guest.
        self.agent.call("guest-exec", path="/bin/systemctl", arg=["reboot"])
        if self.agent.ch is not None:
            self.agent.ch.close()
            self.agent.ch = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.qmp.cmd("quit")
            except (GuestError, OSError):
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
