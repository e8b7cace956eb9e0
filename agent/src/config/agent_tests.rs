//! The `[agent]` table and options: sizes, durations and fsync policies parsed and
//! range-checked alike on the command line and in the file, the merge, and the
//! log options they make.
use super::*;
use crate::config::Config;

#[test]
fn sizes_durations_and_policies_are_range_checked() {
    let size: &[(&str, Result<u64, &str>)] = &[
        ("64MiB", Ok(64 << 20)),
        ("64m", Ok(64 << 20)),
        ("1.5GiB", Ok(3 << 29)),
        ("500MB", Ok(500_000_000)),
        ("65536", Ok(65_536)),
        ("1KiB", Err("1KiB is outside 64KiB..=1TiB")),
        ("2TiB", Err("2TiB is outside 64KiB..=1TiB")),
        ("lots", Err("'lots' is not a size like 64MiB, 10GB or 4096")),
        (
            "5 parsecs",
            Err("'5 parsecs' is not a size like 64MiB, 10GB or 4096"),
        ),
    ];
    for (text, want) in size {
        assert_eq!(
            parse_rotate_size(text),
            want.map_err(str::to_string),
            "{text}"
        );
    }
    assert_eq!(parse_rotate_age("1h"), Ok(Duration::from_secs(3600)));
    assert_eq!(
        parse_rotate_age("0s"),
        Err("0s is outside 1s..=30days".to_string())
    );
    assert_eq!(
        parse_retain_age("10s"),
        Err("10s is outside 1m..=100years".to_string())
    );
    assert!(
        parse_rotate_age("soon")
            .unwrap_err()
            .contains("not a duration")
    );
    assert_eq!(parse_fsync("always"), Ok(FsyncPolicy::Always));
    assert_eq!(parse_fsync("never"), Ok(FsyncPolicy::Never));
    assert_eq!(
        parse_fsync("5s"),
        Ok(FsyncPolicy::Every(Duration::from_secs(5)))
    );
    assert_eq!(
        parse_fsync("1ms"),
        Err("1ms is outside 10ms..=1h".to_string())
    );
    assert!(
        parse_fsync("sometimes")
            .unwrap_err()
            .contains("always, never")
    );
    for bytes in [64 << 10, 3 << 29, 1000, 1 << 40] {
        assert_eq!(parse_size(&format_size(bytes)), Ok(bytes));
    }
}

#[test]
fn the_agent_table_parses_checks_and_round_trips() {
    let text = "[agent]\nlog_dir = \"/var/lib/greentop/log\"\ninterval_s = 2.5\n\
                rotate_size = \"16MiB\"\nrotate_age = \"30m\"\nretain_size = \"1GiB\"\n\
                retain_age = \"30days\"\nfsync = \"always\"\nsocket = \"/run/greentop/agent.sock\"\n\
                socket_group = \"greentop\"\nthreads = true\n";
    let config = Config::parse(text).unwrap();
    let agent = config.agent.clone().unwrap();
    assert_eq!(agent.interval(), Duration::from_millis(2500));
    assert_eq!(agent.rotate_size, Some(16 << 20));
    assert_eq!(agent.fsync, Some(FsyncPolicy::Always));
    assert_eq!(agent.threads, Some(true));
    let back = toml::to_string(&config).unwrap();
    assert_eq!(Config::parse(&back).unwrap(), config, "{back}");

    let bad: &[(&str, usize, &str)] = &[
        (
            "[agent]\nrotate_size = \"1KiB\"",
            2,
            "agent.rotate_size = \"1KiB\": 1KiB is outside 64KiB..=1TiB",
        ),
        (
            "[agent]\n\ninterval_s = 0.01",
            3,
            "agent.interval_s = 0.01: 0.01 s is outside 0.05..=3600.0",
        ),
        (
            "[agent]\nfsync = \"often\"",
            2,
            "agent.fsync = \"often\": 'often' is not always, never or a duration like 5s",
        ),
        ("[agent]\nlogdir = \"/x\"", 2, "unknown field `logdir`"),
    ];
    for &(text, line, wanted) in bad {
        let problem = Config::parse(text).unwrap_err();
        assert!(problem.message.starts_with(wanted), "{text:?}: {problem}");
        assert_eq!(problem.line, Some(line), "{text:?}: {problem}");
    }
}

#[test]
fn the_command_line_wins_and_log_options_follow() {
    let file = AgentConfig {
        log_dir: Some("/var/log/greentop".into()),
        rotate_size: Some(1 << 30),
        retain_size: Some(10 << 30),
        interval_s: Some(5.0),
        ..AgentConfig::default()
    };
    let cli = AgentConfig {
        interval_s: Some(0.5),
        rotate_age: Some(Duration::from_secs(60)),
        ..AgentConfig::default()
    };
    let merged = cli.or(&file);
    assert_eq!(merged.interval(), Duration::from_millis(500));
    let log = merged.log_options().unwrap().unwrap();
    assert_eq!(log.dir, std::path::Path::new("/var/log/greentop"));
    assert_eq!(
        (log.rotate_bytes, log.rotate_age),
        (1 << 30, Duration::from_secs(60))
    );
    assert_eq!(log.retention.max_bytes, Some(10 << 30));
    assert_eq!(log.fsync, FsyncPolicy::Every(Duration::from_secs(1)));
    assert_eq!(AgentConfig::default().log_options().unwrap(), None);
    let small = AgentConfig {
        retain_size: Some(1 << 20),
        ..merged
    };
    let err = small.log_options().unwrap_err().to_string();
    assert_eq!(
        err,
        "retain-size 1MiB is smaller than rotate-size 1GiB: every finished segment would be deleted at once"
    );
}
