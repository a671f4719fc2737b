//! `lava-console --lava-dict BOARD`: the LAVA device-dictionary lines (jinja2 `{% set ... %}`) that
//! connect to and power a board, written so LAVA's no-shell `shlex.split` gives back exactly the
//! intended argv, and an admin can paste them as they are.

use std::path::PathBuf;

use lava_common::Board;

use crate::cli::DictVia;

/// What the printed commands must carry besides the board's name, because LAVA's dispatcher
/// runs them with none of the admin's environment.
#[derive(Debug, Clone, Default)]
pub struct DictContext {
    /// The registry, when it is not `/etc/lava/boards.toml`.
    pub boards: Option<PathBuf>,
    /// lava-power's runtime dir, when not the default.
    pub power_runtime_dir: Option<PathBuf>,
    /// The lava-power gateway, when set explicitly.
    pub power_gateway: Option<String>,
}

/// The device-dictionary lines for a board.
pub fn lava_dict(board: &Board, via: DictVia, ctx: &DictContext) -> String {
    let mut base: Vec<String> = vec!["lava-console".into()];
    if let Some(b) = &ctx.boards {
        base.push("--boards".into());
        base.push(b.display().to_string());
    }
    let mut connect = base.clone();
    connect.push(board.name.clone());
    let connection = shell_join(&connect);

    let mut out = format!(
        "{{# {}: device-dictionary lines from lava-console #}}\n",
        board.name
    );
    out.push_str(&set_line("connection_command", &connection));
    match &board.power {
        None => out.push_str(&format!(
            "{{# {} has no `power` in the registry: no power commands #}}\n",
            board.name
        )),
        Some(p) => {
            let cmd = |verb: &str, word: &str| -> String {
                match via {
                    DictVia::LavaConsole => {
                        let mut v = base.clone();
                        if let Some(d) = &ctx.power_runtime_dir {
                            v.push("--power-runtime-dir".into());
                            v.push(d.display().to_string());
                        }
                        if let Some(g) = &ctx.power_gateway {
                            v.push("--power-gateway".into());
                            v.push(g.clone());
                        }
                        v.push(format!("--{verb}"));
                        v.push(board.name.clone());
                        shell_join(&v)
                    }
                    DictVia::Pduclient => {
                        let host = match &ctx.power_gateway {
                            Some(g) => crate::target::split_endpoint(g)
                                .map(|(h, _)| h)
                                .unwrap_or_else(|| g.clone()),
                            None => crate::power::gateway_host(board),
                        };
                        shell_join(&[
                            "pduclient".into(),
                            "--daemon".into(),
                            host,
                            "--hostname".into(),
                            p.pdu.clone(),
                            "--port".into(),
                            p.outlet.clone(),
                            "--command".into(),
                            word.into(),
                        ])
                    }
                }
            };
            out.push_str(&set_line("hard_reset_command", &cmd("hardreset", "reboot")));
            out.push_str(&set_line("power_off_command", &cmd("off", "off")));
            out.push_str(&set_line("power_on_command", &cmd("on", "on")));
        }
    }
    out.push_str(&format!(
        "{{# or, as a named connection:\n\
         {{% set connection_list = ['uart0'] %}}\n\
         {{% set connection_commands = {{'uart0': {}}} %}}\n\
         {{% set connection_tags = {{'uart0': ['primary', 'telnet']}} %}}\n#}}\n",
        jinja_string(&connection)
    ));
    out
}

fn set_line(key: &str, value: &str) -> String {
    format!("{{% set {key} = {} %}}\n", jinja_string(value))
}

/// A jinja2 string literal: single quotes unless the text has some.
fn jinja_string(s: &str) -> String {
    if !s.contains('\'') {
        return format!("'{s}'");
    }
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Quotes one word for a POSIX shell (and Python's `shlex`), only when it needs it.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\"'\"'"))
    }
}

/// Joins words into one shell command line.
pub fn shell_join(words: &[String]) -> String {
    words
        .iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Splits a command line into words as a POSIX shell (or Python's `shlex.split`) does: blanks
/// separate, single quotes are literal, double quotes allow `\"`, `\\`, `\$`, `` \` ``, a
/// backslash outside quotes escapes the next character. `None` on an unclosed quote.
pub fn shell_split(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        ch => cur.push(ch),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            ch @ ('"' | '\\' | '$' | '`') => cur.push(ch),
                            '\n' => {}
                            ch => {
                                cur.push('\\');
                                cur.push(ch);
                            }
                        },
                        ch => cur.push(ch),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') | None => {}
                    Some(ch) => cur.push(ch),
                }
            }
            ch => {
                in_word = true;
                cur.push(ch);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

/// The value of one `{% set KEY = '...' %}` line of [`lava_dict`]'s output.
pub fn dict_value(dict: &str, key: &str) -> Option<String> {
    let prefix = format!("{{% set {key} = ");
    let line = dict.lines().find(|l| l.starts_with(&prefix))?;
    let lit = line.strip_prefix(&prefix)?.strip_suffix(" %}")?;
    if let Some(s) = lit.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return Some(s.to_owned());
    }
    let inner = lit.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(chars.next()?);
        } else {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lava_common::{Registry, Source};

    fn board(extra: &str) -> Board {
        let text =
            format!("[boards.panda01]\nport = 7001\nadapter = {{ serial = \"A\" }}\n{extra}\n");
        Registry::parse(&Source::from_text("b.toml", text))
            .expect("valid")
            .board("panda01")
            .cloned()
            .expect("board")
    }

    #[test]
    fn quoting_round_trips() {
        let words: Vec<String> = [
            "lava-console",
            "--boards",
            "/srv/my lab/boards.toml",
            "it's",
            "",
            "a\"b\\c$d`e",
            "plain@x:1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let line = shell_join(&words);
        assert_eq!(shell_split(&line), Some(words));
        assert_eq!(shell_quote("panda01"), "panda01");
    }

    #[test]
    fn split_like_a_shell() {
        let w = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(shell_split("a  b\tc"), w(&["a", "b", "c"]));
        assert_eq!(
            shell_split(r#"a "b c" 'd e' f\ g"#),
            w(&["a", "b c", "d e", "f g"])
        );
        assert_eq!(shell_split(r#""a\"b\n""#), w(&["a\"b\\n"]));
        assert_eq!(shell_split("''"), w(&[""]));
        assert_eq!(shell_split("'open"), None);
    }

    #[test]
    fn dict_lines() {
        let b = board("power = { pdu = \"magic-hack\", outlet = \"3\", host = \"pduhost\" }");
        let d = lava_dict(&b, DictVia::LavaConsole, &DictContext::default());
        assert_eq!(
            dict_value(&d, "connection_command").as_deref(),
            Some("lava-console panda01")
        );
        assert_eq!(
            dict_value(&d, "hard_reset_command").as_deref(),
            Some("lava-console --hardreset panda01")
        );
        assert_eq!(
            dict_value(&d, "power_on_command").as_deref(),
            Some("lava-console --on panda01")
        );
        let d = lava_dict(&b, DictVia::Pduclient, &DictContext::default());
        assert_eq!(
            dict_value(&d, "hard_reset_command").as_deref(),
            Some("pduclient --daemon pduhost --hostname magic-hack --port 3 --command reboot")
        );
        let ctx = DictContext {
            boards: Some("/srv/it's lab/boards.toml".into()),
            ..Default::default()
        };
        let d = lava_dict(&b, DictVia::LavaConsole, &ctx);
        let cmd = dict_value(&d, "connection_command").expect("line");
        assert_eq!(
            shell_split(&cmd).expect("balanced"),
            [
                "lava-console",
                "--boards",
                "/srv/it's lab/boards.toml",
                "panda01"
            ]
        );
    }

    #[test]
    fn no_power_says_so() {
        let d = lava_dict(&board(""), DictVia::LavaConsole, &DictContext::default());
        assert!(dict_value(&d, "hard_reset_command").is_none());
        assert!(d.contains("no `power`"));
    }
}
