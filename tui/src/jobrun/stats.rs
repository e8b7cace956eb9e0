//! Repeats and comparisons: the median and spread of each figure over runs, per run
//! and per unit, and the paired ratios of compared commands.
use serde::{Deserialize, Serialize};

use super::record::RunRecord;

/// A figure over repeated runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// The middle value; the mean of the two middle ones for an even count.
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// `(max − min) / median × 100`; 0 for one run or a zero median.
    pub spread_pct: f64,
}

impl Spread {
    /// `None` for no values; NaNs are left out.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let (&min, &max) = (sorted.first()?, sorted.last()?);
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        let spread_pct = if median != 0.0 {
            (max - min) / median.abs() * 100.0
        } else {
            0.0
        };
        Some(Spread {
            median,
            min,
            max,
            spread_pct,
        })
    }
}

/// One command's runs, summarised.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunsSummary {
    pub runs: usize,
    pub joules: Spread,
    pub gco2: Spread,
    pub wall_s: Spread,
    pub cpu_seconds: Spread,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_unit: Option<PerUnit>,
}

/// Per unit of work (`--units`): each run's figure divided by the units.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PerUnit {
    pub units: f64,
    pub joules: Spread,
    /// Milligrams of CO₂ per unit.
    pub mgco2: Spread,
    pub wall_s: Spread,
}

fn spread_of(runs: &[RunRecord], figure: impl Fn(&RunRecord) -> f64) -> Spread {
    let values: Vec<f64> = runs.iter().map(figure).collect();
    Spread::of(&values).unwrap_or_default()
}

/// The median and spread of each figure of `runs`, and per unit if `units` is set.
pub fn summarize(runs: &[RunRecord], units: Option<f64>) -> RunsSummary {
    let per_unit = units.map(|units| PerUnit {
        units,
        joules: spread_of(runs, |r| r.energy.joules / units),
        mgco2: spread_of(runs, |r| r.energy.gco2 * 1e3 / units),
        wall_s: spread_of(runs, |r| r.wall_s / units),
    });
    RunsSummary {
        runs: runs.len(),
        joules: spread_of(runs, |r| r.energy.joules),
        gco2: spread_of(runs, |r| r.energy.gco2),
        wall_s: spread_of(runs, |r| r.wall_s),
        cpu_seconds: spread_of(runs, |r| r.energy.cpu_seconds),
        per_unit,
    }
}

/// A compared command against the first one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Relative {
    /// Index of the command (0 is the baseline).
    pub command: usize,
    /// This command's joules over the baseline's, per round (the runs of one round
    /// ran back to back, so they saw the same machine).
    pub energy_ratio: Spread,
    /// Wall time, likewise.
    pub time_ratio: Spread,
    pub rounds: usize,
}

/// Each command after the first against the first, round by round: round `r` is the
/// `r`-th run of every command. Rounds where the baseline used nothing are skipped.
pub fn compare(runs_by_command: &[Vec<RunRecord>]) -> Vec<Relative> {
    let Some((baseline, others)) = runs_by_command.split_first() else {
        return Vec::new();
    };
    let ratios = |runs: &[RunRecord], figure: fn(&RunRecord) -> f64| -> Vec<f64> {
        baseline
            .iter()
            .zip(runs)
            .filter(|(b, _)| figure(b) > 0.0)
            .map(|(b, r)| figure(r) / figure(b))
            .collect()
    };
    others
        .iter()
        .enumerate()
        .map(|(i, runs)| {
            let energy = ratios(runs, |r| r.energy.joules);
            let time = ratios(runs, |r| r.wall_s);
            Relative {
                command: i + 1,
                rounds: energy.len(),
                energy_ratio: Spread::of(&energy).unwrap_or_default(),
                time_ratio: Spread::of(&time).unwrap_or_default(),
            }
        })
        .collect()
}

/// The order of the commands in round `round` of `count`: rotated by one each
/// round, so no command always runs first (after an idle machine) or last.
pub fn round_order(round: usize, count: usize) -> Vec<usize> {
    (0..count).map(|i| (round + i) % count.max(1)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobrun::record::tests::run_with;

    #[test]
    fn spread_table() {
        // (values, median, min, max, spread %)
        let cases: &[(&[f64], f64, f64, f64, f64)] = &[
            (&[5.0], 5.0, 5.0, 5.0, 0.0),
            (&[3.0, 1.0, 2.0], 2.0, 1.0, 3.0, 100.0),
            (&[4.0, 1.0, 2.0, 3.0], 2.5, 1.0, 4.0, 120.0),
            (&[10.0, 11.0, 9.0, f64::NAN], 10.0, 9.0, 11.0, 20.0),
            (&[0.0, 0.0], 0.0, 0.0, 0.0, 0.0),
        ];
        for &(values, median, min, max, pct) in cases {
            let s = Spread::of(values).unwrap();
            assert_eq!((s.median, s.min, s.max), (median, min, max), "{values:?}");
            assert!((s.spread_pct - pct).abs() < 1e-9, "{values:?}: {s:?}");
        }
        assert_eq!(Spread::of(&[]), None);
    }

    #[test]
    fn per_run_and_per_unit_medians() {
        let runs = [
            run_with(30.0, 0.003, 2.0),
            run_with(10.0, 0.001, 1.0),
            run_with(20.0, 0.002, 4.0),
        ];
        let s = summarize(&runs, Some(10.0));
        assert_eq!(s.runs, 3);
        assert_eq!(s.joules.median, 20.0);
        assert_eq!(s.wall_s.median, 2.0);
        let unit = s.per_unit.unwrap();
        assert_eq!(unit.joules.median, 2.0);
        assert!((unit.mgco2.median - 0.2).abs() < 1e-12);
        assert!((unit.mgco2.max - 0.3).abs() < 1e-12);
        assert_eq!(unit.wall_s.median, 0.2);
        assert_eq!(summarize(&runs, None).per_unit, None);
    }

    #[test]
    fn ratios_are_paired_by_round() {
        let a = vec![run_with(10.0, 0.0, 1.0), run_with(20.0, 0.0, 2.0)];
        let b = vec![run_with(7.0, 0.0, 1.5), run_with(16.0, 0.0, 2.0)];
        let relative = compare(&[a, b]);
        assert_eq!(relative.len(), 1);
        let r = &relative[0];
        assert_eq!((r.command, r.rounds), (1, 2));
        // Paired: 0.7 and 0.8, not median(b) / median(a) = 11.5 / 15.
        assert!((r.energy_ratio.median - 0.75).abs() < 1e-12);
        assert!((r.energy_ratio.min - 0.7).abs() < 1e-12);
        assert!((r.time_ratio.median - 1.25).abs() < 1e-12);
    }

    #[test]
    fn rounds_rotate() {
        assert_eq!(round_order(0, 3), [0, 1, 2]);
        assert_eq!(round_order(1, 3), [1, 2, 0]);
        assert_eq!(round_order(4, 2), [0, 1]);
    }
}
