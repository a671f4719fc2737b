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
    with_boards(&mut list, registry, host);
    Ok(list)
}

/// Names each adapter's board (when the registry knows it on `host`) and sorts by devnode.
fn with_boards(list: &mut [AdapterInfo], registry: Option<&Registry>, host: &str) {
    if let Some(reg) = registry {
        for a in list.iter_mut() {
            a.board = reg
                .board_for_adapter(&a.props, host)
                .map(|b| b.name.clone());
        }
    }
    list.sort_by(|a, b| a.devnode.cmp(&b.devnode));
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

#[cfg(test)]
mod tests {
    use super::*;
    use lava_common::Source;
    use std::os::unix::fs::symlink;

    const REGISTRY: &str = r#"
[boards.panda01]
host = "worker01"
port = 7001
adapter = { serial = "FTDI_FT232R_USB_UART_A601EGHT" }

[boards.juno-a]
host = "worker01"
port = 7002
adapter = { serial = "FT4232H0042", interface = 2 }

[boards.rpi4]
host = "worker01"
port = 7003
adapter = { path = "pci-0000:00:14.0-usb-0:3:1.0" }

[boards.elsewhere]
host = "worker02"
port = 7001
adapter = { serial = "B0000001" }
"#;

    fn registry() -> Registry {
        Registry::parse(&Source::from_text("boards.toml", REGISTRY)).expect("registry")
    }

    fn props(
        serial: Option<&str>,
        short: Option<&str>,
        iface: Option<&str>,
        path: Option<&str>,
    ) -> AdapterProps {
        AdapterProps {
            id_serial: serial.map(str::to_owned),
            id_serial_short: short.map(str::to_owned),
            interface_num: iface.map(str::to_owned),
            id_path: path.map(str::to_owned),
        }
    }

    #[test]
    fn identify_names_the_board_of_this_host_only() {
        let reg = registry();
        let ftdi = props(
            Some("FTDI_FT232R_USB_UART_A601EGHT"),
            Some("A601EGHT"),
            Some("00"),
            Some("pci-0000:00:14.0-usb-0:2:1.0"),
        );
        let panda = Some("LAVA_BOARD=panda01\n");
        assert_eq!(identify(&reg, &ftdi, "worker01").as_deref(), panda);
        assert_eq!(
            identify(&reg, &ftdi, "worker01.lab.example").as_deref(),
            panda
        );
        assert_eq!(identify(&reg, &ftdi, "worker02"), None);

        // A multi-port chip: the serial matches ID_SERIAL_SHORT, the interface picks the port.
        let port = |i: &str| {
            props(
                Some("FTDI_Quad_RS232-HS_FT4232H0042"),
                Some("FT4232H0042"),
                Some(i),
                None,
            )
        };
        assert_eq!(
            identify(&reg, &port("02"), "worker01").as_deref(),
            Some("LAVA_BOARD=juno-a\n")
        );
        assert_eq!(identify(&reg, &port("01"), "worker01"), None);

        // No serial number: the USB port path.
        let pl2303 = props(
            Some("Prolific_USB-Serial"),
            None,
            Some("00"),
            Some("pci-0000:00:14.0-usb-0:3:1.0"),
        );
        assert_eq!(
            identify(&reg, &pl2303, "worker01").as_deref(),
            Some("LAVA_BOARD=rpi4\n")
        );

        assert_eq!(identify(&reg, &AdapterProps::default(), "worker01"), None);
        let other = props(None, Some("B0000001"), None, None);
        assert_eq!(identify(&reg, &other, "worker01"), None);
        assert_eq!(
            identify(&reg, &other, "worker02").as_deref(),
            Some("LAVA_BOARD=elsewhere\n")
        );
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, format!("{text}\n")).expect("write");
    }

    /// A sysfs tree as the kernel lays it out for an FTDI (usb-serial: tty → port → interface)
    /// and a CDC-ACM device without serial number (tty → interface), plus a virtual console.
    fn fake_sysfs(root: &Path) -> (PathBuf, PathBuf) {
        let sys = root.join("sys");
        let dev = root.join("dev");
        let usb = sys.join("devices/pci0000:00/0000:00:14.0/usb1");

        let ftdi = usb.join("1-2");
        write(&ftdi.join("idVendor"), "0403");
        write(&ftdi.join("idProduct"), "6001");
        write(&ftdi.join("manufacturer"), "FTDI");
        write(&ftdi.join("product"), "FT232R USB UART");
        write(&ftdi.join("serial"), "A601EGHT");
        let ftdi_if = ftdi.join("1-2:1.0");
        write(&ftdi_if.join("bInterfaceNumber"), "00");
        let port = ftdi_if.join("ttyUSB0");
        std::fs::create_dir_all(port.join("tty/ttyUSB0")).expect("mkdir");
        symlink("../../../ttyUSB0", port.join("tty/ttyUSB0/device")).expect("link");

        let acm = usb.join("1-3");
        write(&acm.join("idVendor"), "2e8a");
        write(&acm.join("idProduct"), "000a");
        write(&acm.join("product"), "Pico");
        let acm_if = acm.join("1-3:1.0");
        write(&acm_if.join("bInterfaceNumber"), "00");
        std::fs::create_dir_all(acm_if.join("tty/ttyACM0")).expect("mkdir");
        symlink("../../../1-3:1.0", acm_if.join("tty/ttyACM0/device")).expect("link");

        std::fs::create_dir_all(sys.join("devices/virtual/tty/tty0")).expect("mkdir");
        let class = sys.join("class/tty");
        std::fs::create_dir_all(&class).expect("mkdir");
        symlink(port.join("tty/ttyUSB0"), class.join("ttyUSB0")).expect("link");
        symlink(acm_if.join("tty/ttyACM0"), class.join("ttyACM0")).expect("link");
        symlink(sys.join("devices/virtual/tty/tty0"), class.join("tty0")).expect("link");

        std::fs::create_dir_all(dev.join("serial/by-id")).expect("mkdir");
        symlink(
            "../../ttyUSB0",
            dev.join("serial/by-id/usb-FTDI_FT232R_USB_UART_A601EGHT-if00-port0"),
        )
        .expect("link");
        (sys, dev)
    }

    #[test]
    fn sysfs_gives_the_properties_udev_would() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (sys, dev) = fake_sysfs(tmp.path());
        let mut list = list_from_sysfs(&sys, &dev).expect("list");
        with_boards(&mut list, Some(&registry()), "worker01");
        assert_eq!(list.len(), 2, "{list:#?}");

        let acm = &list[0];
        assert_eq!(acm.devnode, dev.join("ttyACM0"));
        assert_eq!(
            acm.props,
            props(
                Some("2e8a_Pico"),
                None,
                Some("00"),
                Some("pci-0000:00:14.0-usb-0:3:1.0")
            )
        );
        assert_eq!(acm.board.as_deref(), Some("rpi4"));
        assert!(acm.by_id.is_empty());
        assert_eq!(acm.vendor, None);
        assert_eq!(acm.model.as_deref(), Some("Pico"));

        let ftdi = &list[1];
        assert_eq!(ftdi.devnode, dev.join("ttyUSB0"));
        assert_eq!(
            ftdi.props,
            props(
                Some("FTDI_FT232R_USB_UART_A601EGHT"),
                Some("A601EGHT"),
                Some("00"),
                Some("pci-0000:00:14.0-usb-0:2:1.0")
            )
        );
        assert_eq!(
            ftdi.by_id,
            vec![PathBuf::from(
                "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A601EGHT-if00-port0"
            )]
        );
        assert_eq!(ftdi.vendor.as_deref(), Some("FTDI"));
        assert_eq!(ftdi.board.as_deref(), Some("panda01"));
    }

    #[test]
    fn sysfs_without_tty_class_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = list_from_sysfs(tmp.path(), tmp.path()).expect_err("no class/tty");
        assert!(err.to_string().contains("class/tty"), "{err}");
    }

    #[test]
    fn this_machine_lists_without_error() {
        // Whatever is plugged in here (usually nothing): the real udev or /sys is readable.
        list_adapters(Some(&registry()), "worker01").expect("list adapters");
    }

    #[test]
    fn udev_style_names_and_paths() {
        assert_eq!(udev_sanitize("FT232R USB UART"), "FT232R_USB_UART");
        assert_eq!(udev_sanitize("  Silicon  Labs "), "Silicon_Labs");
        assert_eq!(udev_sanitize("a/b(c)"), "a_b_c_");
        let platform = Path::new("/sys/devices/platform/xhci-hcd.0.auto/usb1/1-1/1-1.4/1-1.4:1.2");
        assert_eq!(
            id_path(platform).as_deref(),
            Some("platform-xhci-hcd.0.auto-usb-0:1.4:1.2")
        );
    }

    fn info(devnode: &str, short: Option<&str>, iface: &str, path: &str) -> AdapterInfo {
        AdapterInfo {
            devnode: PathBuf::from(devnode),
            by_id: short
                .map(|s| {
                    vec![PathBuf::from(format!(
                        "/dev/serial/by-id/usb-FTDI_{s}-if{iface}-port0"
                    ))]
                })
                .unwrap_or_default(),
            props: props(
                short.map(|s| format!("FTDI_Quad_{s}")).as_deref(),
                short,
                Some(iface),
                Some(path),
            ),
            vendor: Some("FTDI".to_owned()),
            model: Some("Quad RS232-HS".to_owned()),
            board: None,
        }
    }

    #[test]
    fn the_table_shows_boards_and_how_to_claim_the_others() {
        let mut list = vec![
            info(
                "/dev/ttyUSB0",
                Some("FT4232H0042"),
                "00",
                "pci-0000:00:14.0-usb-0:2:1.0",
            ),
            info(
                "/dev/ttyUSB2",
                Some("FT4232H0042"),
                "02",
                "pci-0000:00:14.0-usb-0:2:1.2",
            ),
            info(
                "/dev/ttyUSB4",
                Some("A601EGHT"),
                "00",
                "pci-0000:00:14.0-usb-0:4:1.0",
            ),
            info("/dev/ttyUSB5", None, "00", "pci-0000:00:14.0-usb-0:5:1.0"),
        ];
        with_boards(&mut list, Some(&registry()), "worker01");
        assert_eq!(list[1].board.as_deref(), Some("juno-a"));
        let out = format_adapters(&list);
        let head: Vec<&str> = out
            .lines()
            .next()
            .expect("header")
            .split_whitespace()
            .collect();
        assert_eq!(head, ["DEVICE", "BOARD", "SERIAL", "IF", "ADAPTER"]);
        assert!(out.contains("/dev/ttyUSB2  juno-a"), "{out}");
        assert!(
            out.contains("FT4232H0042  02  FTDI Quad RS232-HS\n"),
            "{out}"
        );
        assert!(
            out.contains("    /dev/serial/by-id/usb-FTDI_FT4232H0042-if02-port0\n"),
            "{out}"
        );
        assert!(
            out.contains("    ID_PATH=pci-0000:00:14.0-usb-0:5:1.0\n"),
            "{out}"
        );
        // Unknown adapters get the line that claims them; shared serials name the interface.
        assert!(
            out.contains("adapter = { serial = \"FT4232H0042\", interface = 0 }"),
            "{out}"
        );
        assert!(out.contains("adapter = { serial = \"A601EGHT\" }"), "{out}");
        assert!(
            out.contains("adapter = { path = \"pci-0000:00:14.0-usb-0:5:1.0\" }"),
            "{out}"
        );
        assert!(
            !out.contains("interface = 2"),
            "a claimed adapter gets no hint: {out}"
        );
        assert_eq!(format_adapters(&[]), "no USB serial adapters plugged in\n");
    }
}
