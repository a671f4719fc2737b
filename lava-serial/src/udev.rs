//! The udev side of lava-serial: `udev-identify` (which board is this adapter), `adapters` (what
//! is plugged in now) and finding a board's tty by its adapter's udev properties. Where no udevd
//! runs, adapters are read from sysfs and `/dev/serial/by-id` instead.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use lava_common::{Adapter, AdapterProps, Registry};

use crate::watch::UDEV_CONTROL;

/// Why the adapters could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum UdevError {
    #[error("cannot enumerate tty devices through udev: {0}")]
    Udev(#[source] std::io::Error),
    #[error("cannot read {}: {source}", path.display())]
    Sysfs {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What `lava-serial udev-identify` prints for udev's `IMPORT{program}`: `LAVA_BOARD=<name>\n`
/// when the registry knows the adapter with these properties on this host, `None` (print
/// nothing) otherwise.
pub fn identify(registry: &Registry, props: &AdapterProps, host: &str) -> Option<String> {
    registry
        .board_for_adapter(props, host)
        .map(|b| format!("LAVA_BOARD={}\n", b.name))
}

/// One USB serial adapter plugged in now, as `lava-serial adapters` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdapterInfo {
    /// Its node now (`/dev/ttyUSB0`): changes from plug to plug.
    pub devnode: PathBuf,
    /// Its stable `/dev/serial/by-id/...` links.
    pub by_id: Vec<PathBuf>,
    /// The udev properties the registry matches on.
    pub props: AdapterProps,
    pub vendor: Option<String>,
    pub model: Option<String>,
    /// The registry's board for it on this host, if any.
    pub board: Option<String>,
}

/// Whether udevd runs here (its database is then the source of truth).
fn udev_running() -> bool {
    Path::new(UDEV_CONTROL).exists()
}

fn prop(dev: &udev::Device, key: &str) -> Option<String> {
    dev.property_value(key)
        .map(|v| v.to_string_lossy().into_owned())
        .filter(|v| !v.is_empty())
}

/// The registry-relevant udev properties of a device from the udev database.
fn props_of(dev: &udev::Device) -> AdapterProps {
    AdapterProps {
        id_serial: prop(dev, "ID_SERIAL"),
        id_serial_short: prop(dev, "ID_SERIAL_SHORT"),
        interface_num: prop(dev, "ID_USB_INTERFACE_NUM"),
        id_path: prop(dev, "ID_PATH"),
    }
}

fn tty_devices() -> std::io::Result<Vec<udev::Device>> {
    let mut en = udev::Enumerator::new()?;
    en.match_subsystem("tty")?;
    Ok(en.scan_devices()?.collect())
}

/// The devnode of the tty whose udev properties match `adapter`, from the udev database.
pub(crate) fn find_tty(adapter: &Adapter) -> std::io::Result<Option<PathBuf>> {
    Ok(tty_devices()?.into_iter().find_map(|dev| {
        if adapter.matches(&props_of(&dev)) {
            dev.devnode().map(Path::to_owned)
        } else {
            None
        }
    }))
}

/// The USB serial adapters plugged in now, from the udev database, or from sysfs and
/// `/dev/serial/by-id` where no udevd runs; each with its board when `registry` knows it on
/// `host`. Sorted by devnode.
pub fn list_adapters(
    registry: Option<&Registry>,
    host: &str,
) -> Result<Vec<AdapterInfo>, UdevError> {
    let mut list = if udev_running() {
        list_from_udev()?
    } else {
        list_from_sysfs(Path::new("/sys"), Path::new("/dev"))?
    };
    if let Some(reg) = registry {
        for a in &mut list {
            a.board = reg
                .board_for_adapter(&a.props, host)
                .map(|b| b.name.clone());
        }
    }
    list.sort_by(|a, b| a.devnode.cmp(&b.devnode));
    Ok(list)
}

fn list_from_udev() -> Result<Vec<AdapterInfo>, UdevError> {
    let mut out = Vec::new();
    for dev in tty_devices().map_err(UdevError::Udev)? {
        if prop(&dev, "ID_BUS").as_deref() != Some("usb") {
            continue;
        }
        let Some(devnode) = dev.devnode().map(Path::to_owned) else {
            continue;
        };
        let by_id = prop(&dev, "DEVLINKS")
            .unwrap_or_default()
            .split_whitespace()
            .filter(|l| l.starts_with("/dev/serial/by-id/"))
            .map(PathBuf::from)
            .collect();
        out.push(AdapterInfo {
            devnode,
            by_id,
            props: props_of(&dev),
            vendor: prop(&dev, "ID_VENDOR_FROM_DATABASE").or_else(|| prop(&dev, "ID_VENDOR")),
            model: prop(&dev, "ID_MODEL_FROM_DATABASE").or_else(|| prop(&dev, "ID_MODEL")),
            board: None,
        });
    }
    Ok(out)
}

fn read_attr(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// udev's `udev_replace_whitespace` + `udev_replace_chars`: runs of whitespace become one `_`,
/// characters outside `[A-Za-z0-9#+-.:=@_]` (and non-ASCII) become `_`.
fn udev_sanitize(s: &str) -> String {
    let mut out = String::new();
    let mut space = false;
    for c in s.trim().chars() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space {
            out.push('_');
            space = false;
        }
        if c.is_ascii_alphanumeric() || "#+-.:=@_".contains(c) || !c.is_ascii() {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    out
}

/// udev's `ID_PATH` for a USB interface, from its sysfs path: `pci-0000:00:14.0-usb-0:2.3:1.0`
/// (or `platform-NAME-usb-...` on boards without PCI).
fn id_path(interface: &Path) -> Option<String> {
    let name = interface.file_name()?.to_str()?;
    let (_, port) = name.split_once('-')?;
    let mut controller = None;
    let mut under_platform = false;
    for c in interface.components() {
        let c = c.as_os_str().to_str()?;
        if c.starts_with("usb") && c[3..].chars().all(|d| d.is_ascii_digit()) {
            break;
        }
        if c == "platform" {
            under_platform = true;
            continue;
        }
        let b = c.as_bytes();
        let pci = b.len() == 12 && b[4] == b':' && b[7] == b':' && b[10] == b'.';
        if pci {
            controller = Some(format!("pci-{c}"));
        } else if under_platform && !c.starts_with("pci") {
            controller = Some(format!("platform-{c}"));
        }
    }
    let usb = format!("usb-0:{port}");
    Some(match controller {
        Some(c) => format!("{c}-{usb}"),
        None => usb,
    })
}

/// The adapters from a sysfs tree (`sys`, normally `/sys`) and a device tree (`dev`, normally
/// `/dev`, for `serial/by-id`), computing the properties udev's usb_id/path_id builtins would.
fn list_from_sysfs(sys: &Path, dev: &Path) -> Result<Vec<AdapterInfo>, UdevError> {
    let class = sys.join("class/tty");
    let entries = std::fs::read_dir(&class).map_err(|source| UdevError::Sysfs {
        path: class.clone(),
        source,
    })?;
    let mut by_id: HashMap<String, Vec<PathBuf>> = HashMap::new();
    let by_id_dir = dev.join("serial/by-id");
    if let Ok(links) = std::fs::read_dir(&by_id_dir) {
        for link in links.flatten() {
            if let Some(tty) = std::fs::read_link(link.path())
                .ok()
                .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
            {
                by_id
                    .entry(tty)
                    .or_default()
                    .push(Path::new("/dev/serial/by-id").join(link.file_name()));
            }
        }
    }
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // Virtual ttys have no `device`; USB ones resolve into a USB interface.
        let Ok(device) = std::fs::canonicalize(entry.path().join("device")) else {
            continue;
        };
        let interface = device
            .ancestors()
            .find(|d| d.join("bInterfaceNumber").is_file())
            .map(Path::to_owned);
        let usb = device
            .ancestors()
            .find(|d| d.join("idVendor").is_file())
            .map(Path::to_owned);
        let Some(usb) = usb else { continue };
        let serial = read_attr(&usb, "serial");
        let manufacturer = read_attr(&usb, "manufacturer");
        let product = read_attr(&usb, "product");
        let vendor_str = udev_sanitize(
            manufacturer
                .clone()
                .or_else(|| read_attr(&usb, "idVendor"))
                .as_deref()
                .unwrap_or(""),
        );
        let model_str = udev_sanitize(
            product
                .clone()
                .or_else(|| read_attr(&usb, "idProduct"))
                .as_deref()
                .unwrap_or(""),
        );
        let serial_short = serial.as_deref().map(udev_sanitize);
        let id_serial = match &serial_short {
            Some(s) => format!("{vendor_str}_{model_str}_{s}"),
            None => format!("{vendor_str}_{model_str}"),
        };
        let mut links = by_id.remove(&name).unwrap_or_default();
        links.sort();
        out.push(AdapterInfo {
            devnode: dev.join(&name),
            by_id: links,
            props: AdapterProps {
                id_serial: Some(id_serial),
                id_serial_short: serial_short,
                interface_num: interface
                    .as_deref()
                    .and_then(|i| read_attr(i, "bInterfaceNumber")),
                id_path: interface.as_deref().and_then(id_path),
            },
            vendor: manufacturer,
            model: product,
            board: None,
        });
    }
    Ok(out)
}

/// The listing as a table for `lava-serial adapters`, then, for adapters no board claims, the
/// `boards.toml` lines that would claim them.
pub fn format_adapters(list: &[AdapterInfo]) -> String {
    if list.is_empty() {
        return "no USB serial adapters plugged in\n".to_owned();
    }
    let rows: Vec<[String; 5]> = list
        .iter()
        .map(|a| {
            let what = match (&a.vendor, &a.model) {
                (Some(v), Some(m)) => format!("{v} {m}"),
                (Some(v), None) => v.clone(),
                (None, Some(m)) => m.clone(),
                (None, None) => "-".to_owned(),
            };
            [
                a.devnode.display().to_string(),
                a.board.clone().unwrap_or_else(|| "-".to_owned()),
                a.props
                    .id_serial_short
                    .clone()
                    .or_else(|| a.props.id_serial.clone())
                    .unwrap_or_else(|| "-".to_owned()),
                a.props
                    .interface_num
                    .clone()
                    .unwrap_or_else(|| "-".to_owned()),
                what,
            ]
        })
        .collect();
    let head = ["DEVICE", "BOARD", "SERIAL", "IF", "ADAPTER"];
    let mut width = head.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: [&str; 5]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ", w = width[i]);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut out, head);
    for (r, a) in rows.iter().zip(list) {
        line(&mut out, [&r[0], &r[1], &r[2], &r[3], &r[4]]);
        for link in &a.by_id {
            out.push_str(&format!("    {}\n", link.display()));
        }
        if a.by_id.is_empty() {
            if let Some(p) = &a.props.id_path {
                out.push_str(&format!("    ID_PATH={p}\n"));
            }
        }
    }
    let unknown: Vec<&AdapterInfo> = list.iter().filter(|a| a.board.is_none()).collect();
    if !unknown.is_empty() {
        out.push_str("\nNot in the registry; to claim one, add to boards.toml:\n");
        for a in unknown {
            out.push_str(&format!("  # {}\n", a.devnode.display()));
            out.push_str(&format!("  {}\n", adapter_snippet(a, list)));
        }
    }
    out
}

/// The `adapter = {...}` line that identifies `a` among `all`: its serial number (with the
/// interface when several ports share it), else its USB port path.
fn adapter_snippet(a: &AdapterInfo, all: &[AdapterInfo]) -> String {
    let iface = a
        .props
        .interface_num
        .as_deref()
        .and_then(|n| u8::from_str_radix(n, 16).ok());
    let key = a
        .props
        .id_serial_short
        .as_ref()
        .map(|s| ("serial", s))
        .or_else(|| a.props.id_path.as_ref().map(|p| ("path", p)))
        .or_else(|| a.props.id_serial.as_ref().map(|s| ("serial", s)));
    let Some((kind, value)) = key else {
        return "# no serial number or USB path known for it".to_owned();
    };
    let shared = all
        .iter()
        .filter(|b| match kind {
            "serial" => {
                b.props.id_serial_short.as_ref() == Some(value)
                    || b.props.id_serial.as_ref() == Some(value)
            }
            _ => b.props.id_path.as_ref() == Some(value),
        })
        .count()
        > 1;
    match (shared, iface) {
        (true, Some(i)) => format!("adapter = {{ {kind} = \"{value}\", interface = {i} }}"),
        _ => format!("adapter = {{ {kind} = \"{value}\" }}"),
    }
}
