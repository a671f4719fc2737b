"""The guest image of the system test: a minimal Debian bookworm built with mmdebstrap, cached in
build/system/ under the hash of its inputs (this file's recipe), so a rerun boots at once."""

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SUITE = "bookworm"
# What the guest needs: an init and udev to test against, a kernel with ftdi_sio/usbserial/xhci, the
# guest agent the test drives it through. Nothing else: the suite's package brings its own parts.
PACKAGES = [
    "systemd-sysv", "udev", "kmod", "linux-image-amd64", "initramfs-tools",
    "qemu-guest-agent", "iproute2",
]
# Excluded from the image to keep it small and its build fast.
EXCLUDES = ["/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*",
            "/lib/firmware/*", "/usr/lib/firmware/*"]

# Run before the kernel is installed: an initrd with just what mounts the root disk boots faster
# under TCG than Debian's "most modules" one (35 MB).
ESSENTIAL = r"""
set -e
mkdir -p "$1/etc/initramfs-tools/conf.d"
echo MODULES=list > "$1/etc/initramfs-tools/conf.d/lava-guest.conf"
printf 'virtio_pci\nvirtio_blk\next4\n' >> "$1/etc/initramfs-tools/modules"
"""

# Run in the image after the packages are unpacked ($1 = the root directory).
CUSTOMIZE = r"""
set -e
R="$1"
echo lava-guest > "$R/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 lava-guest\n' > "$R/etc/hosts"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' > "$R/etc/fstab"
# Static address on QEMU's user network (eth0: the kernel runs with net.ifnames=0), set by a oneshot
# unit: no DHCP, no networkd (which waits for D-Bus that minbase has not).
cat > "$R/etc/systemd/system/guest-net.service" <<'NET'
[Unit]
Description=Static address on QEMU's user network
BindsTo=sys-subsystem-net-devices-eth0.device
After=sys-subsystem-net-devices-eth0.device
Before=network.target network-online.target
Wants=network.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/sbin/ip link set lo up
ExecStart=/sbin/ip link set eth0 up
ExecStart=/sbin/ip addr add 10.0.2.15/24 dev eth0
ExecStart=/sbin/ip route add default via 10.0.2.2
[Install]
WantedBy=multi-user.target
NET
chroot "$R" systemctl enable guest-net.service
# Quiet, fast boot: no timers, no getty on the serial console, no waiting for the network.
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
         systemd-networkd.service systemd-networkd-wait-online.service getty@tty1.service \
         getty-static.service; do
  chroot "$R" systemctl mask "$u" >/dev/null 2>&1 || true
done
chroot "$R" passwd -d root >/dev/null
# The guest agent is started by udev when its virtio port shows up; make it also a boot dependency.
mkdir -p "$R/etc/systemd/system/multi-user.target.wants"
mkdir -p "$R/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' > "$R/etc/systemd/journald.conf.d/volatile.conf"
mkdir -p "$R/mnt/host"
"""


def recipe_hash() -> str:
    """Hash of everything the image is built from, so a changed recipe rebuilds it."""
    h = hashlib.sha256()
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:16]


class Image:
    """The built image's files: root filesystem (raw ext4), kernel and initrd."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.rootfs = directory / "rootfs.ext4"
        self.kernel = directory / "vmlinuz"
        self.initrd = directory / "initrd.img"

    def exists(self) -> bool:
        return self.rootfs.exists() and self.kernel.exists() and self.initrd.exists()


def ensure_image(cache: Path, log) -> Image:
    """Returns the cached image for the current recipe, building it first when absent."""
    img = Image(cache / f"image-{recipe_hash()}")
    if img.exists():
        log(f"image cached: {img.dir}")
        return img
    for tool, pkg in (("mmdebstrap", "mmdebstrap"), ("mkfs.ext4", "e2fsprogs")):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} not found: install the Debian package {pkg}")
    cache.mkdir(parents=True, exist_ok=True)
    for old in [*cache.glob("image-*"), *cache.glob("tmp-*")]:
        shutil.rmtree(old, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix="tmp-", dir=cache))
    root = tmp / "root"
    hook = tmp / "customize.sh"
    hook.write_text(CUSTOMIZE)
    essential = tmp / "essential.sh"
    essential.write_text(ESSENTIAL)
    # Downloaded packages are kept between builds (a changed recipe does not download again).
    debs = cache / "debs"
    debs.mkdir(exist_ok=True)
    cmd = ["mmdebstrap", "--mode=root", "--variant=minbase", "--format=directory",
           "--include=" + ",".join(PACKAGES),
           "--essential-hook=sh " + str(essential) + ' "$1"',
           '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
           f"--setup-hook=sync-in {debs} /var/cache/apt/archives/",
           "--customize-hook=sh " + str(hook) + ' "$1"',
           f"--customize-hook=sync-out /var/cache/apt/archives {debs}",
           "--skip=download/empty"]
    cmd += [f"--dpkgopt=path-exclude={p}" for p in EXCLUDES]
    cmd += [SUITE, str(root)]
    with open(tmp / "mmdebstrap.log", "w") as out:
        r = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise RuntimeError(f"mmdebstrap failed, see {tmp / 'mmdebstrap.log'}")
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    initrds = sorted((root / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise RuntimeError("no kernel or initrd in the image")
    shutil.copy(kernels[-1], tmp / "vmlinuz")
    shutil.copy(initrds[-1], tmp / "initrd.img")
    # No journal and no lazy inode-table init: the guest's disk is a throwaway overlay
    # (snapshot=on), and under TCG a journal replay or the lazy-init thread costs seconds per boot.
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "lava-guest", "-O", "^has_journal",
                    "-E", "lazy_itable_init=0,lazy_journal_init=0", "-d", str(root),
                    str(tmp / "rootfs.ext4"), "1536M"], check=True, stdout=subprocess.DEVNULL)
    shutil.rmtree(root)
    tmp.rename(img.dir)
    return img
