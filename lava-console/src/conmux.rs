//! `lava-console import-conmux DIR`: turns conmux `.cf` files (`listener`, `socket`,
//! `application`, `command 'hardreset'|'on'|'off'`) into a boards.toml and lava-power
//! command-driver files, so a conmux lab moves over without retyping 200 boards.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::dict::shell_split;

/// One conmux console, as read from its `.cf` file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CfBoard {
    pub file: PathBuf,
    pub name: String,
    /// `host:port` of a network console (`socket`, or `application` running telnet).
    pub console: Option<String>,
    /// An `application` that is not telnet (cu, screen on a local tty...).
    pub application: Option<String>,
    pub hardreset: Option<String>,
    pub on: Option<String>,
    pub off: Option<String>,
}

/// Reads one `.cf` file.
pub fn parse_cf(file: &Path, text: &str) -> CfBoard {
    let mut b = CfBoard {
        file: file.to_owned(),
        name: file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        ..CfBoard::default()
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(words) = shell_split(line) else {
            continue;
        };
        match words.as_slice() {
            [kw, name, ..] if kw == "listener" => {
                b.name = name.rsplit('/').next().unwrap_or(name).to_owned();
            }
            [kw, _, _, endpoint, ..] if kw == "socket" => {
                b.console = Some(endpoint.clone());
            }
            [kw, _, _, cmd, ..] if kw == "application" => {
                let argv = shell_split(cmd).unwrap_or_default();
                let telnet = argv
                    .first()
                    .is_some_and(|a| a.rsplit('/').next() == Some("telnet"));
                match argv.as_slice() {
                    [_, host, port] if telnet => b.console = Some(format!("{host}:{port}")),
                    [_, host] if telnet => b.console = Some(format!("{host}:23")),
                    _ => b.application = Some(cmd.clone()),
                }
            }
            [kw, which, _, cmd, ..] if kw == "command" => match which.as_str() {
                "hardreset" | "reset" | "reboot" => b.hardreset = Some(cmd.clone()),
                "on" | "poweron" => b.on = Some(cmd.clone()),
                "off" | "poweroff" => b.off = Some(cmd.clone()),
                _ => {}
            },
            _ => {}
        }
    }
    b
}

/// A pduclient command line's PDU and outlet, so the board points at that lava-power instance.
fn pduclient_target(cmd: &str) -> Option<(String, String)> {
    let argv = shell_split(cmd)?;
    if argv.first()?.rsplit('/').next()? != "pduclient" {
        return None;
    }
    let arg = |flag: &str| {
        argv.iter()
            .position(|a| a == flag)
            .and_then(|i| argv.get(i + 1))
            .cloned()
    };
    Some((arg("--hostname")?, arg("--port")?))
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn sh_argv(cmd: &str) -> String {
    format!("[\"sh\", \"-c\", {}]", toml_str(cmd))
}

/// The converted lab: boards.toml text and one lava-power file per board with a command.
#[derive(Debug, Default)]
pub struct Converted {
    pub boards_toml: String,
    /// (file name, text) of lava-power command-driver configs.
    pub pdus: Vec<(String, String)>,
}

/// Converts parsed `.cf` files.
pub fn convert(boards: &[CfBoard]) -> Converted {
    let mut out = Converted::default();
    let _ = writeln!(
        out.boards_toml,
        "# Converted from conmux by `lava-console import-conmux`. Check every board, then\n\
         # `lava-serial check` this file."
    );
    for b in boards {
        let _ = writeln!(out.boards_toml, "\n# from {}", b.file.display());
        let power = if let Some((pdu, outlet)) = b.hardreset.as_deref().and_then(pduclient_target) {
            let _ = writeln!(
                out.boards_toml,
                "# power: pduclient → the lava-power instance `{pdu}` must exist"
            );
            Some((pdu, outlet))
        } else if let Some(reset) = &b.hardreset {
            // conmux's hardreset is one script: lava-power's reboot (off, delay, on) runs it as
            // `on` after a no-op `off` with no delay, unless the .cf had real on/off commands.
            let pdu = format!("conmux-{}", b.name);
            let mut text = format!(
                "# {b} power, converted from {file} (conmux `command 'hardreset'`)\ndriver = \"command\"\n",
                b = b.name,
                file = b.file.display()
            );
            match (&b.on, &b.off) {
                (Some(on), Some(off)) => {
                    let _ = writeln!(text, "on = {}\noff = {}", sh_argv(on), sh_argv(off));
                }
                _ => {
                    let _ = writeln!(
                        text,
                        "# reboot = off (nothing) + on (the hardreset script); `on`/`off` alone also run these\n\
                         reboot_delay = \"0s\"\non = {}\noff = [\"true\"]",
                        sh_argv(reset)
                    );
                }
            }
            out.pdus.push((format!("{pdu}.toml"), text));
            Some((pdu, "1".to_owned()))
        } else {
            None
        };
        let mut body = String::new();
        let _ = writeln!(body, "[boards.{}]", b.name);
        let commented = match (&b.console, &b.application) {
            (Some(c), _) => {
                let _ = writeln!(body, "console = {}", toml_str(c));
                false
            }
            (None, Some(app)) => {
                let _ = writeln!(
                    body,
                    "# conmux ran: {app}\n# a local serial port: lava-serial serves it; set its adapter \
                     (`lava-serial adapters` lists them) and a port\nport = 0\nadapter = {{ serial = \"\" }}"
                );
                true
            }
            (None, None) => {
                let _ = writeln!(body, "# no console found in the .cf file");
                true
            }
        };
        if let Some((pdu, outlet)) = power {
            let _ = writeln!(
                body,
                "power = {{ pdu = {}, outlet = {} }}",
                toml_str(&pdu),
                toml_str(&outlet)
            );
        }
        if commented {
            let _ = writeln!(out.boards_toml, "# TODO by hand, then uncomment:");
            for l in body.lines() {
                let _ = writeln!(out.boards_toml, "# {l}");
            }
        } else {
            out.boards_toml.push_str(&body);
        }
    }
    out
}

/// Runs the subcommand: reads `DIR/*.cf`, writes to `out` (or prints).
pub fn run(dir: &Path, out: Option<&Path>) -> anyhow::Result<()> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "cf"))
        .collect();
    files.sort();
    if files.is_empty() {
        anyhow::bail!("no conmux .cf files in {}", dir.display());
    }
    let mut boards = Vec::new();
    for f in &files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        boards.push(parse_cf(f, &text));
    }
    let conv = convert(&boards);
    match out {
        None => {
            print!("{}", conv.boards_toml);
            for (name, text) in &conv.pdus {
                println!("\n# ---- /etc/lava-power/{name}\n{text}");
            }
        }
        Some(o) => {
            std::fs::create_dir_all(o).with_context(|| format!("cannot create {}", o.display()))?;
            let write = |name: &str, text: &str| {
                let p = o.join(name);
                std::fs::write(&p, text).with_context(|| format!("cannot write {}", p.display()))
            };
            write("boards.toml", &conv.boards_toml)?;
            for (name, text) in &conv.pdus {
                write(name, text)?;
            }
            eprintln!(
                "wrote {} boards to {}/boards.toml and {} lava-power files (copy them to /etc/lava-power/)",
                boards.len(),
                o.display(),
                conv.pdus.len()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CF: &str = r#"
listener lab/panda01
application console 'panda01 console' 'telnet ts01.lab 7001'
command 'hardreset' 'Initiated a hard reset' '/usr/local/bin/reset-relay 3'
"#;

    #[test]
    fn converts_a_lab() {
        let a = parse_cf(Path::new("/etc/conmux/panda01.cf"), CF);
        assert_eq!(a.name, "panda01");
        assert_eq!(a.console.as_deref(), Some("ts01.lab:7001"));
        let b = parse_cf(
            Path::new("beagle.cf"),
            "listener beagle\nsocket console 'beagle' 'ts02:2003'\ncommand 'hardreset' 'x' 'pduclient --daemon pdus --hostname apc1 --command reboot --port 05'\n",
        );
        let c = parse_cf(
            Path::new("local.cf"),
            "listener local1\napplication console 'local1' '/usr/bin/cu -l /dev/ttyUSB0 -s 115200'\n",
        );
        let conv = convert(&[a, b, c]);
        let reg = lava_common::Registry::parse(&lava_common::Source::from_text(
            "boards.toml",
            conv.boards_toml.clone(),
        ))
        .expect("the converted registry loads");
        let p = reg.board("panda01").expect("panda01");
        assert_eq!(p.console.as_deref(), Some("ts01.lab:7001"));
        assert_eq!(
            p.power.as_ref().map(|p| p.pdu.as_str()),
            Some("conmux-panda01")
        );
        let be = reg.board("beagle").expect("beagle");
        let pw = be.power.as_ref().expect("power");
        assert_eq!((pw.pdu.as_str(), pw.outlet.as_str()), ("apc1", "05"));
        assert!(
            reg.board("local1").is_none(),
            "local tty boards are left for the admin"
        );
        assert!(conv.boards_toml.contains("# conmux ran: /usr/bin/cu"));
        assert_eq!(conv.pdus.len(), 1);
        let (name, text) = &conv.pdus[0];
        assert_eq!(name, "conmux-panda01.toml");
        let v: toml::Value = toml::from_str(text).expect("valid toml");
        assert_eq!(v["driver"].as_str(), Some("command"));
        assert_eq!(
            v["on"].as_array().map(|a| a.len()),
            Some(3),
            "on = sh -c SCRIPT"
        );
    }
}
