//! The person's terminal: raw mode for an interactive session, and its restoration on every way
//! out — normal return, error, signal, lost connection and panic. The saved settings live in one
//! process-wide slot so the panic hook can restore them too.

use std::io::IsTerminal;
use std::sync::Mutex;

use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

/// The terminal settings to put back, while raw mode is on.
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

/// Whether standard input is a terminal (a person, or LAVA's pexpect pty).
pub fn stdin_is_tty() -> bool {
    std::io::stdin().is_terminal()
}

/// Raw mode on standard input for as long as the guard lives.
#[derive(Debug)]
pub struct RawMode(());

impl RawMode {
    /// Switches standard input to raw mode (no echo, no line editing, no signals from ^C, 8 bits
    /// clean) and installs the panic hook that restores it.
    pub fn enable() -> Result<RawMode, nix::Error> {
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        if let Ok(mut slot) = SAVED.lock() {
            *slot = Some(saved);
        }
        install_panic_hook();
        tcsetattr(&stdin, SetArg::TCSADRAIN, &raw)?;
        Ok(RawMode(()))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts the saved terminal settings back, if raw mode is on. Safe to call more than once.
pub fn restore() {
    let saved = match SAVED.lock() {
        Ok(mut slot) => slot.take(),
        // A panic while the lock was held: the settings are still there.
        Err(poisoned) => poisoned.into_inner().take(),
    };
    if let Some(t) = saved {
        // TCSADRAIN: let what we wrote reach the terminal first. The terminal may be gone (SIGHUP
        // after a hang-up); nothing can be done then.
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, &t);
    }
}

fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}
