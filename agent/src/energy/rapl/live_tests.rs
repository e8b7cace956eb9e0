//! A live run: fixture counters answered at each read with the energy of a known
//! power at that instant (FIFOs, no writer thread to fall behind), polled by the real
//! source across a wraparound; the measured watts must match.
use std::time::Duration;

use super::tests::copy_fixture;
use super::*;
use crate::energy::testkit::{FifoCounter, Script};

const PACKAGE_RATE_UJ_PER_S: f64 = 50_000_000.0;
const DRAM_RATE_UJ_PER_S: f64 = 5_000_000.0;
const PACKAGE_MAX_UJ: u64 = 262_143_328_850;
const DRAM_MAX_UJ: u64 = 65_712_999_613;
/// The package counter starts 0.6 s of energy short of its wrap.
const PACKAGE_START_UJ: u64 = PACKAGE_MAX_UJ - 30_000_000;
const DRAM_START_UJ: u64 = 1_000_000;

/// `start + rate × seconds`, wrapped at the range as the hardware does.
fn wrapping(start_uj: u64, rate_uj_per_s: f64, max_uj: u64) -> Script {
    Box::new(move |_, seconds| (start_uj + (rate_uj_per_s * seconds) as u64) % max_uj)
}

#[test]
fn live_counters_measure_the_written_power_within_one_percent() {
    let root = copy_fixture("one-socket");
    let zone_dir = root
        .path()
        .join("devices/virtual/powercap/intel-rapl/intel-rapl:0");
    let package = FifoCounter::serve(
        &zone_dir.join("energy_uj"),
        wrapping(PACKAGE_START_UJ, PACKAGE_RATE_UJ_PER_S, PACKAGE_MAX_UJ),
    );
    let dram = FifoCounter::serve_with(
        &package,
        &zone_dir.join("intel-rapl:0:2/energy_uj"),
        wrapping(DRAM_START_UJ, DRAM_RATE_UJ_PER_S, DRAM_MAX_UJ),
    );

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
    // What was read is exactly what was served, across the wrap.
    let served = package.served();
    let first_uj = served[0];
    let last_uj = served[served.len() - 1];
    assert_eq!(
        package_uj,
        (PACKAGE_MAX_UJ - first_uj) + last_uj,
        "{served:?}"
    );
    drop((package, dram));

    let seconds = elapsed.as_secs_f64();
    let cases = [
        ("package", package_uj, PACKAGE_RATE_UJ_PER_S),
        ("dram", dram_uj, DRAM_RATE_UJ_PER_S),
    ];
    for (what, energy_uj, rate_uj_per_s) in cases {
        let watts = energy_uj as f64 / 1e6 / seconds;
        let want_watts = rate_uj_per_s / 1e6;
        assert!(
            (watts - want_watts).abs() <= want_watts * 0.01,
            "{what}: {watts} W measured, {want_watts} W written over {seconds} s"
        );
    }
    // The package counter wrapped during the run (0.6 s of headroom, 1.2 s polled).
    assert!(package_uj > 30_000_000, "{package_uj}");
}
