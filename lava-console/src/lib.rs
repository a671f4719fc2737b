//! lava-console: attach to a lab board's console by name, power it through its PDU, list the lab,
//! and print a board's LAVA device dictionary. The library holds everything so the man page
//! (`command()`) and the tests use the very code the binary runs.

pub mod cli;
pub mod conmux;
pub mod dict;
pub mod escape;
pub mod hello;
pub mod list;
pub mod power;
pub mod session;
pub mod target;
pub mod term;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{CommandFactory, Parser};
use lava_common::registry;

use crate::cli::{Args, Sub, Verb};
use crate::power::PowerSettings;
use crate::session::SessionOptions;

/// The command-line definition, for man pages and completions.
pub fn command() -> clap::Command {
    Args::command()
}

/// Runs `lava-console` with the process's arguments and returns its exit status.
pub fn main() -> ExitCode {
    let args = Args::parse();
    lava_common::logging::init("lava-console", "warn");
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lava-console: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(run(args));
    // A power request still running is abandoned; the stdin thread ends with the process.
    rt.shutdown_background();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            term::restore();
            eprintln!("lava-console: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The default client name shown to others: `USER@HOST`.
fn default_client_name() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "lava".to_owned());
    format!("{user}@{}", registry::this_host())
}

/// Runs the parsed command line; the exit status on success.
pub async fn run(args: Args) -> anyhow::Result<u8> {
    if let Some(Sub::ImportConmux { dir, out }) = &args.command {
        conmux::run(dir, out.as_deref())?;
        return Ok(0);
    }
    let boards_path = registry::resolve_path(args.boards.as_deref());
    let loaded = target::load_registry(&boards_path);
    let settings = PowerSettings {
        runtime_dir: args.power_runtime_dir.clone(),
        gateway: args.power_gateway.clone(),
        timeout: args.power_timeout,
    };

    if args.list {
        let reg = loaded?;
        let rows = list::rows(&reg, args.connect_timeout.min(list::PROBE_TIMEOUT)).await;
        let mut out = std::io::stdout().lock();
        if args.json {
            serde_json::to_writer_pretty(&mut out, &rows).context("writing JSON")?;
            writeln!(out)?;
        } else {
            write!(out, "{}", list::table(&rows))?;
        }
        return Ok(0);
    }

    let Some(name) = args.board.as_deref() else {
        bail!("name a board (`lava-console BOARD`), or use --list to see them");
    };
    let reg = match loaded {
        Ok(r) => Some(r),
        // A HOST:PORT works without a registry; a name needs one.
        Err(_) if target::split_endpoint(name).is_some() => None,
        Err(e) => return Err(e.into()),
    };
    let target = target::resolve(reg.as_ref(), &boards_path, name, args.plain, args.protocol)?;

    if args.lava_dict {
        let board = target.board.as_ref().with_context(|| {
            format!(
                "`{name}` is not a board of {}: --lava-dict needs one",
                boards_path.display()
            )
        })?;
        let default = Path::new(registry::DEFAULT_PATH);
        let ctx = dict::DictContext {
            boards: (boards_path != default).then(|| {
                std::fs::canonicalize(&boards_path).unwrap_or_else(|_| boards_path.clone())
            }),
            power_runtime_dir: args
                .power_runtime_dir
                .clone()
                .filter(|d| d != Path::new(power::DEFAULT_RUNTIME_DIR)),
            power_gateway: args.power_gateway.clone(),
        };
        print!("{}", dict::lava_dict(board, args.lava_dict_via, &ctx));
        return Ok(0);
    }

    let client_name = args.name.clone().unwrap_or_else(default_client_name);
    if let Some(verb) = Verb::from_args(&args.power) {
        let board = target.board.as_ref().with_context(|| {
            format!(
                "`{name}` is not a board of {}: power needs its PDU and outlet",
                boards_path.display()
            )
        })?;
        let route = power::route(board, &settings)?;
        let outcome = power::run(&route, verb, &format!("lava-console {client_name}")).await;
        if outcome.ok {
            println!("{}", outcome.line);
            return Ok(0);
        }
        eprintln!("{}", outcome.line);
        return Ok(1);
    }

    let escape = escape::parse_escape(&args.escape).map_err(anyhow::Error::msg)?;
    let power = match &target.board {
        Some(b) => power::route(b, &settings).map_err(|e| e.to_string()),
        None => Err(format!("{name} is not a registry board: no PDU known")),
    };
    let opts = SessionOptions {
        escape,
        spy: args.spy,
        replay: args.replay,
        linger: args.linger,
        connect_timeout: args.connect_timeout,
        client_name,
        quiet: args.quiet,
        power,
        interactive: None,
    };
    let end = session::attach(&target, opts).await?;
    Ok(end.exit_code(term::stdin_is_tty()))
}
