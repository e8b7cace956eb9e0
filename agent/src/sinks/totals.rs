//! Cumulative totals, kept by the consumers that show them (the JSON-lines sink,
//! log readers): the pipeline emits per-interval numbers only.
use std::collections::HashMap;

use crate::model::Interval;

/// `joules_total` and `gco2_total`: per-process running sums (by pid and start
/// time, forgotten when the process exits).
#[derive(Debug, Default)]
pub struct RunningTotals(HashMap<(u32, u64), (f64, f64)>);

impl RunningTotals {
    /// Adds the interval's joules and grams and writes the sums into it.
    pub fn apply(&mut self, interval: &mut Interval) {
        for p in &mut interval.processes {
            let key = (p.pid, p.start_ns);
            let total = self.0.entry(key).or_insert((0.0, 0.0));
            total.0 += p.joules;
            total.1 += p.gco2;
            (p.joules_total, p.gco2_total) = *total;
            if p.exited {
                self.0.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProcessEnergy;

    fn interval(rows: &[(u32, u64, f64, bool)]) -> Interval {
        let processes = rows
            .iter()
            .map(|&(pid, start_ns, joules, exited)| ProcessEnergy {
                pid,
                start_ns,
                joules,
                gco2: joules / 10.0,
                exited,
                ..ProcessEnergy::default()
            })
            .collect();
        Interval {
            processes,
            ..Interval::default()
        }
    }

    #[test]
    fn sums_per_process_and_forgets_the_exited() {
        let mut totals = RunningTotals::default();
        let mut seen = Vec::new();
        for rows in [
            &[(1, 5, 1.0, false), (2, 7, 2.0, false)][..],
            &[(1, 5, 3.0, true), (2, 7, 0.5, false)],
            &[(1, 9, 4.0, false)],
        ] {
            let mut i = interval(rows);
            totals.apply(&mut i);
            seen.extend(i.processes.iter().map(|p| (p.pid, p.joules_total)));
        }
        // pid 1 exited, then came back with another start time: from zero again.
        assert_eq!(seen, [(1, 1.0), (2, 2.0), (1, 4.0), (2, 2.5), (1, 4.0)]);
    }
}
