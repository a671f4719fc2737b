//! Knowing when a board's device is there: inotify on a `--device` path's directories, or a udev
//! monitor on the registry's adapter identity. Event-driven only: while idle, nothing here wakes
//! the process (no polling loop, no timer); the only timer is the short bounded retry in
//! [`Watcher::open`] right after a device appeared.
//!
//! Cheap on the data path: [`Watcher::vanished`] sits in the port's `select!` and is polled on
//! every turn, so it looks at the filesystem (or the udev database) only after an event arrived,
//! never on a turn that only moved bytes. While the device is present, its own node is watched,
//! not the node's directory, so other ttys coming and going in `/dev` or `/dev/pts` wake no one.

use std::collections::HashMap;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use lava_common::SerialSettings;
use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::device::{register, Device, DeviceError};

/// Where udevd's control socket lives: present if and only if udevd runs on this machine.
pub const UDEV_CONTROL: &str = "/run/udev/control";
/// Where our udev rule links each known adapter (`/dev/lava/BOARD`), used to watch an adapter
/// when no udevd runs (containers, CI).
pub const LAVA_DEV_DIR: &str = "/dev/lava";

/// How many times, at most, [`Watcher::open`] tries a node that just appeared but cannot be opened
/// yet (udev still setting its permissions), and the first pause between tries (doubling: 5, 10,
/// 20, 40 ms: 75 ms in all) before it waits for the next event instead.
const OPEN_TRIES: u32 = 5;
const OPEN_FIRST_PAUSE: Duration = Duration::from_millis(5);

/// What identifies a board's device, whatever node the kernel gives it this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// `--device PATH`: the identity is the path (often a symlink: /dev/serial/by-id/...,
    /// /dev/lava/BOARD, or a symlink to a pty in tests). Watched with inotify on every directory
    /// of its symlink chain and of its final target; a directory that does not exist yet is
    /// watched through its nearest existing ancestor, descending as it appears.
    Path(PathBuf),
    /// `lava-serial BOARD`: the registry's adapter, matched on the udev properties of `tty`
    /// devices (`ID_SERIAL`/`ID_SERIAL_SHORT`/`ID_USB_INTERFACE_NUM` or `ID_PATH`) and watched
    /// with a udev monitor. Where no udevd runs (`/run/udev/control` absent: containers, CI),
    /// there is no udev database to match against, so it falls back to the path our udev rule
    /// would create, `/dev/lava/BOARD`, watched as [`Identity::Path`].
    Adapter {
        board: String,
        adapter: lava_common::Adapter,
    },
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Path(p) => write!(f, "{}", p.display()),
            Identity::Adapter { board, adapter } => write!(f, "{board} adapter ({adapter})"),
        }
    }
}

/// Why watching failed (the watcher itself; a device that is absent is not an error).
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {} with inotify: {source}", path.display())]
    Inotify {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot monitor udev for tty devices: {0}")]
    Udev(#[source] std::io::Error),
    #[error(transparent)]
    Open(#[from] DeviceError),
}

/// One device node as found at one moment: the node's path and which inode it was, so a node
/// removed and created again under the same name (a re-plugged ttyUSB0) counts as a change.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    path: PathBuf,
    dev: u64,
    ino: u64,
    rdev: u64,
    /// Birth time, where the filesystem keeps one: inode numbers are reused at once on
    /// tmpfs/devtmpfs, so a node re-created under the same name may get the same number.
    born: Option<std::time::SystemTime>,
}

impl Node {
    /// The node `path` leads to now (following symlinks), if any.
    fn resolve(path: &Path) -> Option<Node> {
        let real = std::fs::canonicalize(path).ok()?;
        let meta = std::fs::metadata(&real).ok()?;
        Some(Node {
            path: real,
            dev: meta.dev(),
            ino: meta.ino(),
            rdev: meta.rdev(),
            born: meta.created().ok(),
        })
    }
}

/// Watches one identity and says when its device node appears and vanishes.
#[derive(Debug)]
pub struct Watcher {
    identity: Identity,
    source: Source,
    /// The node last handed out (by `appeared` or `current`): `vanished` waits for it to go.
    handed: Mutex<Option<Node>>,
    /// Whether something may have changed since `vanished` last compared the identity with
    /// `handed`: set by every event read and whenever `handed` is replaced.
    dirty: bool,
}

#[derive(Debug)]
enum Source {
    Path(PathWatch),
    Udev(UdevWatch),
}

impl Watcher {
    /// Starts watching `identity`. Must be called inside a tokio runtime.
    pub fn new(identity: Identity) -> Result<Watcher, WatchError> {
        Watcher::with_roots(identity, Path::new(UDEV_CONTROL), Path::new(LAVA_DEV_DIR))
    }

    /// [`Watcher::new`] with the udev control socket and the `/dev/lava` directory elsewhere
    /// (tests).
    fn with_roots(
        identity: Identity,
        control: &Path,
        lava_dir: &Path,
    ) -> Result<Watcher, WatchError> {
        let source = match &identity {
            Identity::Path(p) => Source::Path(PathWatch::new(p)?),
            Identity::Adapter { board, adapter } => {
                if control.exists() {
                    Source::Udev(UdevWatch::new(adapter.clone())?)
                } else {
                    let path = lava_dir.join(board);
                    tracing::info!(
                        board = %board,
                        path = %path.display(),
                        "no udevd running ({} absent): watching the udev rule's link instead",
                        control.display()
                    );
                    Source::Path(PathWatch::new(&path)?)
                }
            }
        };
        Ok(Watcher {
            identity,
            source,
            handed: Mutex::new(None),
            dirty: true,
        })
    }

    /// What is being watched.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    fn find(&self) -> Option<Node> {
        match &self.source {
            Source::Path(w) => Node::resolve(&w.path),
            Source::Udev(w) => w.find(),
        }
    }

    fn handed(&self) -> std::sync::MutexGuard<'_, Option<Node>> {
        // A poisoned lock only means a panic elsewhere while holding a plain value: keep it.
        self.handed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The device node to open now, if the identity is present: for a path, where it leads
    /// (symlinks followed); for an adapter, the devnode of the matching tty. The node returned
    /// becomes the one [`Watcher::vanished`] watches (call it right before opening, not while
    /// serving an open device).
    pub fn current(&mut self) -> Option<PathBuf> {
        self.dirty = true;
        let node = self.find()?;
        let path = node.path.clone();
        *self.handed() = Some(node);
        Some(path)
    }

    /// Waits until the identity is present (at once if it is) and returns the node to open.
    /// Cancel-safe: dropping it loses nothing, the next call looks at the state afresh.
    pub async fn appeared(&mut self) -> Result<PathBuf, WatchError> {
        loop {
            self.dirty = true;
            self.rearm()?;
            if let Some(node) = self.find() {
                let path = node.path.clone();
                *self.handed() = Some(node);
                return Ok(path);
            }
            self.next_event().await?;
        }
    }

    /// Waits until the node last handed out is gone: removed, its symlink deleted or re-pointed
    /// elsewhere, or (udev) the adapter removed. With nothing handed out yet, the node present at
    /// the call is the one watched (and if none is, it returns at once). Cancel-safe, and cheap
    /// to create and drop on every turn of a loop: the identity is resolved again only after an
    /// event (no system call at all otherwise).
    pub async fn vanished(&mut self) -> Result<(), WatchError> {
        loop {
            if !self.dirty {
                self.next_event().await?;
                continue;
            }
            self.rearm()?;
            // Cleared before looking, so an event read after this point sets it again.
            self.dirty = false;
            let now = self.find();
            let gone = {
                let mut handed = self.handed();
                let gone = match (&*handed, &now) {
                    (Some(was), Some(now)) => was != now,
                    (None, Some(now)) => {
                        *handed = Some(now.clone());
                        false
                    }
                    (_, None) => true,
                };
                if gone {
                    *handed = None;
                }
                gone
            };
            if gone {
                self.dirty = true;
                return Ok(());
            }
            self.next_event().await?;
        }
    }

    /// Waits until the identity is present and opens it, retrying briefly when the node exists
    /// but cannot be opened yet (EACCES/EPERM/ENOENT/ENXIO right after a udev event: permissions
    /// or the driver not ready): up to 5 tries within ~75 ms, then it waits for the next event
    /// about the device (udev's chmod is one) and tries again. Other errors come back at once.
    /// Cancel-safe.
    pub async fn open(&mut self, settings: &SerialSettings) -> Result<Device, WatchError> {
        loop {
            let node = self.appeared().await?;
            let mut pause = OPEN_FIRST_PAUSE;
            let mut last = None;
            for attempt in 1..=OPEN_TRIES {
                match Device::open(&node, settings) {
                    Ok(dev) => return Ok(dev),
                    Err(e) if e.raw_os_error().is_some_and(not_ready_yet) => {
                        tracing::debug!(node = %node.display(), attempt, error = %e, "device not ready yet");
                        last = Some(e);
                        if attempt < OPEN_TRIES {
                            tokio::time::sleep(pause).await;
                            pause *= 2;
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if let Some(e) = last {
                tracing::warn!(
                    identity = %self.identity,
                    error = %e,
                    "device present but cannot be opened; waiting for it to change"
                );
            }
            self.rearm()?;
            self.next_event().await?;
        }
    }

    /// Makes sure the watches cover what the identity depends on now.
    fn rearm(&mut self) -> Result<(), WatchError> {
        match &mut self.source {
            Source::Path(w) => w.rearm(),
            Source::Udev(_) => Ok(()),
        }
    }

    /// Waits for the next batch of events (their content does not matter: the state is looked
    /// at afresh after each) and marks the state as worth looking at again. Cancel-safe: events
    /// are read (and `dirty` set) with no await in between.
    async fn next_event(&mut self) -> Result<(), WatchError> {
        let r = match &mut self.source {
            Source::Path(w) => w.next_event().await,
            Source::Udev(w) => w.next_event().await,
        };
        self.dirty = true;
        r
    }
}

/// Errors from opening a node that just appeared that mean "not yet", not "never".
fn not_ready_yet(errno: i32) -> bool {
    matches!(
        Errno::from_raw(errno),
        Errno::EACCES | Errno::EPERM | Errno::ENOENT | Errno::ENXIO
    )
}

/// nix's inotify handle, given the `AsRawFd` tokio's reactor needs.
#[derive(Debug)]
struct InotifyFd(Inotify);

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// A path identity watched through inotify: the directories its resolution goes through, and the
/// device node itself once it exists.
#[derive(Debug)]
struct PathWatch {
    path: PathBuf,
    fd: AsyncFd<InotifyFd>,
    watches: HashMap<PathBuf, (WatchDescriptor, Kind)>,
}

/// What one inotify watch is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A directory whose entries decide where a name leads (a symlink's directory, or the
    /// directory a node that is absent will appear in).
    Dir,
    /// The node the path leads to now: only its own unlinking, renaming or attribute changes
    /// wake us, not its neighbours (other ttys in `/dev`, other ptys in `/dev/pts`).
    Node,
}

/// Every event that can change where a name in a watched directory leads.
fn dir_mask() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_ONLYDIR
}

/// Every event that means the node itself went or changed: unlinking a node that is still open
/// (ours is) reports IN_ATTRIB (its link count), the last close IN_DELETE_SELF, a rename
/// IN_MOVE_SELF; udev's chmod/chown is IN_ATTRIB too (looked at, found unchanged).
fn node_mask() -> AddWatchFlags {
    AddWatchFlags::IN_ATTRIB | AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF
}

/// `path` made absolute and with `.`/`..` folded lexically (symlinks are resolved separately,
/// hop by hop).
fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// The nearest directory at or above `dir` that exists.
fn existing_ancestor(dir: &Path) -> PathBuf {
    let mut d = dir.to_owned();
    while !d.is_dir() {
        if !d.pop() {
            return PathBuf::from("/");
        }
    }
    d
}

/// Whether `path` exists and we may read it (what inotify_add_watch needs).
fn readable(path: &Path) -> bool {
    nix::unistd::access(path, nix::unistd::AccessFlags::R_OK).is_ok()
}

/// What decides where `path` leads: the directory of each hop of its symlink chain (a hop's
/// directory itself may be a symlink: resolved through canonicalize), each replaced by its
/// nearest existing ancestor while absent; and at the end of the chain the node itself when it
/// exists, or the directory it will appear in when it does not.
fn watches_wanted(path: &Path) -> Vec<(PathBuf, Kind)> {
    let mut want: Vec<(PathBuf, Kind)> = Vec::new();
    let mut push = |p: PathBuf, k: Kind| {
        if !want.iter().any(|(q, _)| *q == p) {
            want.push((p, k));
        }
    };
    let mut cur = absolute(path);
    for _ in 0..40 {
        let parent = cur
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("/"));
        let dir = std::fs::canonicalize(&parent).unwrap_or_else(|_| existing_ancestor(&parent));
        match std::fs::read_link(&cur) {
            Ok(target) => {
                push(dir.clone(), Kind::Dir);
                cur = absolute(&dir.join(target));
            }
            Err(_) => {
                // A node we may not read yet (udev has not set its group and mode) cannot be
                // watched itself: its directory is, and udev's chmod shows there as IN_ATTRIB.
                match cur.file_name() {
                    Some(name) if readable(&dir.join(name)) => push(dir.join(name), Kind::Node),
                    _ => push(dir, Kind::Dir),
                }
                break;
            }
        }
    }
    want
}

impl PathWatch {
    fn new(path: &Path) -> Result<PathWatch, WatchError> {
        let err = |source: std::io::Error| WatchError::Inotify {
            path: path.to_owned(),
            source,
        };
        let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(|e| err(e.into()))?;
        let fd = register(InotifyFd(ino), Interest::READABLE).map_err(err)?;
        let mut w = PathWatch {
            path: path.to_owned(),
            fd,
            watches: HashMap::new(),
        };
        w.rearm()?;
        Ok(w)
    }

    /// Adds watches for what the path depends on now, drops the others. Watches are added
    /// before the state is looked at, so no change between the two is missed. A node's watch is
    /// added again each time: the same name may be a new inode now (a re-plugged ttyUSB0), and
    /// adding a watch on an inode already watched just gives back its descriptor.
    fn rearm(&mut self) -> Result<(), WatchError> {
        // A directory or node may vanish between listing and watching it: list again (bounded).
        for _ in 0..8 {
            let want = watches_wanted(&self.path);
            let mut raced = false;
            for (path, kind) in &want {
                let old = self.watches.get(path).copied();
                if *kind == Kind::Dir && matches!(old, Some((_, Kind::Dir))) {
                    continue;
                }
                let mask = match kind {
                    Kind::Dir => dir_mask(),
                    Kind::Node => node_mask(),
                };
                match self.fd.get_ref().0.add_watch(path, mask) {
                    Ok(wd) => {
                        if let Some((was, _)) = old {
                            if was != wd {
                                // EINVAL: the kernel already dropped it (node or dir gone).
                                let _ = self.fd.get_ref().0.rm_watch(was);
                            }
                        } else {
                            tracing::trace!(path = %path.display(), ?kind, "watching");
                        }
                        self.watches.insert(path.clone(), (wd, *kind));
                    }
                    // Gone, or (a node) made unreadable, since it was listed: list again.
                    Err(Errno::ENOENT | Errno::ENOTDIR | Errno::EACCES | Errno::EPERM) => {
                        raced = true
                    }
                    Err(e) => {
                        return Err(WatchError::Inotify {
                            path: path.clone(),
                            source: e.into(),
                        })
                    }
                }
            }
            let stale: Vec<PathBuf> = self
                .watches
                .keys()
                .filter(|p| !want.iter().any(|(q, _)| q == *p))
                .cloned()
                .collect();
            for path in stale {
                if let Some((wd, _)) = self.watches.remove(&path) {
                    // EINVAL: the kernel already dropped it (directory deleted).
                    let _ = self.fd.get_ref().0.rm_watch(wd);
                }
            }
            if !raced {
                return Ok(());
            }
        }
        Ok(())
    }

    async fn next_event(&mut self) -> Result<(), WatchError> {
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(|source| WatchError::Inotify {
                    path: self.path.clone(),
                    source,
                })?;
            match guard.try_io(|fd| fd.get_ref().0.read_events().map_err(std::io::Error::from)) {
                Ok(Ok(events)) => {
                    for ev in &events {
                        if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                            // The kernel dropped this watch (its directory went): forget it so
                            // rearm adds it again if the directory comes back.
                            self.watches.retain(|_, (wd, _)| *wd != ev.wd);
                        }
                        tracing::trace!(mask = ?ev.mask, name = ?ev.name, "inotify event");
                    }
                    return Ok(());
                }
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Ok(Err(source)) => {
                    return Err(WatchError::Inotify {
                        path: self.path.clone(),
                        source,
                    })
                }
                Err(_would_block) => {}
            }
        }
    }
}

/// An adapter identity watched through a udev monitor on the `tty` subsystem.
struct UdevWatch {
    adapter: lava_common::Adapter,
    socket: AsyncFd<udev::MonitorSocket>,
}

impl fmt::Debug for UdevWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdevWatch")
            .field("adapter", &self.adapter)
            .finish_non_exhaustive()
    }
}

impl UdevWatch {
    fn new(adapter: lava_common::Adapter) -> Result<UdevWatch, WatchError> {
        let socket = udev::MonitorBuilder::new()
            .and_then(|b| b.match_subsystem("tty"))
            .and_then(|b| b.listen())
            .map_err(WatchError::Udev)?;
        let socket = register(socket, Interest::READABLE).map_err(WatchError::Udev)?;
        Ok(UdevWatch { adapter, socket })
    }

    /// The matching tty in the udev database now.
    fn find(&self) -> Option<Node> {
        let found = crate::udev::find_tty(&self.adapter);
        match found {
            Ok(node) => node.and_then(|p| Node::resolve(&p)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot enumerate tty devices");
                None
            }
        }
    }

    async fn next_event(&mut self) -> Result<(), WatchError> {
        loop {
            let mut guard = self.socket.readable().await.map_err(WatchError::Udev)?;
            let got = guard.try_io(|s| {
                let mut n = 0usize;
                for ev in s.get_ref().iter() {
                    n += 1;
                    tracing::trace!(
                        event = ?ev.event_type(),
                        syspath = %ev.syspath().display(),
                        "udev event"
                    );
                }
                if n == 0 {
                    Err(std::io::ErrorKind::WouldBlock.into())
                } else {
                    Ok(())
                }
            });
            if let Ok(res) = got {
                return res.map_err(WatchError::Udev);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::pty::openpty;
    use std::os::fd::OwnedFd;
    use std::os::unix::fs::symlink;
    use std::time::Instant;

    const WAIT: Duration = Duration::from_secs(5);

    /// A pty pair whose slave plays the adapter's node.
    struct Pty {
        _master: OwnedFd,
        _slave: OwnedFd,
        path: PathBuf,
    }

    fn pty() -> Pty {
        let p = openpty(None, None).expect("openpty");
        let path = nix::unistd::ttyname(&p.slave).expect("ttyname");
        Pty {
            _master: p.master,
            _slave: p.slave,
            path,
        }
    }

    /// `ln -sfn target link`: a new link renamed over the old one (IN_MOVED_TO).
    fn repoint_by_rename(target: &Path, link: &Path) {
        let tmp = link.with_extension("tmp");
        let _ = std::fs::remove_file(&tmp);
        symlink(target, &tmp).expect("symlink");
        std::fs::rename(&tmp, link).expect("rename");
    }

    async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(WAIT, f)
            .await
            .unwrap_or_else(|_| panic!("{what}: no event within {WAIT:?}"))
    }

    #[tokio::test]
    async fn appears_vanishes_and_reappears_as_another_pty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("board");
        let mut w = Watcher::new(Identity::Path(link.clone())).expect("watcher");
        assert_eq!(w.current(), None);

        let first = pty();
        let appeared = {
            let link = link.clone();
            let target = first.path.clone();
            let t = std::thread::spawn(move || symlink(target, link).expect("symlink"));
            let got = within("appeared", w.appeared()).await.expect("appeared");
            t.join().expect("thread");
            got
        };
        assert_eq!(appeared, first.path);
        assert_eq!(w.current(), Some(first.path.clone()));

        // Unplugged: the link is removed while the pty stays open (no read error to see).
        std::fs::remove_file(&link).expect("unlink");
        within("vanished after unlink", w.vanished())
            .await
            .expect("vanished");
        assert_eq!(w.current(), None);

        // Back under the same identity as another pty: reopened quickly.
        let second = pty();
        let t0 = Instant::now();
        symlink(&second.path, &link).expect("symlink");
        let again = within("reappeared", w.appeared()).await.expect("appeared");
        assert_eq!(again, second.path);
        assert!(
            t0.elapsed() < Duration::from_millis(200),
            "{:?}",
            t0.elapsed()
        );
        let dev = w.open(&SerialSettings::default()).await.expect("open");
        assert_eq!(dev.path(), second.path);
    }

    #[tokio::test]
    async fn repointing_the_link_counts_as_vanished_both_ways() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("board");
        let (a, b, c) = (pty(), pty(), pty());
        symlink(&a.path, &link).expect("symlink");
        let mut w = Watcher::new(Identity::Path(link.clone())).expect("watcher");
        assert_eq!(
            within("present", w.appeared()).await.expect("appeared"),
            a.path
        );

        // `ln -sfn` style: rename over (IN_MOVED_TO).
        repoint_by_rename(&b.path, &link);
        within("vanished after rename", w.vanished())
            .await
            .expect("vanished");
        assert_eq!(within("new", w.appeared()).await.expect("appeared"), b.path);

        // unlink + symlink.
        std::fs::remove_file(&link).expect("unlink");
        symlink(&c.path, &link).expect("symlink");
        within("vanished after relink", w.vanished())
            .await
            .expect("vanished");
        assert_eq!(within("new", w.appeared()).await.expect("appeared"), c.path);

        // Re-creating the link to the same node is not a change: vanished keeps waiting.
        repoint_by_rename(&c.path, &link);
        let still = tokio::time::timeout(Duration::from_millis(100), w.vanished()).await;
        assert!(still.is_err(), "same node must not count as vanished");
    }

    #[tokio::test]
    async fn directories_created_late_are_descended_into() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("dev/lava/board");
        let p = pty();
        let mut w = Watcher::new(Identity::Path(link.clone())).expect("watcher");
        let maker = {
            let link = link.clone();
            let target = p.path.clone();
            std::thread::spawn(move || {
                std::fs::create_dir(link.parent().and_then(Path::parent).expect("dev"))
                    .expect("mkdir");
                std::fs::create_dir(link.parent().expect("lava")).expect("mkdir");
                symlink(target, &link).expect("symlink");
            })
        };
        let got = within("appeared through new dirs", w.appeared())
            .await
            .expect("appeared");
        maker.join().expect("thread");
        assert_eq!(got, p.path);

        // The whole directory going away is a vanish too.
        std::fs::remove_dir_all(dir.path().join("dev")).expect("rm -r");
        within("vanished with its directory", w.vanished())
            .await
            .expect("vanished");
    }

    /// A chain of links into another directory: the final node appearing and going are seen.
    #[tokio::test]
    async fn a_dangling_chain_appears_when_its_target_does() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("by-id")).expect("mkdir");
        std::fs::create_dir(dir.path().join("nodes")).expect("mkdir");
        let link = dir.path().join("lava-board");
        symlink("by-id/usb-FTDI-A601", &link).expect("symlink");
        symlink("../nodes/ttyUSB3", dir.path().join("by-id/usb-FTDI-A601")).expect("symlink");
        let mut w = Watcher::new(Identity::Path(link.clone())).expect("watcher");
        assert_eq!(w.current(), None);
        let node = dir.path().join("nodes/ttyUSB3");
        std::fs::write(&node, b"").expect("create node");
        let got = within("target created", w.appeared())
            .await
            .expect("appeared");
        assert_eq!(got, std::fs::canonicalize(&node).expect("canonical"));
        std::fs::remove_file(&node).expect("remove node");
        within("target removed", w.vanished())
            .await
            .expect("vanished");
        // Same name, new inode: a re-plugged ttyUSB3 is a new appearance, not the old one.
        std::fs::write(&node, b"").expect("create node");
        within("target back", w.appeared()).await.expect("appeared");
        std::fs::remove_file(&node).expect("remove");
        std::fs::write(&node, b"").expect("create again");
        within("replaced node", w.vanished())
            .await
            .expect("vanished");
    }

    /// While the device is present, its neighbours coming and going (other ttys in `/dev`, other
    /// ptys in `/dev/pts`) wake nothing: the node itself is watched, not its directory. Its own
    /// unlinking still is seen.
    #[tokio::test]
    async fn neighbours_of_a_present_node_wake_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nodes = dir.path().join("nodes");
        std::fs::create_dir(&nodes).expect("mkdir");
        let node = nodes.join("ttyUSB0");
        std::fs::write(&node, b"").expect("node");
        let link = dir.path().join("board");
        symlink(&node, &link).expect("symlink");
        let mut w = Watcher::new(Identity::Path(link)).expect("watcher");
        within("present", w.appeared()).await.expect("appeared");
        let quiet = tokio::time::timeout(Duration::from_millis(50), w.vanished()).await;
        assert!(quiet.is_err(), "nothing changed yet");
        assert!(!w.dirty, "looked once, then waits");
        for i in 1..20 {
            let other = nodes.join(format!("ttyUSB{i}"));
            std::fs::write(&other, b"").expect("neighbour");
            std::fs::remove_file(&other).expect("neighbour gone");
        }
        let quiet = tokio::time::timeout(Duration::from_millis(100), w.vanished()).await;
        assert!(quiet.is_err(), "a neighbour is no vanish");
        assert!(!w.dirty, "no event was read for the neighbours");
        std::fs::remove_file(&node).expect("unplug");
        within("own node removed", w.vanished())
            .await
            .expect("vanished");
    }

    /// A node that appears before udev made it ours (mode 0: open and inotify say EACCES) is
    /// opened as soon as its mode changes, well within 0.2 s: its directory is watched until it
    /// can be read. (As root nothing is refused, so this shows only the quick open there; run
    /// as another user it shows the wait on udev's chmod.)
    #[tokio::test]
    async fn a_node_not_yet_readable_is_opened_when_its_mode_changes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = pty();
        let link = dir.path().join("board");
        std::fs::set_permissions(&p.path, std::fs::Permissions::from_mode(0o000)).expect("chmod");
        symlink(&p.path, &link).expect("symlink");
        let mut w = Watcher::new(Identity::Path(link)).expect("watcher");
        let settings = SerialSettings::default();
        let open = w.open(&settings);
        tokio::pin!(open);
        if nix::unistd::geteuid().is_root() {
            within("open", &mut open).await.expect("root opens at once");
        } else {
            let early = tokio::time::timeout(Duration::from_millis(150), &mut open).await;
            assert!(early.is_err(), "mode 0: cannot open yet");
            let t0 = Instant::now();
            std::fs::set_permissions(&p.path, std::fs::Permissions::from_mode(0o620))
                .expect("chmod");
            within("opened after chmod", &mut open).await.expect("open");
            assert!(
                t0.elapsed() < Duration::from_millis(200),
                "{:?}",
                t0.elapsed()
            );
        }
    }

    /// Cancelling `appeared` (as `select!` does) loses nothing.
    #[tokio::test]
    async fn appeared_is_cancel_safe() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("board");
        let p = pty();
        let mut w = Watcher::new(Identity::Path(link.clone())).expect("watcher");
        for _ in 0..3 {
            tokio::select! {
                _ = w.appeared() => panic!("nothing there yet"),
                _ = tokio::task::yield_now() => {}
            }
        }
        symlink(&p.path, &link).expect("symlink");
        // The event was queued while no one waited; the cancelled futures did not eat the state.
        tokio::select! {
            biased;
            _ = tokio::task::yield_now() => {}
            _ = w.appeared() => {}
        }
        assert_eq!(
            within("appeared", w.appeared()).await.expect("appeared"),
            p.path
        );
    }

    /// Without udevd, an adapter identity is watched as the udev rule's `/dev/lava/BOARD` link.
    #[tokio::test]
    async fn adapter_identity_without_udevd_watches_the_lava_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lava = dir.path().join("lava");
        let identity = Identity::Adapter {
            board: "panda01".to_owned(),
            adapter: lava_common::Adapter::Serial {
                serial: "A601EGHT".to_owned(),
                interface: None,
            },
        };
        let mut w = Watcher::with_roots(identity, &dir.path().join("no-udev-control"), &lava)
            .expect("watcher");
        assert_eq!(w.current(), None);
        let p = pty();
        std::fs::create_dir(&lava).expect("mkdir");
        symlink(&p.path, lava.join("panda01")).expect("symlink");
        assert_eq!(
            within("appeared", w.appeared()).await.expect("appeared"),
            p.path
        );
        assert!(w.identity().to_string().contains("panda01"));
    }

    /// A node that appears but cannot be opened yet (here a socket: open(2) says ENXIO, as a
    /// tty whose driver is not bound yet does) is retried a bounded number of times, then waited
    /// on; when the identity changes to an openable node, it is opened.
    #[tokio::test]
    async fn open_retries_a_not_ready_node_then_waits_for_the_next_event() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("not-a-tty");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
        let link = dir.path().join("board");
        symlink(&sock, &link).expect("symlink");
        let mut w = Watcher::new(Identity::Path(link.clone())).expect("watcher");
        let p = pty();
        let t0 = Instant::now();
        let settings = SerialSettings::default();
        let opened = {
            let open = w.open(&settings);
            tokio::pin!(open);
            // Bounded tries (~75 ms), then it sleeps on events: still pending well after.
            let early = tokio::time::timeout(Duration::from_millis(300), &mut open).await;
            assert!(early.is_err(), "must keep waiting for a usable node");
            repoint_by_rename(&p.path, &link);
            within("opened after re-point", open).await.expect("open")
        };
        assert_eq!(opened.path(), p.path);
        assert!(t0.elapsed() < WAIT);
    }

    /// An error that waiting will not fix comes back at once.
    #[tokio::test]
    async fn open_returns_other_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("plain-file");
        std::fs::write(&file, b"").expect("write");
        let mut w = Watcher::new(Identity::Path(file)).expect("watcher");
        let err = within("open", w.open(&SerialSettings::default()))
            .await
            .expect_err("a plain file is no tty");
        assert!(
            matches!(err, WatchError::Open(DeviceError::Configure { .. })),
            "{err}"
        );
    }

    #[test]
    fn only_transient_open_errors_are_retried() {
        for e in [libc::EACCES, libc::EPERM, libc::ENOENT, libc::ENXIO] {
            assert!(not_ready_yet(e));
        }
        for e in [libc::EIO, libc::EBUSY, libc::ENOTTY, libc::EINVAL] {
            assert!(!not_ready_yet(e));
        }
    }

    fn voluntary_switches() -> u64 {
        let status = std::fs::read_to_string("/proc/thread-self/status").expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("voluntary_ctxt_switches")
    }

    /// While the device is absent, waiting costs no wakeups: the runtime thread sleeps in
    /// epoll_wait until the link appears 1 s later (a 10 ms polling loop would switch ~100
    /// times).
    #[test]
    fn waiting_for_an_absent_device_does_not_wake_the_thread() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("board");
        let p = pty();
        let target = p.path.clone();
        let creator = {
            let link = link.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(1));
                symlink(target, link).expect("symlink");
            })
        };
        let before = voluntary_switches();
        let got = rt.block_on(async {
            let mut w = Watcher::new(Identity::Path(link)).expect("watcher");
            w.appeared().await.expect("appeared")
        });
        let switches = voluntary_switches() - before;
        creator.join().expect("thread");
        assert_eq!(got, p.path);
        assert!(
            switches <= 5,
            "{switches} voluntary context switches while idle"
        );
    }
}
