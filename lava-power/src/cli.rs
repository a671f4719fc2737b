//! The `lava-power` command line: the raw flags (clap), and what each subcommand does with them.
//! `main` is a thin wrapper around [`main`]; [`command`] is exported for man pages.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::{CommandFactory, Parser, Subcommand};

use crate::client::{ClientError, PowerClient, DEFAULT_RUNTIME_DIR};
use crate::wire::{Action, StateSource};

/// Drive power distribution units: one instance per PDU, a queue per PDU, pdudaemon's protocols.
#[derive(Debug, Parser)]
#[command(name = "lava-power", version, about, long_about = None)]
pub struct Cli {
    /// Where instance sockets live.
    #[arg(long, global = true, env = "LAVA_POWER_RUNTIME_DIR", default_value = DEFAULT_RUNTIME_DIR)]
    pub runtime_dir: PathBuf,
    #[command(subcommand)]
    pub command: Cmd,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Drive one PDU: `/etc/lava-power/NAME.toml`, or --config FILE (the name is the file's stem).
    Serve {
        /// The PDU's name (its config is CONFIG_DIR/NAME.toml).
        #[arg(required_unless_present = "config", conflicts_with = "config")]
        name: Option<String>,
        /// The PDU's config file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where NAME.toml files live.
        #[arg(long, default_value = "/etc/lava-power")]
        config_dir: PathBuf,
        /// Also serve the API on TCP (e.g. 127.0.0.1:16500).
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<String>,
    },
    /// pdudaemon's TCP and HTTP protocols (and the JSON routes) on one port, for every instance.
    Gateway {
        #[arg(long, default_value = "127.0.0.1:16421", value_name = "ADDR:PORT")]
        listen: String,
    },
    /// Switch an outlet on.
    On(Target),
    /// Switch an outlet off.
    Off(Target),
    /// Switch an outlet off, wait, and on again.
    Reboot(Target),
    /// Show an outlet's state.
    Status(Target),
    /// Every PDU served on this host (or through --gateway) and its outlets.
    List {
        /// Ask the gateway at HOST[:PORT] instead of local sockets.
        #[arg(long, value_name = "HOST[:PORT]")]
        gateway: Option<String>,
    },
    /// Validate PDU config files.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Convert pdudaemon's JSON config into one lava-power TOML file per PDU.
    ImportPdudaemon {
        /// pdudaemon's config (usually /etc/pdudaemon/pdudaemon.conf).
        file: PathBuf,
        /// Where to write NAME.toml files (default: print them).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Which outlet a client command acts on.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The PDU's name.
    pub pdu: String,
    /// The outlet's number or name.
    pub outlet: String,
    /// Reboot's off → on delay (`5s`, `500ms`, or seconds); default the PDU's reboot_delay.
    #[arg(long)]
    pub delay: Option<String>,
    /// Go through the gateway at HOST[:PORT] instead of the local socket.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub gateway: Option<String>,
}

/// The clap command, for man pages and completions.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs the command line; what `main` calls.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lava-power: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let rt_dir = cli.runtime_dir;
    match cli.command {
        Cmd::Serve {
            name,
            config,
            config_dir,
            listen,
        } => {
            lava_common::logging::init("lava-power", "info");
            let path = match (config, name) {
                (Some(c), _) => c,
                (None, Some(n)) => {
                    crate::config::valid_pdu_name(&n).map_err(|e| anyhow!("bad PDU name: {e}"))?;
                    config_dir.join(format!("{n}.toml"))
                }
                (None, None) => bail!("give a PDU name or --config FILE"),
            };
            let (name, loaded) = crate::config::load(&path)?;
            runtime()?.block_on(serve(&name, loaded, &rt_dir, listen.as_deref()))
        }
        Cmd::Gateway { listen } => {
            // Before the runtime or logging start a thread: this edits the environment.
            let activated = crate::activation::take_listeners();
            lava_common::logging::init("lava-power", "info");
            let activated = activated.context("cannot take the sockets systemd passed")?;
            runtime()?.block_on(gateway(&listen, activated, &rt_dir))
        }
        Cmd::On(t) => runtime()?.block_on(action(&rt_dir, t, Action::On)),
        Cmd::Off(t) => runtime()?.block_on(action(&rt_dir, t, Action::Off)),
        Cmd::Reboot(t) => runtime()?.block_on(action(&rt_dir, t, Action::Reboot)),
        Cmd::Status(t) => runtime()?.block_on(status(&rt_dir, t)),
        Cmd::List { gateway } => runtime()?.block_on(list(&rt_dir, gateway.as_deref())),
        Cmd::Check { files } => check(&files),
        Cmd::ImportPdudaemon { file, out } => crate::import::run(&file, out.as_deref()),
    }
}

/// Serves the gateway on the sockets systemd passed (socket activation), or else on `--listen`.
async fn gateway(
    listen: &str,
    activated: Option<Vec<std::net::TcpListener>>,
    rt_dir: &Path,
) -> anyhow::Result<()> {
    let mut listeners = Vec::new();
    match activated {
        Some(passed) => {
            for l in passed {
                let l = tokio::net::TcpListener::from_std(l)
                    .context("cannot serve a socket systemd passed")?;
                let addr = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
                tracing::info!(listen = %addr, "serving a socket systemd passed");
                listeners.push(l);
            }
        }
        None => listeners.push(
            tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?,
        ),
    }
    let addrs: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    let addrs = addrs.join(" ");
    tracing::info!(listen = %addrs, runtime_dir = %rt_dir.display(), "gateway serving");
    lava_common::notify::ready(&format!("gateway on {addrs}"));
    tokio::spawn(lava_common::notify::watchdog_task());
    let gw = crate::gateway::Gateway::new(rt_dir);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    for l in listeners {
        let mut stopped = stopped.clone();
        servers.spawn(crate::gateway::serve(l, gw.clone(), async move {
            let _ = stopped.wait_for(|s| *s).await;
        }));
    }
    lava_common::shutdown::signal().await;
    let _ = stop.send(true);
    while servers.join_next().await.is_some() {}
    lava_common::notify::stopping();
    Ok(())
}

async fn serve(
    name: &str,
    loaded: crate::config::Loaded,
    rt_dir: &Path,
    listen: Option<&str>,
) -> anyhow::Result<()> {
    let driver = loaded.driver.kind();
    let socket = crate::serve::bind_socket(rt_dir, name)?;
    let path = crate::serve::socket_path(rt_dir, name);
    let tcp = match listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?,
        ),
        None => None,
    };
    tracing::info!(pdu = name, driver, socket = %path.display(), listen = listen.unwrap_or(""), "serving");
    lava_common::notify::ready(&format!("serving {name} ({driver})"));
    tokio::spawn(lava_common::notify::watchdog_task());
    crate::serve::run(name, loaded, socket, tcp, lava_common::shutdown::signal()).await;
    lava_common::notify::stopping();
    let _ = std::fs::remove_file(&path);
    tracing::info!(pdu = name, "stopped");
    Ok(())
}

fn client_for(rt_dir: &Path, t: &Target) -> PowerClient {
    match &t.gateway {
        Some(g) => PowerClient::gateway(g, &t.pdu),
        None => PowerClient::instance(rt_dir, &t.pdu),
    }
}

fn who() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "someone".into());
    format!("lava-power cli {user}")
}

async fn action(rt_dir: &Path, t: Target, action: Action) -> anyhow::Result<()> {
    let delay = t
        .delay
        .as_deref()
        .map(crate::api::parse_delay)
        .transpose()
        .map_err(|e| anyhow!(e))?;
    let client = client_for(rt_dir, &t);
    let r = client.action(&t.outlet, action, delay, &who()).await?;
    let secs = Duration::from_millis(r.duration_ms).as_secs_f64();
    if r.ok {
        println!(
            "{} outlet {}: {} done ({} attempt{}, {secs:.2} s)",
            r.pdu,
            r.outlet,
            r.action,
            r.attempts,
            if r.attempts == 1 { "" } else { "s" }
        );
        Ok(())
    } else {
        bail!(
            "{} outlet {}: {} failed after {} attempt{} ({secs:.2} s): {}",
            r.pdu,
            r.outlet,
            r.action,
            r.attempts,
            if r.attempts == 1 { "" } else { "s" },
            r.error.as_deref().unwrap_or("no reason given")
        )
    }
}

async fn status(rt_dir: &Path, t: Target) -> anyhow::Result<()> {
    let s = client_for(rt_dir, &t).status(&t.outlet).await?;
    let name = s.name.map(|n| format!(" ({n})")).unwrap_or_default();
    let note = match s.source {
        StateSource::Read => "read from the PDU",
        StateSource::Remembered => "remembered: the last state set here; this PDU cannot be read",
        StateSource::None => "never set here; this PDU cannot be read",
    };
    println!("{} outlet {}{name}: {} ({note})", s.pdu, s.outlet, s.state);
    Ok(())
}

async fn list(rt_dir: &Path, gateway: Option<&str>) -> anyhow::Result<()> {
    let pdus = match gateway {
        Some(g) => crate::client::gateway_pdus(g).await?,
        None => crate::gateway::list(&crate::gateway::Gateway::new(rt_dir)).await,
    };
    if pdus.pdus.is_empty() {
        println!("no lava-power instances");
        return Ok(());
    }
    let mut failed = false;
    for p in pdus.pdus {
        if !p.ok {
            failed = true;
            println!(
                "{}: DOWN: {}",
                p.pdu,
                p.error.as_deref().unwrap_or("not answering")
            );
            continue;
        }
        println!(
            "{}: {} driver, {} queued",
            p.pdu,
            p.driver.as_deref().unwrap_or("?"),
            p.queued.unwrap_or(0)
        );
        let client = match gateway {
            Some(g) => PowerClient::gateway(g, &p.pdu),
            None => PowerClient::instance(rt_dir, &p.pdu),
        };
        match client.outlets().await {
            Ok(list) => {
                for o in list.outlets {
                    let name = o.name.map(|n| format!(" {n}")).unwrap_or_default();
                    println!("  {:>4}{name}: {} ({})", o.outlet, o.state, o.source);
                }
            }
            Err(e) => println!("  outlets: {}", one_line(&e)),
        }
    }
    if failed {
        bail!("some instances are not answering");
    }
    Ok(())
}

fn one_line(e: &ClientError) -> String {
    e.to_string().replace('\n', " ")
}

fn check(files: &[PathBuf]) -> anyhow::Result<()> {
    let mut bad = 0;
    for f in files {
        match crate::config::load(f) {
            Ok((name, loaded)) => {
                let c = &loaded.common;
                println!(
                    "{}: ok: PDU {name}, driver {}, reboot_delay {:?}, timeout {:?}, retries {}, deadline {:?}, {} named outlet(s){}",
                    f.display(),
                    loaded.driver.kind(),
                    c.reboot_delay,
                    c.timeout,
                    c.retries,
                    c.deadline,
                    c.outlets.len(),
                    c.outlet_count.map(|n| format!(", {n} outlets")).unwrap_or_default()
                );
            }
            Err(e) => {
                eprintln!("{e}");
                bad += 1;
            }
        }
    }
    if bad > 0 {
        bail!("{bad} of {} config file(s) have errors", files.len());
    }
    Ok(())
}
