//! Shared pieces of lava-power's own tests: configs in temp dirs, in-process instances and gateways
//! on real sockets, external tools found on PATH (a missing one fails the test naming its package).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use lava_power::client::PowerClient;
use lava_power::gateway::Gateway;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// An executable on PATH (or in /usr/sbin, /sbin), or a failed test naming the Debian package
/// that provides it.
pub fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain(["/usr/sbin".into(), "/sbin".into()]);
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{name}` not found on PATH: install the Debian package `{package}`");
}

/// A temp dir with a runtime dir inside.
pub struct Lab {
    pub dir: tempfile::TempDir,
    pub runtime: PathBuf,
}

impl Lab {
    pub fn new() -> Lab {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = dir.path().join("run");
        std::fs::create_dir_all(&runtime).expect("runtime dir");
        Lab { dir, runtime }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes NAME.toml and returns its path.
    pub fn config(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(&format!("{name}.toml"));
        std::fs::write(&p, text).expect("write config");
        p
    }

    /// A command-driver PDU whose every switch appends `begin OUTLET STATE` / `end OUTLET STATE`
    /// to its log (so overlapping runs would show), with `extra` config lines appended.
    pub fn command_pdu(&self, name: &str, extra: &str) -> PathBuf {
        let log = self.log_path(name);
        let script = |state: &str| {
            format!(
                "[\"sh\", \"-c\", \"echo begin {{outlet}} {state} >> {log}; echo end {{outlet}} {state} >> {log}\"]",
                log = log.display()
            )
        };
        self.config(
            name,
            &format!(
                "driver = \"command\"\non = {}\noff = {}\n{extra}\n",
                script("on"),
                script("off")
            ),
        )
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.path(&format!("{name}.log"))
    }

    /// The `end` lines of a PDU's log, as `OUTLET STATE`.
    pub fn switched(&self, name: &str) -> Vec<String> {
        read_log(&self.log_path(name))
            .into_iter()
            .filter_map(|l| l.strip_prefix("end ").map(str::to_owned))
            .collect()
    }

    /// Starts an instance in-process on this lab's runtime dir; it stops when the returned
    /// sender is dropped.
    pub fn serve(&self, config: &Path) -> oneshot::Sender<()> {
        let (name, loaded) = lava_power::config::load(config).expect("config loads");
        let socket = lava_power::serve::bind_socket(&self.runtime, &name).expect("bind socket");
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            lava_power::serve::run(&name, loaded, socket, None, async {
                let _ = rx.await;
            })
            .await;
        });
        tx
    }

    /// Starts the instance `config` describes and returns, once it answers, a client of its
    /// socket; it stops when the returned sender is dropped.
    pub async fn start(&self, config: &Path) -> (oneshot::Sender<()>, PowerClient) {
        let stop = self.serve(config);
        let name = config.file_stem().expect("NAME.toml").to_string_lossy();
        let client = PowerClient::instance(&self.runtime, &name);
        client.health().await.expect("instance up");
        (stop, client)
    }

    /// Starts a gateway on `listener` for this lab's instances.
    pub fn gateway(&self, listener: TcpListener) {
        let gw = Gateway::new(&self.runtime);
        tokio::spawn(lava_power::gateway::serve(
            listener,
            gw,
            std::future::pending::<()>(),
        ));
    }

    /// Starts a gateway on a free loopback port; returns its address.
    pub async fn gateway_on_free_port(&self) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        self.gateway(listener);
        addr
    }
}

pub fn read_log(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Checks a log's begin/end lines never interleave (one command at a time).
pub fn assert_serial(lines: &[String]) {
    let mut open: Option<&str> = None;
    for l in lines {
        if let Some(rest) = l.strip_prefix("begin ") {
            assert!(
                open.is_none(),
                "`{l}` began while `{open:?}` ran: {lines:?}"
            );
            open = Some(rest);
        } else if let Some(rest) = l.strip_prefix("end ") {
            assert_eq!(open, Some(rest), "unmatched end in {lines:?}");
            open = None;
        }
    }
    assert!(open.is_none(), "a command never ended: {lines:?}");
}

/// A listener on port 16421 of a loopback address of its own (127.a.b.c): pduclient always
/// connects to port 16421, and each test needs its own gateway.
pub async fn pdudaemon_port() -> (TcpListener, String) {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let pid = std::process::id();
    for _ in 0..200 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let host = format!("127.{}.{}.{}", 1 + (pid >> 8) % 250, pid % 256, 1 + n % 250);
        if let Ok(l) = TcpListener::bind((host.as_str(), 16421)).await {
            return (l, host);
        }
    }
    panic!("no free 127.x.y.z:16421 address for the gateway");
}
