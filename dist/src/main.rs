//! Writes the suite's man pages (clap_mangen) and shell completions (clap_complete) from the very
//! command-line definitions the binaries parse, so the package's docs never drift from the code.
//!
//! `lava-dist OUT_DIR` writes `OUT_DIR/man/man1/*.1` (one page per command and subcommand),
//! `OUT_DIR/completions/bash/NAME`, `OUT_DIR/completions/zsh/_NAME` and
//! `OUT_DIR/completions/fish/NAME.fish`. `packaging/build-deb` runs it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap_complete::Shell;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lava-dist: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let out = match (args.next(), args.next()) {
        (Some(dir), None) if dir != "-h" && dir != "--help" => PathBuf::from(dir),
        _ => anyhow::bail!("usage: lava-dist OUT_DIR (writes man/ and completions/ there)"),
    };
    let commands = [
        lava_serial::command().name("lava-serial"),
        lava_power::command().name("lava-power"),
        lava_console::command().name("lava-console"),
    ];
    for cmd in commands {
        let name = cmd.get_name().to_owned();
        write_man_pages(&cmd, &out.join("man/man1"))
            .with_context(|| format!("writing the man pages of {name}"))?;
        write_completions(cmd, &out.join("completions"))
            .with_context(|| format!("writing the completions of {name}"))?;
    }
    Ok(())
}

/// One page for the command, and one per subcommand (`lava-power-serve.1`, ...) so `man
/// lava-power-serve` works as with git.
fn write_man_pages(cmd: &clap::Command, dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(cmd.clone(), dir)
        .with_context(|| format!("writing into {}", dir.display()))?;
    Ok(())
}

/// Completions for the shells Debian packages them for, at the paths the package installs.
fn write_completions(mut cmd: clap::Command, dir: &Path) -> anyhow::Result<()> {
    let name = cmd.get_name().to_owned();
    for (shell, sub, file) in [
        (Shell::Bash, "bash", name.clone()),
        (Shell::Zsh, "zsh", format!("_{name}")),
        (Shell::Fish, "fish", format!("{name}.fish")),
    ] {
        let shell_dir = dir.join(sub);
        fs::create_dir_all(&shell_dir)
            .with_context(|| format!("creating {}", shell_dir.display()))?;
        let path = shell_dir.join(file);
        let mut f =
            fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        clap_complete::generate(shell, &mut cmd, &name, &mut f);
    }
    Ok(())
}
