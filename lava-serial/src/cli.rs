//! The command line (shared/DESIGN.md §2): raw flags parsed by clap, turned into a validated
//! [`PortConfig`] or a subcommand, run on a single-threaded tokio runtime (one port per process).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use lava_common::registry::{self, Registry};
use lava_common::{FlowControl, Format, Protocol, SerialSettings};

use crate::config::{self, Listen, PortConfig, ResolveError};
use crate::watch::Identity;

/// lava-serial: a board's serial line on a TCP port, shared by many clients, surviving its adapter.
#[derive(Debug, Parser)]
#[command(
    name = "lava-serial",
    version,
    about = "Serve a board's serial console on TCP: many clients, a console log, and an adapter that may come and go",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Examples:\n  lava-serial panda01                               serve a board of /etc/lava/boards.toml\n  lava-serial --device /dev/ttyUSB0 --port 7001     serve one device, no registry\n  lava-serial demo                                  a simulated board on port 7001\n  lava-serial check                                 validate the registry\n  lava-serial list-local                            the boards this host serves"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Cmd>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Flags of the serving modes (`BOARD` or `--device`).
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The board to serve, as named in the registry.
    #[arg(value_name = "BOARD", conflicts_with = "device")]
    pub board: Option<String>,
    /// The registry file (default: $LAVA_BOARDS, else /etc/lava/boards.toml).
    #[arg(long, value_name = "FILE")]
    pub boards: Option<PathBuf>,
    /// Serve this device (a /dev/serial/by-id or /dev/lava symlink, a tty) with no registry.
    #[arg(long, value_name = "PATH")]
    pub device: Option<PathBuf>,
    /// TCP port to listen on with --device (0: any free port, printed at start).
    #[arg(long, value_parser = clap::value_parser!(u16))]
    pub port: Option<u16>,
    /// Address to listen on with --device.
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    pub bind: String,
    /// Baud rate with --device.
    #[arg(long, default_value_t = 115_200, value_parser = clap::value_parser!(u32).range(50..=4_000_000))]
    pub baud: u32,
    /// Data bits, parity, stop bits with --device, e.g. 8N1, 7E1.
    #[arg(long, default_value = "8N1", value_parser = parse_format)]
    pub format: Format,
    /// Flow control with --device: none, rtscts, xonxoff.
    #[arg(long, default_value = "none", value_parser = parse_flow)]
    pub flow: FlowControl,
    /// How clients speak with --device: telnet (RFC 854 + RFC 2217) or raw.
    #[arg(long, default_value = "telnet", value_parser = parse_protocol)]
    pub protocol: Protocol,
    /// Console log file with --device (rotated by size); none by default.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Rotate the console log at this size, in MiB.
    #[arg(long, default_value_t = registry::DEFAULT_LOG_SIZE_MIB, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub log_size_mib: u64,
    /// Rotated console logs kept.
    #[arg(long, default_value_t = registry::DEFAULT_LOG_KEEP)]
    pub log_keep: usize,
    /// Scrollback kept for clients that ask for a replay, in KiB.
    #[arg(long, default_value_t = registry::DEFAULT_SCROLLBACK_KIB as u64, value_parser = clap::value_parser!(u64).range(0..=1 << 20))]
    pub scrollback_kib: u64,
    /// The name notices and the log use with --device (default: the device's file name).
    #[arg(long)]
    pub name: Option<String>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// For udev IMPORT{program}: print LAVA_BOARD=<name> for the adapter udev describes in the
    /// environment (ID_SERIAL, ID_SERIAL_SHORT, ID_USB_INTERFACE_NUM, ID_PATH); nothing if unknown.
    UdevIdentify {
        /// The registry file.
        #[arg(long, value_name = "FILE")]
        boards: Option<PathBuf>,
    },
    /// List the USB serial adapters plugged in now, with their identity and board.
    Adapters {
        /// The registry file.
        #[arg(long, value_name = "FILE")]
        boards: Option<PathBuf>,
    },
    /// Print the name of every board this host serves, one per line (for the boot-time
    /// generator): its adapter is plugged here and it is not a terminal server's `console`. No
    /// registry at the default path is an empty list; a registry in error exits 2.
    ListLocal {
        /// The registry file (default: $LAVA_BOARDS, else /etc/lava/boards.toml).
        #[arg(long, value_name = "FILE")]
        boards: Option<PathBuf>,
    },
    /// Validate the registry and print what each board resolves to.
    Check {
        /// The registry file (default: $LAVA_BOARDS, else /etc/lava/boards.toml).
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Serve a simulated board (boot log, login prompt, a tiny shell) on a pty: try it with
    /// `telnet localhost 7001`, no hardware needed.
    Demo {
        /// TCP port to listen on.
        #[arg(long, default_value_t = 7001)]
        port: u16,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
        /// The simulated board's name.
        #[arg(long, default_value = "panda01")]
        name: String,
        /// A file whose content ("on"/"off") is the board's power, watched with inotify (e.g. a
        /// lava-power `command` driver writes it). SIGUSR1 power-cycles the board too.
        #[arg(long, value_name = "FILE")]
        power_file: Option<PathBuf>,
        /// How clients speak: telnet or raw.
        #[arg(long, default_value = "telnet", value_parser = parse_protocol)]
        protocol: Protocol,
        /// Console log file.
        #[arg(long, value_name = "FILE")]
        log: Option<PathBuf>,
    },
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}
fn parse_flow(s: &str) -> Result<FlowControl, String> {
    s.parse()
}
fn parse_protocol(s: &str) -> Result<Protocol, String> {
    s.parse()
}

/// The clap command, for man pages and shell completions.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Exit code for a config the admin must fix (systemd does not restart on it in a loop).
const EXIT_CONFIG: u8 = 2;

/// An error that knows its exit code.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        let error = e.into();
        let code = if error.downcast_ref::<ResolveError>().is_some()
            || error.downcast_ref::<lava_common::ConfigError>().is_some()
        {
            EXIT_CONFIG
        } else {
            1
        };
        Failure { code, error }
    }
}

/// The binary's `main`: parse, run, print the whole error chain, pick the exit code.
pub fn main() -> ExitCode {
    crate::mem::tune();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    lava_common::logging::init("lava-serial", "info");
    match run(cli) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("lava-serial: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?)
}

fn run(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Some(Cmd::UdevIdentify { boards }) => {
            let path = registry::resolve_path(boards.as_deref());
            let reg = Registry::load(&path)?;
            let props = lava_common::AdapterProps::from_env();
            if let Some(line) = crate::udev::identify(&reg, &props, &registry::this_host()) {
                print!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Adapters { boards }) => {
            let path = registry::resolve_path(boards.as_deref());
            let reg = match Registry::load(&path) {
                Ok(r) => Some(r),
                Err(lava_common::ConfigError::Read { .. }) if boards.is_none() => None,
                Err(e) => return Err(e.into()),
            };
            let list = crate::udev::list_adapters(reg.as_ref(), &registry::this_host())?;
            print!("{}", crate::udev::format_adapters(&list));
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::ListLocal { boards }) => {
            let path = registry::resolve_path(boards.as_deref());
            let reg = match Registry::load(&path) {
                Ok(r) => r,
                // A fresh install: no registry yet, nothing to serve.
                Err(lava_common::ConfigError::Read { source, .. })
                    if boards.is_none() && source.kind() == std::io::ErrorKind::NotFound =>
                {
                    return Ok(ExitCode::SUCCESS);
                }
                Err(e) => return Err(e.into()),
            };
            print!("{}", local_boards(&reg, &registry::this_host()));
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Check { file }) => {
            let path = registry::resolve_path(file.as_deref());
            let reg = Registry::load(&path)?;
            print!("{}", describe_registry(&reg));
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Demo {
            port,
            bind,
            name,
            power_file,
            protocol,
            log,
        }) => {
            let listen = Listen { bind, port };
            runtime()?.block_on(crate::demo::run(crate::demo::DemoConfig {
                listen,
                name,
                power_file,
                protocol,
                log,
            }))?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let (cfg, listen) = resolve_serve(cli.serve)?;
            runtime()?.block_on(serve(cfg, listen))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Turns the serving flags into a port config: registry mode or device mode.
fn resolve_serve(a: ServeArgs) -> Result<(PortConfig, Listen), Failure> {
    if let Some(device) = a.device {
        let Some(port) = a.port else {
            return Err(usage(
                "--device needs --port N (the TCP port to serve it on)",
            ));
        };
        let cfg = PortConfig {
            board: a.name.unwrap_or_else(|| config::name_for_device(&device)),
            identity: Identity::Path(device),
            settings: SerialSettings {
                baud: a.baud,
                format: a.format,
                flow: a.flow,
            },
            protocol: a.protocol,
            scrollback: usize::try_from(a.scrollback_kib).unwrap_or(usize::MAX / 2048) * 1024,
            log: config::device_log(a.log, a.log_size_mib, a.log_keep),
        };
        return Ok((cfg, Listen { bind: a.bind, port }));
    }
    let Some(board) = a.board else {
        return Err(usage(
            "give a BOARD to serve from the registry, or --device PATH --port N (see --help)",
        ));
    };
    if a.port.is_some() {
        return Err(usage(
            "--port is for --device; a board's port comes from the registry",
        ));
    }
    let path = registry::resolve_path(a.boards.as_deref());
    Ok(config::from_registry(
        &path,
        &board,
        &registry::this_host(),
    )?)
}

fn usage(msg: &str) -> Failure {
    Failure {
        code: EXIT_CONFIG,
        error: anyhow::anyhow!("{msg}"),
    }
}

/// Binds, tells systemd it is ready, and serves until SIGTERM/SIGINT.
pub async fn serve(cfg: PortConfig, listen: Listen) -> anyhow::Result<()> {
    let addr = listen.addr()?;
    let listener = crate::server::bind(addr).await?;
    let local = listener.local_addr().unwrap_or(addr);
    let device = match &cfg.identity {
        Identity::Path(p) => p.display().to_string(),
        Identity::Adapter { adapter, .. } => adapter.to_string(),
    };
    tracing::info!(board = %cfg.board, listen = %local, device = %device, protocol = %cfg.protocol, settings = %cfg.settings, "serving");
    let status = format!("serving {} on {local}", cfg.board);
    let board = cfg.board.clone();
    let ready = async {
        lava_common::notify::ready(&status);
        lava_common::notify::watchdog_task().await;
        std::future::pending::<()>().await;
    };
    let shutdown = async {
        lava_common::shutdown::signal().await;
        lava_common::notify::stopping();
    };
    // Biased: the server's first poll installs the signal handlers before READY is sent.
    tokio::select! {
        biased;
        r = crate::server::run(listener, cfg, shutdown) => r.with_context(|| format!("serving {board}"))?,
        _ = ready => {}
    }
    Ok(())
}

/// What `list-local` prints: the boards `host` serves with lava-serial, one name a line. A board
/// with a `console` is a terminal server's, reached directly; one without an adapter has nothing
/// to serve.
pub fn local_boards(reg: &Registry, host: &str) -> String {
    reg.boards()
        .filter(|b| b.adapter.is_some() && b.console.is_none() && b.is_on_host(host))
        .map(|b| format!("{}\n", b.name))
        .collect()
}

/// What `check` prints: one block per board.
pub fn describe_registry(reg: &Registry) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: ok, {} boards",
        reg.path.display(),
        reg.boards().count()
    );
    for b in reg.boards() {
        let _ = writeln!(out, "{} (line {})", b.name, b.line);
        let _ = writeln!(
            out,
            "  host:     {}",
            b.host.as_deref().unwrap_or("(this host)")
        );
        if let Some(a) = &b.adapter {
            let _ = writeln!(
                out,
                "  serves:   {}:{} ({}) adapter {a}",
                b.bind,
                b.port.map_or_else(|| "-".to_owned(), |p| p.to_string()),
                b.protocol
            );
            let _ = writeln!(out, "  settings: {}", b.serial);
            let _ = writeln!(out, "  log:      {}", b.log_file().display());
        }
        if let Some(c) = &b.console {
            let _ = writeln!(out, "  console:  {c} (terminal server)");
        }
        match &b.power {
            Some(p) => {
                let _ = writeln!(
                    out,
                    "  power:    pdu {} outlet {}{}",
                    p.pdu,
                    p.outlet,
                    p.host
                        .as_ref()
                        .map(|h| format!(" on {h}"))
                        .unwrap_or_default()
                );
            }
            None => {
                let _ = writeln!(out, "  power:    none");
            }
        }
        if !b.aliases.is_empty() {
            let _ = writeln!(out, "  aliases:  {}", b.aliases.join(", "));
        }
    }
    out
}
