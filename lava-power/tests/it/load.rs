//! Config loading: the shared keys' defaults and checks, the dispatch by `driver`, located errors.

use lava_common::Source;

fn err(text: &str) -> lava_common::ConfigError {
    match lava_power::config::load_source(&Source::from_text("/etc/lava-power/p.toml", text)) {
        Ok(_) => panic!("must fail:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn bad_keys_name_line_and_key() {
    let cases: &[(&str, usize, &str)] = &[
        ("driver = \"command\"\non = [\"a\"]\noff = [\"b\"]\nretires = 3\n", 4, "retires"),
        ("driver = \"commando\"\n", 1, "driver"),
        ("on = [\"a\"]\n", 0, "driver"),
        ("driver = \"command\"\noff = [\"b\"]\n", 0, "on"),
        ("driver = \"command\"\non = [\"a\"]\noff = [\"b\"]\ntimeout = \"5 fortnights\"\n", 4, "timeout"),
        ("driver = \"command\"\non = [\"a\"]\noff = [\"b\"]\nretries = -1\n", 4, "retries"),
        ("driver = \"command\"\non = [\"a\"]\noff = [\"b\"]\noutlet_count = 8\n[outlets]\n\"3\" = \"x\"\n\"9\" = \"y\"\n", 7, "outlets.9"),
        ("driver = \"command\"\non = [\"a\"]\noff = [\"b\"]\nreboot_delay = \"30s\"\n", 4, "reboot_delay"),
        ("driver = \"command\"\non = [\"a\"]\noff = [\"b\"]\n[outlets]\n\"a b\" = \"x\"\n", 5, "outlets.a b"),
    ];
    for (text, line, key) in cases {
        let e = err(text);
        assert_eq!(e.key(), *key, "{e}");
        assert_eq!(e.line(), *line, "{e}");
        assert!(e.to_string().starts_with("/etc/lava-power/p.toml"), "{e}");
    }
}

#[test]
fn defaults_fit_lavas_thirty_seconds() {
    let src = Source::from_text(
        "p.toml",
        "driver = \"command\"\non = [\"a\"]\noff = [\"b\"]\n",
    );
    let l = lava_power::config::load_source(&src).expect("loads");
    let c = &l.common;
    assert!(c.deadline < std::time::Duration::from_secs(30));
    assert!(c.reboot_delay < c.deadline);
    assert_eq!(c.resolve("03"), Ok("3".into()));
    assert!(c.resolve("3; rm -rf /").is_err());
}
