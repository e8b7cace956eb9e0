//! A live run: a thread advances fixture counters at a known power while the real
//! source polls them, across a wraparound, and the measured watts must match.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::tests::copy_fixture;
use super::*;

const PACKAGE_RATE_UJ_PER_S: u64 = 50_000_000;
const DRAM_RATE_UJ_PER_S: u64 = 5_000_000;
const PACKAGE_MAX_UJ: u64 = 262_143_328_850;
const DRAM_MAX_UJ: u64 = 65_712_999_613;
/// The package counter starts 0.6 s of energy short of its wrap.
const PACKAGE_START_UJ: u64 = PACKAGE_MAX_UJ - 30_000_000;
const DRAM_START_UJ: u64 = 1_000_000;

/// A counter file the writer advances: (path, start, rate per second, range).
type Counter = (PathBuf, u64, u64, u64);

/// Replaces `path` atomically, so the source never sees a half-written file.
fn write_atomically(path: &Path, value_uj: u64) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{value_uj}\n")).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Writes `start + rate × elapsed` (wrapped at the range, as the hardware does) into
/// each counter every millisecond until `stop` is set.
fn advance(counters: Vec<Counter>, started: Instant, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let elapsed_us = started.elapsed().as_micros() as u64;
        for (path, start_uj, rate_uj_per_s, max_uj) in &counters {
            let value_uj = (start_uj + rate_uj_per_s * elapsed_us / 1_000_000) % max_uj;
            write_atomically(path, value_uj);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn live_counters_measure_the_written_power_within_one_percent() {
    let root = copy_fixture("one-socket");
    let zone_dir = root
        .path()
        .join("devices/virtual/powercap/intel-rapl/intel-rapl:0");
    let counters: Vec<Counter> = vec![
        (
            zone_dir.join("energy_uj"),
            PACKAGE_START_UJ,
            PACKAGE_RATE_UJ_PER_S,
            PACKAGE_MAX_UJ,
        ),
        (
            zone_dir.join("intel-rapl:0:2/energy_uj"),
            DRAM_START_UJ,
            DRAM_RATE_UJ_PER_S,
            DRAM_MAX_UJ,
        ),
    ];
    for (path, start_uj, _, _) in &counters {
        write_atomically(path, *start_uj);
    }
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || advance(counters, started, stop))
    };

    let mut source = RaplSource::open(root.path()).unwrap();
    let (mut package_uj, mut dram_uj, mut elapsed) = (0u64, 0u64, Duration::ZERO);
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(200));
        let reading = source.read().unwrap();
        for domain in &reading.domains {
            assert_eq!(domain.note, None, "{domain:?}");
        }
        package_uj += reading.domains[0].energy_uj;
        dram_uj += reading.domains[3].energy_uj;
        elapsed += reading.elapsed;
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    let seconds = elapsed.as_secs_f64();
    let cases = [
        ("package", package_uj, PACKAGE_RATE_UJ_PER_S),
        ("dram", dram_uj, DRAM_RATE_UJ_PER_S),
    ];
    for (what, energy_uj, rate_uj_per_s) in cases {
        let watts = energy_uj as f64 / 1e6 / seconds;
        let want_watts = rate_uj_per_s as f64 / 1e6;
        assert!(
            (watts - want_watts).abs() <= want_watts * 0.01,
            "{what}: {watts} W measured, {want_watts} W written over {seconds} s"
        );
    }
    // The package counter wrapped during the run (0.6 s of headroom, 1.2 s polled).
    assert!(package_uj > 30_000_000, "{package_uj}");
}
