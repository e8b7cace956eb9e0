//! SIGHUP: greentop-agent reads its config file again (the carbon region changes
//! between ticks), closes the log's segment and opens a new one; a config it cannot
//! use is one clear error and the running configuration stays.
use agent::sinks::log::{read_intervals, segments};
use serde_json::Value;

mod support;
use support::{Agent, wait_until};

fn region(line: &str) -> Option<String> {
    let value: Value = serde_json::from_str(line).ok()?;
    value["system"]["region"].as_str().map(str::to_string)
}

#[test]
fn sighup_reads_the_config_again_and_reopens_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (config, log) = (dir.path().join("greentop.toml"), dir.path().join("log"));
    std::fs::write(&config, "region = \"FR\"\n[agent]\nrotate_age = \"1h\"\n").unwrap();
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--log-dir",
        log.to_str().unwrap(),
        "--json",
        "--interval",
        "0.1",
    ];
    let mut agent = Agent::start(&args, None);
    let mut stdout = agent.stdout.take().unwrap();
    stdout.until("an interval priced for France", |l| {
        region(l).as_deref() == Some("FRA")
    });
    assert_eq!(segments::list(&log).unwrap().len(), 1);

    std::fs::write(&config, "region = \"DE\"\n").unwrap();
    agent.signal(libc::SIGHUP);
    agent.stderr.until("the reload", |l| {
        l.contains("SIGHUP: configuration read again")
    });
    stdout.until("an interval priced for Germany", |l| {
        region(l).as_deref() == Some("DEU")
    });
    wait_until("a new segment", || segments::list(&log).unwrap().len() == 2);

    std::fs::write(&config, "region = \"DE\"\npue = 9\n").unwrap();
    agent.signal(libc::SIGHUP);
    let refused = agent.stderr.until("the refusal", |l| {
        l.contains("keeping the running configuration")
    });
    assert!(
        refused.contains("pue = 9 is outside 1.0..=3.0"),
        "{refused}"
    );
    for _ in 0..3 {
        let line = stdout.next().expect("still running");
        assert_eq!(region(&line).as_deref(), Some("DEU"), "{line}");
    }
    assert!(agent.stop().success(), "{}", agent.stderr.seen());

    let mut regions = Vec::new();
    let notices = read_intervals(&[log], &mut |i| regions.push(i.system.region)).unwrap();
    assert!(notices.is_empty(), "{notices:?}");
    let switch = regions.iter().position(|r| r == "DEU").unwrap();
    assert!(switch > 0 && regions[..switch].iter().all(|r| r == "FRA"));
    assert!(regions[switch..].iter().all(|r| r == "DEU"), "{regions:?}");
}
