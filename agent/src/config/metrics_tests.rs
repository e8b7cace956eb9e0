use super::*;
use crate::config::Config;

#[test]
fn addresses_parse_and_default_to_loopback() {
    let cases: &[(&str, Result<&str, ()>)] = &[
        ("9911", Ok("127.0.0.1:9911")),
        ("localhost:9911", Ok("127.0.0.1:9911")),
        ("127.0.0.2:80", Ok("127.0.0.2:80")),
        ("[::1]:9911", Ok("[::1]:9911")),
        ("0.0.0.0:9911", Ok("0.0.0.0:9911")),
        ("host:9911", Err(())),
        ("localhost:x", Err(())),
        ("99111", Err(())),
        ("", Err(())),
    ];
    for (text, want) in cases {
        let got = MetricsAddr::parse(text).map(|a| a.0.to_string());
        match want {
            Ok(addr) => assert_eq!(got.as_deref(), Ok(*addr), "{text}"),
            Err(()) => assert!(got.unwrap_err().contains("is not PORT"), "{text}"),
        }
    }
}

#[test]
fn non_loopback_needs_allow_remote() {
    let config = |addr: &str, allow: bool| MetricsConfig {
        addr: Some(MetricsAddr::parse(addr).unwrap()),
        allow_remote: allow,
        ..MetricsConfig::default()
    };
    for (addr, allow, ok) in [
        ("9911", false, true),
        ("[::1]:9911", false, true),
        ("[::ffff:127.0.0.1]:9911", false, true),
        ("0.0.0.0:9911", false, false),
        ("[::]:9911", false, false),
        ("10.1.2.3:9911", false, false),
        ("0.0.0.0:9911", true, true),
    ] {
        let got = config(addr, allow).addr();
        assert_eq!(got.is_ok(), ok, "{addr} allow={allow}: {got:?}");
        if let Err(e) = got {
            assert!(e.0.contains("--metrics-allow-remote"), "{e}");
        }
    }
    assert_eq!(
        MetricsConfig::default().addr().unwrap(),
        None,
        "off unless asked"
    );
}

#[test]
fn the_command_line_wins_over_the_file_and_allow_remote_from_either() {
    let file = Config::parse(
        "[metrics]\naddr = \"0.0.0.0:9911\"\nallow_remote = true\ntop_n = 5\ngrace_s = 30",
    )
    .unwrap()
    .metrics
    .unwrap();
    let options = MetricsConfig::default().or(&file);
    assert_eq!(
        options.addr().unwrap(),
        Some("0.0.0.0:9911".parse().unwrap())
    );
    assert_eq!(options.options().top_n, 5);
    assert_eq!(options.options().grace, Duration::from_secs(30));
    let cli = MetricsConfig {
        top_n: Some(7),
        addr: MetricsAddr::parse("10.0.0.1:80").ok(),
        ..MetricsConfig::default()
    };
    let merged = cli.or(&file);
    assert_eq!(merged.options().top_n, 7);
    assert_eq!(merged.addr().unwrap(), Some("10.0.0.1:80".parse().unwrap()));
    let defaults = MetricsConfig::default().options();
    assert_eq!(defaults, MetricsOptions::default());
}

#[test]
fn the_file_uses_the_command_lines_parsers() {
    let cases = [
        ("top_n = 0", "metrics.top_n = 0: 0 is outside 1..=10000"),
        (
            "grace_s = 0.5",
            "metrics.grace_s = 0.5: 0.5 s is outside 1.0..=86400.0",
        ),
        (
            "addr = \"nowhere\"",
            "metrics.addr = \"nowhere\": 'nowhere' is not PORT",
        ),
        ("port = 1", "unknown field `port`"),
    ];
    for (text, wanted) in cases {
        let problem = Config::parse(&format!("[metrics]\n{text}")).unwrap_err();
        assert!(problem.message.starts_with(wanted), "{text}: {problem}");
        assert_eq!(problem.line, Some(2), "{text}: {problem}");
    }
    assert_eq!(
        parse_top_n("10001"),
        Err("10001 is outside 1..=10000".into())
    );
    assert_eq!(
        parse_grace("0.5"),
        Err("0.5 s is outside 1.0..=86400.0".into())
    );
    let written = toml::to_string(&MetricsConfig {
        addr: MetricsAddr::parse("9911").ok(),
        allow_remote: false,
        top_n: Some(3),
        grace_s: Some(60.0),
    })
    .unwrap();
    assert_eq!(
        written,
        "addr = \"127.0.0.1:9911\"\ntop_n = 3\ngrace_s = 60.0\n"
    );
}
