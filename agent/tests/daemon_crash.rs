//! greentop-agent SIGKILLed while it writes its log under load (busy loops beside
//! it, a 50 ms interval, small segments that rotate): every interval the log task
//! acknowledged (`interval written`, a debug line it prints after each write
//! returns) reads back, at most the record in flight is lost (a torn tail or a
//! segment cut before its header, in the last segment only), the restarted agent
//! starts a new segment, and `report` spans both runs exactly.
use std::time::Duration;

use agent::model::Interval;
use agent::report::{GroupBy, ReportOptions};
use agent::sinks::log::{NoticeKind, read_intervals, segments};

mod support;
use support::{Agent, Busy};

/// The `ts` of an acknowledgement line, `… interval written ts=…`.
fn acked_ts(line: &str) -> Option<String> {
    let at = line.find("interval written")?;
    let ts = line[at..].split("ts=").nth(1)?;
    Some(ts.split_whitespace().next()?.to_string())
}

fn measured(intervals: &[Interval]) -> f64 {
    intervals
        .iter()
        .map(|i| {
            let b = &i.system.balance;
            b.cpu.measured_j + b.dram.measured_j + b.gpu.measured_j
        })
        .sum()
}

#[test]
fn sigkill_mid_write_loses_at_most_the_record_in_flight_and_a_restart_continues() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let log_arg = log.to_str().unwrap();
    let _load = [Busy::start(), Busy::start()];
    let args = [
        "--log-dir",
        log_arg,
        "--interval",
        "0.05",
        "--threads",
        "--rotate-size",
        "64KiB",
        "--fsync",
        "never",
    ];
    let mut agent = Agent::start(&args, Some("warn,greentop::log=debug"));
    let mut acked = Vec::new();
    while acked.len() < 60 || segments::list(&log).unwrap().len() < 3 {
        let line = agent
            .stderr
            .until("an acknowledged write", |l| l.contains("interval written"));
        acked.push(acked_ts(&line).expect("ts= in the acknowledgement"));
    }
    // Kill at an arbitrary point of the write loop.
    let jitter_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        % 50_000;
    std::thread::sleep(Duration::from_micros(u64::from(jitter_us)));
    agent.signal(libc::SIGKILL);
    assert!(!agent.wait().success(), "killed");
    // Acknowledgements already written to the pipe before the kill count too.
    while let Some(line) = agent.stderr.next() {
        acked.extend(acked_ts(&line));
    }
    let segments_after_crash = segments::list(&log).unwrap();

    let mut recovered = Vec::new();
    let notices = read_intervals(std::slice::from_ref(&log), &mut |i| recovered.push(i)).unwrap();
    let ts: Vec<&str> = recovered.iter().map(|i| i.ts.as_str()).collect();
    assert_eq!(
        ts[..acked.len().min(ts.len())],
        acked[..],
        "every acknowledged interval reads back, in order"
    );
    assert!(
        recovered.len() <= acked.len() + 1,
        "{} recovered of {} acknowledged: at most the one in flight more",
        recovered.len(),
        acked.len()
    );
    assert!(notices.len() <= 1, "{notices:?}");
    if let Some((path, notice)) = notices.first() {
        assert!(
            matches!(
                notice.kind,
                NoticeKind::TornTail { .. } | NoticeKind::NoHeader { .. }
            ),
            "{notice}"
        );
        assert_eq!(Some(path), segments_after_crash.last().map(|f| &f.path));
    }

    let mut restarted = Agent::start(&["--log-dir", log_arg, "--count", "5"], None);
    assert!(restarted.wait().success(), "{}", restarted.stderr.seen());
    let files = segments::list(&log).unwrap();
    assert_eq!(
        files.len(),
        segments_after_crash.len() + 1,
        "one new segment"
    );
    let last_seq = segments_after_crash.last().and_then(|f| f.seq).unwrap();
    assert_eq!(files.last().unwrap().seq, Some(last_seq + 1));

    let mut all = Vec::new();
    read_intervals(std::slice::from_ref(&log), &mut |i| all.push(i)).unwrap();
    assert_eq!(all.len(), recovered.len() + 5);
    assert_eq!(all[..recovered.len()], recovered[..]);
    let opts = ReportOptions {
        by: Some(GroupBy::Machine),
        ..ReportOptions::default()
    };
    let report = agent::report::build(std::slice::from_ref(&log), &opts, &mut |_, _| {}).unwrap();
    assert_eq!(report.intervals as usize, all.len());
    assert_eq!(
        report.machine.joules.to_bits(),
        measured(&all).to_bits(),
        "report spans both runs exactly"
    );
    eprintln!(
        "acknowledged {}, recovered {}, segments {}, notices {notices:?}",
        acked.len(),
        recovered.len(),
        segments_after_crash.len()
    );
}
