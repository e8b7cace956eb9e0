//! The log writer SIGKILLed while it writes as fast as it can: every interval it
//! acknowledged reads back exactly, at most the one in flight is lost (a torn
//! tail, reported), a restarted writer starts a new segment, and `report` spans
//! both runs.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use agent::model::Interval;
use agent::report::{GroupBy, ReportOptions};
use agent::sinks::log::synth::{Synth, Workload};
use agent::sinks::log::{NoticeKind, read_intervals, segments};

fn writer_binary() -> PathBuf {
    greentop_tests::gt_load().with_file_name("gt-log-writer")
}

/// Kills and reaps the child when dropped, pass or fail.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The intervals a writer of `seed` produced: regenerated, they are the oracle.
fn expected(seed: u64, n: usize) -> Vec<Interval> {
    let mut work = Workload::new(PROCESSES);
    work.seed = seed;
    work.start += std::time::Duration::from_secs(86_400 * seed);
    let mut synth = Synth::new(work);
    (0..n).map(|_| synth.next_interval()).collect()
}

const PROCESSES: usize = 300;

/// Every value, bit for bit (JSON keeps each f64's shortest exact form), except
/// the balance's attributed sums: attribution adds processes in HashMap order,
/// so their last bits differ between two processes computing the same interval.
fn json(intervals: &[Interval]) -> Vec<String> {
    intervals
        .iter()
        .map(|i| {
            let mut i = i.clone();
            let b = &mut i.system.balance;
            for domain in [&mut b.cpu, &mut b.dram, &mut b.gpu] {
                (domain.attributed_j, domain.residual_j) = (0.0, 0.0);
            }
            b.residual_joules = 0.0;
            serde_json::to_string(&i).unwrap()
        })
        .collect()
}

fn run_writer(dir: &Path, seed: u64, count: u64) -> KillOnDrop {
    let child = Command::new(writer_binary())
        .arg(dir)
        .args([
            seed.to_string(),
            count.to_string(),
            (256u64 << 10).to_string(),
            PROCESSES.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn gt-log-writer");
    KillOnDrop(child)
}

#[test]
fn sigkill_mid_write_loses_at_most_the_record_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    // CPU load beside the writer, which itself writes back to back.
    let _load: Vec<KillOnDrop> = (0..2)
        .map(|_| KillOnDrop(greentop_tests::spawn_load(&["busy", "60"])))
        .collect();
    let mut writer = run_writer(&log, 1, 0);
    let lines = BufReader::new(writer.0.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let acks = std::thread::spawn(move || {
        let mut acknowledged = 0usize;
        for line in lines.lines().map_while(Result::ok) {
            acknowledged = line.trim().parse::<usize>().unwrap() + 1;
            let _ = tx.send(acknowledged);
        }
        acknowledged
    });
    // Kill at an arbitrary point of the write loop, once it has rotated a few times.
    while rx.recv().expect("the writer died by itself") < 100 {}
    let jitter_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        % 20_000;
    std::thread::sleep(std::time::Duration::from_micros(u64::from(jitter_us)));
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(writer.0.id() as i32, libc::SIGKILL) };
    let status = writer.0.wait().unwrap();
    assert!(!status.success(), "the writer was killed, not finished");
    // Every index printed before the kill: each `write` that had returned.
    let acknowledged = acks.join().unwrap();
    let segments_after_crash = segments::list(&log).unwrap().len();
    assert!(
        segments_after_crash > 1,
        "small segments: the crash run rotated"
    );

    let mut recovered = Vec::new();
    let notices = read_intervals(std::slice::from_ref(&log), &mut |i| recovered.push(i)).unwrap();
    assert!(
        (acknowledged..=acknowledged + 1).contains(&recovered.len()),
        "{} recovered of {acknowledged} acknowledged",
        recovered.len()
    );
    let (got, want) = (json(&recovered), json(&expected(1, recovered.len())));
    if let Some(at) = (0..got.len()).find(|&i| got[i] != want[i]) {
        let diff = got[at]
            .chars()
            .zip(want[at].chars())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "interval {at} differs from what was written: …{}… vs …{}…",
            &got[at][diff.saturating_sub(80)..(diff + 80).min(got[at].len())],
            &want[at][diff.saturating_sub(80)..(diff + 80).min(want[at].len())]
        );
    }
    eprintln!(
        "acknowledged {acknowledged}, recovered {}, notices {notices:?}",
        recovered.len()
    );
    assert!(notices.len() <= 1, "{notices:?}");
    if let Some((path, notice)) = notices.first() {
        assert!(
            matches!(notice.kind, NoticeKind::TornTail { .. }),
            "{notice}"
        );
        assert_eq!(
            Some(path),
            segments::list(&log).unwrap().last().map(|f| &f.path)
        );
    }

    let mut restarted = run_writer(&log, 2, 5);
    assert!(restarted.0.wait().unwrap().success());
    let files = segments::list(&log).unwrap();
    assert_eq!(
        files.len(),
        segments_after_crash + 1,
        "the restart opened one new segment"
    );
    assert_eq!(
        files.last().unwrap().seq,
        Some(segments_after_crash as u64 + 1)
    );

    let opts = ReportOptions {
        by: Some(GroupBy::Job),
        ..ReportOptions::default()
    };
    let report = agent::report::build(std::slice::from_ref(&log), &opts, &mut |_, _| {}).unwrap();
    assert_eq!(report.intervals as usize, recovered.len() + 5);
    let mut measured = 0.0;
    for i in recovered.iter().chain(&expected(2, 5)) {
        let b = &i.system.balance;
        measured += b.cpu.measured_j + b.dram.measured_j + b.gpu.measured_j;
    }
    assert_eq!(
        report.machine.joules.to_bits(),
        measured.to_bits(),
        "report spans both runs exactly"
    );
}
