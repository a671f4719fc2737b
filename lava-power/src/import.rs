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
            t.push_str("# pdudaemon addressed coil N for port N\ncoil_offset = 1\n");
        }
        "snmpv1" | "snmpv3" => match snmp(name, driver, settings, &mut t) {
            Ok(()) => {}
            Err(why) => return unmapped(why),
        },
        "sonoff_s20_tasmota" | "brennenstuhl_wspl01_tasmota" => {
            let count = if driver == "sonoff_s20_tasmota" { 1 } else { 2 };
            t.push_str("driver = \"http\"\n");
            let _ = writeln!(t, "host = {}", quote(name));
            t.push_str("url = \"http://{host}/cm?cmnd=Power{outlet}%20{state}\"\n");
            t.push_str("on_state = \"On\"\noff_state = \"Off\"\n");
            t.push_str("state_url = \"http://{host}/cm?cmnd=Power{outlet}\"\n");
            t.push_str("state_pointer = \"/POWER{outlet}\"\n");
            let _ = writeln!(t, "outlet_count = {count}");
            if let (Some(u), Some(p)) = (
                string(settings.get("username")),
                string(settings.get("password")),
            ) {
                let _ = writeln!(t, "username = {}", quote(&u));
                let _ = writeln!(t, "password = {}", quote(&p));
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

/// pdudaemon's `snmpv1`/`snmpv3` PDUs name a MIB object (resolved by pysnmp from the MIB); the
/// APC PowerNet objects map to our presets, a numeric OID (with `*` for the outlet) to `oid`.
fn snmp(name: &str, driver: &str, settings: &Value, t: &mut String) -> Result<(), String> {
    let mib = string(settings.get("mib")).unwrap_or_default();
    let point = string(settings.get("controlpoint")).unwrap_or_default();
    t.push_str("driver = \"snmp\"\n");
    let _ = writeln!(t, "host = {}", quote(name));
    let _ = writeln!(
        t,
        "version = \"{}\"",
        if driver == "snmpv3" { "3" } else { "1" }
    );
    let preset = match (mib.as_str(), point.as_str()) {
        ("PowerNet-MIB", "sPDUOutletCtl") => Some("apc"),
        ("PowerNet-MIB", "rPDUOutletControlOutletCommand") => Some("apc-rpdu"),
        _ => None,
    };
    match preset {
        Some(p) => {
            let _ = writeln!(t, "preset = \"{p}\"");
        }
        None => {
            let numeric = |s: &str| {
                !s.is_empty()
                    && s.trim_start_matches('.')
                        .split('.')
                        .all(|p| p == "*" || p.parse::<u32>().is_ok())
            };
            if !numeric(&point) {
                return Err(format!(
                    "snmp object `{mib}::{point}` is named by MIB: look its numeric OID up \
                     (snmptranslate -On {mib}::{point}) and write /etc/lava-power/{name}.toml with \
                     driver = \"snmp\" and oid = \"<numeric OID>.{{outlet}}\" (docs/power-drivers.md)"
                ));
            }
            let oid = if point.contains('*') {
                point.replace('*', "{outlet}")
            } else {
                format!("{}.{{outlet}}", point.trim_end_matches('.'))
            };
            let _ = writeln!(t, "oid = {}", quote(oid.trim_start_matches('.')));
            let value = |k: &str| int(settings.get(k));
            let (Some(on), Some(off)) = (value("onsetting"), value("offsetting")) else {
                return Err("snmp PDU without onsetting/offsetting".into());
            };
            let _ = writeln!(t, "on_value = {on}\noff_value = {off}");
        }
    }
    if driver == "snmpv3" {
        let Some(user) = string(settings.get("username")) else {
            return Err("snmpv3 PDU without username".into());
        };
        let _ = writeln!(t, "username = {}", quote(&user));
        let proto = |k: &str| {
            string(settings.get(k))
                .unwrap_or_default()
                .to_ascii_lowercase()
        };
        if let Some(a) = string(settings.get("authpassphrase")) {
            let auth = if proto("auth_protocol").contains("md5") {
                "MD5"
            } else {
                "SHA"
            };
            let _ = writeln!(
                t,
                "auth_protocol = \"{auth}\"\nauth_password = {}",
                quote(&a)
            );
        }
        if let Some(p) = string(settings.get("privpassphrase")) {
            let privacy = if proto("priv_protocol").contains("des") {
                "DES"
            } else {
                "AES"
            };
            let _ = writeln!(
                t,
                "priv_protocol = \"{privacy}\"\npriv_password = {}",
                quote(&p)
            );
        }
    } else if let Some(c) = string(settings.get("community")) {
        let _ = writeln!(t, "community = {}", quote(&c));
    }
    Ok(())
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

    fn loads(conf: &str) -> (String, crate::config::Loaded) {
        let out = convert_file(conf).expect("converts");
        let Some(Converted::Toml { toml, .. }) = out.first() else {
            panic!("{out:?}")
        };
        let src = lava_common::Source::from_text("x.toml", toml.clone());
        let loaded = crate::config::load_source(&src).unwrap_or_else(|e| panic!("{e}\n{toml}"));
        (toml.clone(), loaded)
    }

    #[test]
    fn other_drivers_become_loadable_configs() {
        let (t, l) = loads(r#"{"pdus":{"relay1":{"driver":"modbustcp","port":502,"unit":3}}}"#);
        assert_eq!(l.driver.kind(), "modbus-tcp");
        assert!(t.contains("coil_offset = 1"), "{t}");
        let (_, l) =
            loads(r#"{"pdus":{"apc1":{"driver":"apc7952","username":"u","password":"p"}}}"#);
        assert_eq!(l.driver.kind(), "apc-telnet");
        let (t, l) = loads(
            r#"{"pdus":{"pdu2":{"driver":"snmpv1","mib":"PowerNet-MIB","controlpoint":"sPDUOutletCtl",
                "community":"private","onsetting":1,"offsetting":2}}}"#,
        );
        assert_eq!(l.driver.kind(), "snmp");
        assert!(t.contains("preset = \"apc\""), "{t}");
        let (t, _) = loads(
            r#"{"pdus":{"pdu3":{"driver":"snmpv3","mib":"X-MIB","controlpoint":"1.3.6.1.4.1.99.1.*",
                "inside_number":true,"onsetting":1,"offsetting":0,"username":"lab",
                "authpassphrase":"authpass12","privpassphrase":"privpass12",
                "auth_protocol":"usmHMACSHAAuthProtocol","priv_protocol":"usmAesCfb128Protocol"}}}"#,
        );
        assert!(t.contains("oid = \"1.3.6.1.4.1.99.1.{outlet}\""), "{t}");
        assert!(t.contains("priv_protocol = \"AES\""), "{t}");
        let (_, l) = loads(r#"{"pdus":{"plug":{"driver":"brennenstuhl_wspl01_tasmota"}}}"#);
        assert_eq!(l.driver.kind(), "http");
        assert_eq!(l.common.outlet_count, Some(2));
        let out = convert_file(
            r#"{"pdus":{"p":{"driver":"snmpv1","mib":"FOO-MIB","controlpoint":"fooCtl","onsetting":1,"offsetting":2}}}"#,
        )
        .expect("converts");
        assert!(
            matches!(&out[0], Converted::Unmapped { why, .. } if why.contains("snmptranslate"))
        );
    }

    #[test]
    fn unknown_drivers_are_named() {
        let out = convert_file(r#"{"pdus":{"x":{"driver":"ykush"}}}"#).expect("converts");
        assert!(matches!(&out[0], Converted::Unmapped { why, .. } if why.contains("ykush")));
    }
}
