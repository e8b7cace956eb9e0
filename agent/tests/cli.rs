//! greentop-agent's command line: `--help` against its golden text
//! (`UPDATE_GOLDEN=1` rewrites it), and bad option values as one line, exit 2.
use std::path::Path;
use std::process::Command;

fn agent(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_greentop-agent"))
        .args(args)
        .output()
        .expect("run greentop-agent")
}

#[test]
fn help_matches_golden() {
    let out = agent(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/help.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, help.as_bytes()).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap_or_default();
    assert_eq!(
        help, want,
        "--help changed: rerun with UPDATE_GOLDEN=1 and review the diff"
    );
}

#[test]
fn bad_values_are_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[agent]\nretain_age = \"1s\"\n").unwrap();
    let config_arg = format!("--config={}", config.display());
    let cases: &[(&[&str], &str)] = &[
        (
            &["--rotate-size", "1KiB"],
            "greentop-agent: invalid value '1KiB' for '--rotate-size <SIZE>': 1KiB is outside 64KiB..=1TiB",
        ),
        (
            &["--fsync", "often"],
            "greentop-agent: invalid value 'often' for '--fsync <POLICY>': 'often' is not always, never or a duration like 5s",
        ),
        (
            &["--interval", "0"],
            "greentop-agent: invalid value '0' for '--interval <SECS>': 0 s is outside 0.05..=3600.0",
        ),
        (
            &[
                "--log-dir",
                "/tmp/x",
                "--rotate-size",
                "1GiB",
                "--retain-size",
                "100MiB",
            ],
            "greentop-agent: retain-size 100MiB is smaller than rotate-size 1GiB: every finished segment would be deleted at once",
        ),
        (
            &[
                "--socket",
                "/tmp/x.sock",
                "--socket-group",
                "no-such-group-here",
            ],
            "greentop-agent: unknown group 'no-such-group-here' (--socket-group)",
        ),
        (
            &[config_arg.as_str()],
            "agent.retain_age = \"1s\": 1s is outside 1m..=100years",
        ),
    ];
    for (args, want) in cases {
        let out = agent(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
}
