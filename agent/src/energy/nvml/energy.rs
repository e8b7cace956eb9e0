//! One interval of a GPU's energy: the delta of NVML's total-energy counter, or power ×
//! Δt where the counter is unsupported. Pure, so every case is tested without a GPU.
use std::time::Duration;

use nvml_wrapper::error::NvmlError;

use super::call_note;
use crate::energy::Provenance;

/// The NVML call behind `Device::total_energy_consumption`.
pub(super) const ENERGY_CALL: &str = "nvmlDeviceGetTotalEnergyConsumption";

/// What one device contributes to one interval.
#[derive(Debug, PartialEq)]
pub(super) struct IntervalEnergy {
    pub energy_uj: u64,
    pub provenance: Provenance,
    pub note: Option<String>,
    /// The counter value (mJ) the next interval starts from.
    pub baseline_mj: Option<u64>,
}

/// The energy since `baseline_mj`, given this read's counter (mJ since driver load) and
/// power (mW). A counter that went backwards (driver reload) gives 0 for the interval;
/// a failed read keeps the baseline so the next read catches up; power × Δt drops it
/// so a returning counter is not counted on top of the estimate.
pub(super) fn interval_energy(
    baseline_mj: Option<u64>,
    counter_mj: &Result<u64, NvmlError>,
    power_mw: Option<u32>,
    elapsed: Duration,
) -> IntervalEnergy {
    let measured = |energy_uj, note: Option<String>, baseline_mj| IntervalEnergy {
        energy_uj,
        provenance: Provenance::NvmlEnergy,
        note,
        baseline_mj,
    };
    match (counter_mj, baseline_mj) {
        (Ok(now), Some(prev)) if *now >= prev => {
            measured((now - prev).saturating_mul(1000), None, Some(*now))
        }
        (Ok(now), Some(prev)) => measured(
            0,
            Some(format!(
                "{ENERGY_CALL}: counter went backwards ({prev} mJ -> {now} mJ, driver reloaded?): 0 for this interval"
            )),
            Some(*now),
        ),
        (Ok(now), None) => measured(
            0,
            Some(format!("{ENERGY_CALL}: baseline taken this interval: 0")),
            Some(*now),
        ),
        (Err(NvmlError::NotSupported), _) => from_power(power_mw, elapsed),
        (Err(err), _) => measured(
            0,
            Some(format!(
                "{}: 0 for this interval",
                call_note(ENERGY_CALL, err)
            )),
            baseline_mj,
        ),
    }
}

fn from_power(power_mw: Option<u32>, elapsed: Duration) -> IntervalEnergy {
    let (energy_uj, note) = match power_mw {
        Some(mw) => (
            power_energy_uj(mw, elapsed),
            format!("{ENERGY_CALL} not supported: power × Δt from nvmlDeviceGetPowerUsage"),
        ),
        None => (
            0,
            format!("{ENERGY_CALL} not supported and no power reading: 0 for this interval"),
        ),
    };
    IntervalEnergy {
        energy_uj,
        provenance: Provenance::NvmlPower,
        note: Some(note),
        baseline_mj: None,
    }
}

/// mW × Δt in µJ (mW · ns / 10⁶), saturating.
pub(super) fn power_energy_uj(power_mw: u32, elapsed: Duration) -> u64 {
    let uj = u128::from(power_mw) * elapsed.as_nanos() / 1_000_000;
    u64::try_from(uj).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_energy_in_microjoules() {
        let cases = [
            (250_000, Duration::from_secs(1), 250_000_000),
            (250_000, Duration::from_millis(100), 25_000_000),
            (1, Duration::from_micros(1), 0),
            (1_000, Duration::from_millis(1), 1_000),
            (0, Duration::from_secs(10), 0),
            (u32::MAX, Duration::MAX, u64::MAX),
        ];
        for (mw, elapsed, want) in cases {
            assert_eq!(power_energy_uj(mw, elapsed), want, "{mw} mW × {elapsed:?}");
        }
    }

    #[test]
    fn counter_deltas() {
        use NvmlError::{NotSupported, Unknown};
        use Provenance::{NvmlEnergy as E, NvmlPower as P};
        // (baseline, counter, power) → (µJ, provenance, noted, next baseline)
        let cases = [
            (
                (Some(1_000), Ok(1_500), None),
                (500_000, E, false, Some(1_500)),
            ),
            ((Some(1_000), Ok(1_000), None), (0, E, false, Some(1_000))),
            ((Some(1_000), Ok(400), Some(9)), (0, E, true, Some(400))),
            ((None, Ok(700), None), (0, E, true, Some(700))),
            (
                (Some(0), Ok(u64::MAX), None),
                (u64::MAX, E, false, Some(u64::MAX)),
            ),
            (
                (Some(5), Err(NotSupported), Some(2_000)),
                (2_000_000, P, true, None),
            ),
            ((None, Err(NotSupported), None), (0, P, true, None)),
            ((Some(5), Err(Unknown), Some(2_000)), (0, E, true, Some(5))),
        ];
        for ((baseline, counter, power), (energy, provenance, noted, next)) in cases {
            let got = interval_energy(baseline, &counter, power, Duration::from_secs(1));
            let case = format!("{baseline:?} {counter:?} {power:?}");
            assert_eq!(got.energy_uj, energy, "{case}");
            assert_eq!(got.provenance, provenance, "{case}");
            assert_eq!(got.note.is_some(), noted, "{case}: {:?}", got.note);
            assert_eq!(got.baseline_mj, next, "{case}");
        }
    }

    #[test]
    fn notes_say_what_happened() {
        let second = Duration::from_secs(1);
        let backwards = interval_energy(Some(9), &Ok(3), None, second);
        assert!(
            backwards
                .note
                .unwrap_or_default()
                .contains("went backwards (9 mJ -> 3 mJ")
        );
        let power = interval_energy(None, &Err(NvmlError::NotSupported), Some(1), second);
        assert!(power.note.unwrap_or_default().contains("power × Δt"));
        let failed = interval_energy(None, &Err(NvmlError::Unknown), None, second);
        assert!(failed.note.unwrap_or_default().starts_with(ENERGY_CALL));
    }
}
