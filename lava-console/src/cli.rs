//! The command line: raw flags as clap parses them, kept apart from their meaning (`Mode`), so
//! the man page and the program read the same definition.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};
use lava_common::Protocol;

use crate::hello::Replay;

/// The flags of `lava-console`, as typed.
#[derive(Debug, Parser)]
#[command(
    name = "lava-console",
    version,
    about = "Attach to a lab board's console by name, power it through its PDU, and print its LAVA device dictionary",
    long_about = "Attach to a lab board's console by name (from /etc/lava/boards.toml), power it \
through its PDU (lava-power), list the lab, and print a board's LAVA device-dictionary lines.\n\n\
At the console, escapes are typed at the start of a line: ~. quit, ~B send a BREAK (the next key \
goes to the board, for sysrq), ~$hardreset / ~$on / ~$off / ~$status power the board, ~? help, \
~~ a literal ~.",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Args {
    /// Board name or alias from the registry, or HOST:PORT of a console.
    pub board: Option<String>,

    /// The lab registry.
    #[arg(long, value_name = "FILE", env = "LAVA_BOARDS")]
    pub boards: Option<PathBuf>,

    /// Attach read-only: nothing typed reaches the board.
    #[arg(long, conflicts_with_all = ["power", "list", "lava_dict"])]
    pub spy: bool,

    /// Show the board's recent output first: the last N lines of lava-serial's scrollback, or `all`.
    #[arg(long, value_name = "N|all")]
    pub replay: Option<Replay>,

    /// Escape character: one character, `^X` for a control character, or `none` (binary-clean).
    #[arg(short = 'e', long = "escape", value_name = "CHAR", default_value = "~")]
    pub escape: String,

    /// With stdin not a terminal: how long to keep relaying the board's output after stdin ends.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration)]
    pub linger: Duration,

    /// How long to wait for the console to accept the connection.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration)]
    pub connect_timeout: Duration,

    /// Treat HOST:PORT as a plain telnet/raw console, not lava-serial (no hello line).
    #[arg(long)]
    pub plain: bool,

    /// The console's protocol, overriding the registry (mostly for HOST:PORT).
    #[arg(long, value_parser = protocol)]
    pub protocol: Option<Protocol>,

    /// How this client is named to others attached (default USER@HOST).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// No banner and no goodbye line.
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub power: PowerArgs,

    /// Where lava-power's instance sockets are (`PDU.sock`).
    #[arg(long, value_name = "DIR", env = "LAVA_POWER_RUNTIME_DIR")]
    pub power_runtime_dir: Option<PathBuf>,

    /// lava-power gateway to use when the PDU has no socket on this host (HOST:PORT).
    #[arg(long, value_name = "HOST:PORT", env = "LAVA_POWER_GATEWAY")]
    pub power_gateway: Option<String>,

    /// Give up on a power request after this long (LAVA waits 30 s by default).
    #[arg(long, value_name = "DURATION", default_value = "25s", value_parser = duration)]
    pub power_timeout: Duration,

    /// List every board: console endpoint, PDU/outlet, whether the console answers.
    #[arg(long, conflicts_with_all = ["board", "power", "lava_dict"])]
    pub list: bool,

    /// With --list: JSON for scripts.
    #[arg(long, requires = "list")]
    pub json: bool,

    /// Print the board's LAVA device-dictionary lines.
    #[arg(long, conflicts_with = "power")]
    pub lava_dict: bool,

    /// With --lava-dict: which tool the power commands use.
    #[arg(
        long,
        value_enum,
        default_value = "lava-console",
        requires = "lava_dict"
    )]
    pub lava_dict_via: DictVia,

    #[command(subcommand)]
    pub command: Option<Sub>,
}

/// One power verb at most.
#[derive(Debug, Clone, Copy, ClapArgs)]
#[group(id = "power", multiple = false)]
pub struct PowerArgs {
    /// Power-cycle the board through its PDU (off, delay, on) and exit 0 only if it worked.
    #[arg(long)]
    pub hardreset: bool,
    /// Switch the board's outlet on.
    #[arg(long)]
    pub on: bool,
    /// Switch the board's outlet off.
    #[arg(long)]
    pub off: bool,
    /// Show the board's outlet state.
    #[arg(long)]
    pub status: bool,
}

/// Which command the device dictionary's power lines run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DictVia {
    /// `lava-console --hardreset BOARD` (the board's PDU found through the registry).
    LavaConsole,
    /// `pduclient --daemon HOST --hostname PDU --port OUTLET --command reboot` (lava-power gateway).
    Pduclient,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Convert conmux `.cf` files to a boards.toml and lava-power command-driver files.
    ImportConmux {
        /// Directory of conmux `.cf` files (e.g. /etc/conmux).
        dir: PathBuf,
        /// Where to write boards.toml and the lava-power files (default: print to stdout).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// A power verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Hardreset,
    On,
    Off,
    Status,
}

impl Verb {
    /// The verb of the power flags, if one was given.
    pub fn from_args(p: &PowerArgs) -> Option<Verb> {
        if p.hardreset {
            Some(Verb::Hardreset)
        } else if p.on {
            Some(Verb::On)
        } else if p.off {
            Some(Verb::Off)
        } else if p.status {
            Some(Verb::Status)
        } else {
            None
        }
    }

    /// The verb of a `~$WORD` escape (conmux's words and a few synonyms).
    pub fn from_word(w: &str) -> Option<Verb> {
        match w.to_ascii_lowercase().as_str() {
            "hardreset" | "reset" | "reboot" | "powercycle" => Some(Verb::Hardreset),
            "on" | "poweron" => Some(Verb::On),
            "off" | "poweroff" => Some(Verb::Off),
            "status" | "state" => Some(Verb::Status),
            _ => None,
        }
    }

    /// How the verb is written (`hardreset`).
    pub fn word(self) -> &'static str {
        match self {
            Verb::Hardreset => "hardreset",
            Verb::On => "on",
            Verb::Off => "off",
            Verb::Status => "status",
        }
    }
}

fn duration(s: &str) -> Result<Duration, String> {
    lava_common::config::parse_duration(s)
}

fn protocol(s: &str) -> Result<Protocol, String> {
    s.parse()
}
