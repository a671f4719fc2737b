//! systemd's service notification protocol (sd_notify): READY, STOPPING, STATUS and WATCHDOG
//! messages on `$NOTIFY_SOCKET`, spoken directly over a datagram socket so no C library is needed.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends one notification; does nothing when not run by systemd with `Type=notify`.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let result = if let Some(abstract_name) = bytes.strip_prefix(b"@") {
        send_abstract(&sock, abstract_name, state)
    } else {
        sock.send_to(state.as_bytes(), &path).map(|_| ())
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

fn send_abstract(sock: &UnixDatagram, name: &[u8], state: &str) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    sock.send_to_addr(state.as_bytes(), &addr).map(|_| ())
}

/// Tells systemd the service is serving.
pub fn ready(status: &str) {
    notify(&format!("READY=1\nSTATUS={status}"));
}

/// Tells systemd the service is shutting down.
pub fn stopping() {
    notify("STOPPING=1");
}

/// Updates the status line `systemctl status` shows.
pub fn status(status: &str) {
    notify(&format!("STATUS={status}"));
}

/// How often to ping the watchdog (half of `WatchdogSec`), when systemd asked for pings.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// Pings the watchdog forever at the interval systemd asked for; returns at once when it did not
/// ask, so an instance run by hand has no timer waking it.
pub async fn watchdog_task() {
    let Some(every) = watchdog_interval() else {
        return;
    };
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        notify("WATCHDOG=1");
    }
}
