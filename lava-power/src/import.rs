//! `lava-power import-pdudaemon`: pdudaemon's JSON config turned into one lava-power TOML file per
//! PDU, for the drivers that have an equivalent here; the others are named with what to do.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context};
use serde_json::Value;

/// One PDU's conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Converted {
    /// The PDU's name and its TOML config.
    Toml { name: String, toml: String },
    /// Why it could not be converted.
    Unmapped { name: String, why: String },
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// pdudaemon's APC telnet drivers (menu dialogue).
const APC_TELNET: &[&str] = &[
    "apc7900", "apc7920", "apc7921", "apc7932", "apc7952", "apc8959", "apc9210", "apc9218",
];

/// Converts one `pdus` entry.
pub fn convert(name: &str, settings: &Value) -> Converted {
    let unmapped = |why: String| Converted::Unmapped {
        name: name.to_owned(),
        why,
    };
    if crate::config::valid_pdu_name(name).is_err() {
        return unmapped(format!(
            "`{name}` cannot be a lava-power PDU name (letters, digits, `.`, `_`, `-`)"
        ));
    }
    let driver = settings.get("driver").and_then(Value::as_str).unwrap_or("");
    let mut t = format!(
        "# converted from pdudaemon's `{driver}` PDU `{name}` by lava-power import-pdudaemon\n"
    );
    match driver {
        "localcmdline" => {
            let cmd = |key: &str| {
                string(settings.get(key))
                    .map(|c| c.replace("%s", "{outlet}").replace("%d", "{outlet}"))
            };
            let (Some(on), Some(off)) = (cmd("cmd_on"), cmd("cmd_off")) else {
                return unmapped("localcmdline without both cmd_on and cmd_off".into());
            };
            t.push_str("# pdudaemon ran these through a shell; they still do, via sh -c\n");
            t.push_str("driver = \"command\"\n");
            let _ = writeln!(t, "on = [\"sh\", \"-c\", {}]", quote(&on));
            let _ = writeln!(t, "off = [\"sh\", \"-c\", {}]", quote(&off));
        }
        "modbustcp" => {
            t.push_str("driver = \"modbus-tcp\"\n");
            let _ = writeln!(t, "host = {}", quote(name));
            if let Some(p) = int(settings.get("port")) {
                let _ = writeln!(t, "port = {p}");
            }
            if let Some(u) = int(settings.get("unit").or(settings.get("slave"))) {
                let _ = writeln!(t, "unit = {u}");
            }
        }
        d if APC_TELNET.contains(&d) => {
            t.push_str("driver = \"apc-telnet\"\n");
            let _ = writeln!(t, "host = {}", quote(name));
            if let Some(p) = int(settings.get("telnetport")) {
                let _ = writeln!(t, "port = {p}");
            }
            let user = string(settings.get("username")).unwrap_or_else(|| "apc".into());
            let pass = string(settings.get("password")).unwrap_or_else(|| "apc".into());
            let _ = writeln!(t, "username = {}", quote(&user));
            let _ = writeln!(t, "password = {}", quote(&pass));
        }
        "" => return unmapped("no `driver` key".into()),
        other => {
            return unmapped(format!(
                "pdudaemon's `{other}` driver has no direct lava-power equivalent: write \
                 /etc/lava-power/{name}.toml by hand with the snmp, http or command driver \
                 (docs/power-drivers.md)"
            ))
        }
    }
    if let Some(r) = int(settings.get("retries")) {
        let _ = writeln!(t, "retries = {r}");
    }
    if let Some(r) = int(settings.get("retrydelay")) {
        let _ = writeln!(t, "retry_delay = \"{r}s\"");
    }
    Converted::Toml {
        name: name.to_owned(),
        toml: t,
    }
}

/// Converts every PDU of a pdudaemon config file.
pub fn convert_file(text: &str) -> anyhow::Result<Vec<Converted>> {
    let v: Value = serde_json::from_str(text).context("not valid JSON")?;
    let Some(pdus) = v.get("pdus").and_then(Value::as_object) else {
        bail!("no `pdus` object: is this pdudaemon's config?");
    };
    Ok(pdus.iter().map(|(name, s)| convert(name, s)).collect())
}

/// The `import-pdudaemon` command: prints or writes the TOML files; fails when some PDU could
/// not be converted (after writing the others).
pub fn run(file: &Path, out: Option<&Path>) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let converted =
        convert_file(&text).with_context(|| format!("{}: cannot convert", file.display()))?;
    let mut unmapped = 0;
    for c in &converted {
        match c {
            Converted::Toml { name, toml } => match out {
                Some(dir) => {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                    let path = dir.join(format!("{name}.toml"));
                    std::fs::write(&path, toml)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    println!("wrote {}", path.display());
                }
                None => println!("### {name}.toml\n{toml}"),
            },
            Converted::Unmapped { name, why } => {
                eprintln!("{name}: not converted: {why}");
                unmapped += 1;
            }
        }
    }
    if unmapped > 0 {
        bail!("{unmapped} of {} PDU(s) not converted", converted.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localcmdline_becomes_a_loadable_command_config() {
        let conf = r#"{"daemon":{},"pdus":{"test":{"driver":"localcmdline",
            "cmd_on":"echo '%s on' >> /tmp/pdu","cmd_off":"echo '%s off' >> /tmp/pdu","retries":2}}}"#;
        let out = convert_file(conf).expect("converts");
        let Some(Converted::Toml { toml, .. }) = out.first() else {
            panic!("{out:?}")
        };
        let src = lava_common::Source::from_text("test.toml", toml.clone());
        let loaded = crate::config::load_source(&src).expect("loads");
        assert_eq!(loaded.driver.kind(), "command");
        assert_eq!(loaded.common.retries, 2);
        assert!(toml.contains("echo '{outlet} on' >> /tmp/pdu"), "{toml}");
    }

    #[test]
    fn unknown_drivers_are_named() {
        let out = convert_file(r#"{"pdus":{"x":{"driver":"ykush"}}}"#).expect("converts");
        assert!(matches!(&out[0], Converted::Unmapped { why, .. } if why.contains("ykush")));
    }
}
