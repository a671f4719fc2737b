//! The `command` driver: any relay with a command-line tool (relay boards, ipmitool, a lab's own
//! script). Each action is an argv run without a shell, `{outlet}` substituted; a non-zero exit is
//! a failure whose reason carries the command's own words; an attempt that is abandoned (timeout,
//! shutdown) kills the command's whole process group, so no hung tool outlives its request.

use std::process::Stdio;
use std::sync::Arc;

use lava_common::{ConfigError, Source};
use toml::Spanned;

use crate::config::Loaded;
use crate::driver::{DriverError, DriverFuture, OutletState, PowerDriver};

crate::pdu_keys! {
    /// The `command` driver's keys.
    struct Raw {
        on: Spanned<Vec<String>>,
        off: Spanned<Vec<String>>,
        status: Option<Spanned<Vec<String>>>,
    }
}

/// Reads this driver's keys from a PDU config file.
pub fn load(src: &Source) -> Result<Loaded, ConfigError> {
    let raw: Raw = src.parse()?;
    let common = raw.common(src)?;
    let argv = |key: &str, v: &Spanned<Vec<String>>| -> Result<Vec<String>, ConfigError> {
        match v.get_ref().first() {
            Some(program) if !program.trim().is_empty() => Ok(v.get_ref().clone()),
            _ => Err(src.invalid(
                Some(v.span()),
                key,
                "the command is empty",
                Some(format!(
                    "write the program and its arguments, e.g. {key} = [\"relayctl\", \"--port\", \"{{outlet}}\", \"{key}\"]"
                )),
            )),
        }
    };
    let driver = CommandDriver {
        on: argv("on", &raw.on)?,
        off: argv("off", &raw.off)?,
        status: raw.status.as_ref().map(|s| argv("status", s)).transpose()?,
    };
    Ok(Loaded {
        common,
        driver: Arc::new(driver),
    })
}

/// Runs argv commands to switch and read outlets.
#[derive(Debug, Clone)]
pub struct CommandDriver {
    pub on: Vec<String>,
    pub off: Vec<String>,
    pub status: Option<Vec<String>>,
}

/// Kills a process group when dropped, unless the command ran to its end.
struct GroupGuard {
    pgid: Option<i32>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            use nix::sys::signal::{killpg, Signal};
            use nix::unistd::Pid;
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }
}

/// The last `max` characters of a command's output, on one line.
fn tail(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let chars: Vec<char> = one_line.chars().collect();
    if chars.len() > max {
        format!("…{}", chars[chars.len() - max..].iter().collect::<String>())
    } else {
        one_line
    }
}

/// What a status command's output says: `on`/`off` (any case, first word), or `1`/`0`.
pub fn parse_state(stdout: &str) -> Option<OutletState> {
    let word = stdout.split_whitespace().next()?.to_ascii_lowercase();
    match word.as_str() {
        "on" | "1" | "true" => Some(OutletState::On),
        "off" | "0" | "false" => Some(OutletState::Off),
        _ => None,
    }
}

impl CommandDriver {
    async fn run(&self, argv: &[String], outlet: &str) -> Result<String, DriverError> {
        let args: Vec<String> = argv.iter().map(|a| a.replace("{outlet}", outlet)).collect();
        let Some((program, rest)) = args.split_first() else {
            return Err(DriverError::Refused("empty command".into()));
        };
        let shown = args.join(" ");
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(rest)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .map_err(|e| DriverError::Unreachable(format!("cannot run `{shown}`: {e}")))?;
        let mut guard = GroupGuard {
            pgid: child.id().and_then(|id| i32::try_from(id).ok()),
        };
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| DriverError::Refused(format!("`{shown}`: {e}")))?;
        // The leader has exited and been reaped: its group is no longer ours to signal.
        guard.pgid = None;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let why = match out.status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".to_owned(),
        };
        let said = if out.stderr.iter().any(|b| !b.is_ascii_whitespace()) {
            tail(&out.stderr, 300)
        } else {
            tail(&out.stdout, 300)
        };
        Err(DriverError::Refused(if said.is_empty() {
            format!("`{shown}` {why}")
        } else {
            format!("`{shown}` {why}: {said}")
        }))
    }
}

impl PowerDriver for CommandDriver {
    fn kind(&self) -> &'static str {
        "command"
    }

    fn set(&self, outlet: &str, state: OutletState) -> DriverFuture<'_, ()> {
        let outlet = outlet.to_owned();
        Box::pin(async move {
            let argv = match state {
                OutletState::On => &self.on,
                OutletState::Off => &self.off,
            };
            self.run(argv, &outlet).await.map(|_| ())
        })
    }

    fn get(&self, outlet: &str) -> DriverFuture<'_, OutletState> {
        let outlet = outlet.to_owned();
        Box::pin(async move {
            let Some(argv) = &self.status else {
                return Err(DriverError::CannotRead);
            };
            let out = self.run(argv, &outlet).await?;
            parse_state(&out).ok_or_else(|| {
                DriverError::BadAnswer(format!(
                    "status command printed `{}`; expected on/off or 1/0",
                    tail(out.as_bytes(), 100)
                ))
            })
        })
    }

    fn can_read(&self) -> bool {
        self.status.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        assert_eq!(parse_state("ON\n"), Some(OutletState::On));
        assert_eq!(parse_state("  off (since 3s)"), Some(OutletState::Off));
        assert_eq!(parse_state("1"), Some(OutletState::On));
        assert_eq!(parse_state("0\n"), Some(OutletState::Off));
        assert_eq!(parse_state("maybe"), None);
        assert_eq!(parse_state(""), None);
    }

    #[test]
    fn empty_command_is_located() {
        let src = Source::from_text("p.toml", "driver = \"command\"\non = []\noff = [\"x\"]\n");
        let Err(e) = load(&src) else {
            panic!("must fail")
        };
        assert_eq!(e.line(), 2);
        assert_eq!(e.key(), "on");
    }
}
