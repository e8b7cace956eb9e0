//! What each tool said, read back from its output: CPU seconds and joules per pid,
//! and the node's energy per interval.
//!
//! Scaphandre reports power, not CPU time: its process power is the host's power ×
//! the process's share of all CPUs, so the CPU time it attributes in a step is
//! `process W / host W × CPUs × step s`, the step being the time between two of its
//! reports as they arrived here.
use std::collections::HashMap;

use serde_json::Value;

/// One interval of the node's energy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeInterval {
    pub secs: f64,
    pub joules: f64,
}

/// A tool's account of a run.
#[derive(Debug, Default)]
pub struct Account {
    pub cpu_s: HashMap<u32, f64>,
    pub joules: HashMap<u32, f64>,
    pub intervals: Vec<NodeInterval>,
    /// Whether per-process CPU time is known (CodeCarbon in RAPL mode has none).
    pub splits: bool,
}

impl Account {
    pub fn cpu_of(&self, pids: &[u32]) -> f64 {
        pids.iter().filter_map(|p| self.cpu_s.get(p)).sum()
    }

    pub fn joules_of(&self, pids: &[u32]) -> f64 {
        pids.iter().filter_map(|p| self.joules.get(p)).sum()
    }

    fn add(&mut self, pid: u32, cpu_s: f64, joules: f64) {
        *self.cpu_s.entry(pid).or_default() += cpu_s;
        *self.joules.entry(pid).or_default() += joules;
    }
}

/// greentop-agent's JSON lines (the batch JSON contract).
pub fn greentop(lines: &[(f64, String)]) -> Account {
    let mut account = Account {
        splits: true,
        ..Account::default()
    };
    for (_, line) in lines {
        let Ok(interval) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let system = &interval["system"];
        account.intervals.push(NodeInterval {
            secs: interval["interval_s"].as_f64().unwrap_or(f64::NAN),
            joules: system["cpu_joules"].as_f64().unwrap_or(f64::NAN),
        });
        for p in interval["processes"].as_array().into_iter().flatten() {
            let (Some(pid), Some(cpu), Some(joules)) = (
                p["pid"].as_u64(),
                p["cpu_seconds"].as_f64(),
                p["joules"].as_f64(),
            ) else {
                continue;
            };
            account.add(pid as u32, cpu, joules);
        }
    }
    account
}

/// gt-procpoll's JSON lines.
pub fn procpoll(lines: &[(f64, String)]) -> Account {
    let mut account = Account {
        splits: true,
        ..Account::default()
    };
    let mut last_t = 0.0;
    for (_, line) in lines {
        let Ok(scan) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let t = scan["t"].as_f64().unwrap_or(f64::NAN);
        account.intervals.push(NodeInterval {
            secs: t - last_t,
            joules: scan["node_joules"].as_f64().unwrap_or(f64::NAN),
        });
        last_t = t;
        for p in scan["processes"].as_array().into_iter().flatten() {
            if let (Some(pid), Some(cpu), Some(joules)) = (
                p["pid"].as_u64(),
                p["cpu_seconds"].as_f64(),
                p["joules"].as_f64(),
            ) {
                account.add(pid as u32, cpu, joules);
            }
        }
    }
    // The first scan's interval began at the poller's first (baseline) scan, not at 0.
    if let Some(first) = account.intervals.first_mut() {
        first.secs = f64::NAN;
    }
    account
}

/// Scaphandre's stdout exporter: `Host:\t<W> W from …` opens a report, process lines
/// are `<W> W\t<pid>\t"<exe>"`. Each report covers the time since the previous one.
pub fn scaphandre(lines: &[(f64, String)], ncpu: usize) -> Account {
    let mut account = Account {
        splits: true,
        ..Account::default()
    };
    let (mut host_w, mut step_s, mut last_at) = (f64::NAN, f64::NAN, None::<f64>);
    for (at, line) in lines {
        if let Some(rest) = line.strip_prefix("Host:") {
            host_w = rest
                .split_whitespace()
                .next()
                .and_then(|w| w.parse().ok())
                .unwrap_or(f64::NAN);
            step_s = last_at.map_or(f64::NAN, |last| at - last);
            last_at = Some(*at);
            account.intervals.push(NodeInterval {
                secs: step_s,
                joules: host_w * step_s,
            });
            continue;
        }
        let mut fields = line.split('\t');
        let (Some(watts), Some(pid)) = (fields.next(), fields.next()) else {
            continue;
        };
        let (Some(watts), Ok(pid)) = (
            watts.strip_suffix(" W").and_then(|w| w.parse::<f64>().ok()),
            pid.parse::<u32>(),
        ) else {
            continue;
        };
        if step_s.is_nan() {
            continue;
        }
        let cpu_s = if host_w > 0.0 {
            watts / host_w * ncpu as f64 * step_s
        } else {
            0.0
        };
        account.add(pid, cpu_s, watts * step_s);
    }
    account
}

/// The CodeCarbon driver's last line: cumulative CPU joules after each measurement.
/// In CPU-load mode at `load_watts` its joules imply the tracked tree's CPU time
/// (`J × CPUs / W`), credited to `tree_pid`.
pub fn codecarbon(
    lines: &[(f64, String)],
    load_watts: Option<f64>,
    tree_pid: u32,
    ncpu: usize,
) -> Account {
    let mut account = Account::default();
    let Some(report) = lines
        .iter()
        .rev()
        .find_map(|(_, l)| serde_json::from_str::<Value>(l).ok())
    else {
        return account;
    };
    let samples: Vec<(f64, f64)> = report["samples"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s[0].as_f64()?, s[1].as_f64()?)))
        .collect();
    for pair in samples.windows(2) {
        account.intervals.push(NodeInterval {
            secs: pair[1].0 - pair[0].0,
            joules: pair[1].1 - pair[0].1,
        });
    }
    let total = report["cpu_joules"].as_f64().unwrap_or(f64::NAN);
    let cpu_s = load_watts.map_or(f64::NAN, |w| total * ncpu as f64 / w);
    account.splits = load_watts.is_some();
    account.add(tree_pid, cpu_s, total);
    account
}

/// Lines of a child's stdout the CodeCarbon driver passed through (`child: …`).
pub fn child_lines(lines: &[(f64, String)]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|(_, l)| l.strip_prefix("child: ").map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamped(lines: &[(f64, &str)]) -> Vec<(f64, String)> {
        lines.iter().map(|(t, l)| (*t, (*l).to_owned())).collect()
    }

    #[test]
    fn greentop_json_lines() {
        let lines = stamped(&[
            (
                1.0,
                r#"{"interval_s":1.0,"system":{"cpu_joules":40.0},"processes":[{"pid":7,"cpu_seconds":0.5,"joules":10.0},{"pid":8,"cpu_seconds":0.1,"joules":2.0}]}"#,
            ),
            (
                2.0,
                r#"{"interval_s":1.01,"system":{"cpu_joules":40.4},"processes":[{"pid":7,"cpu_seconds":0.25,"joules":5.0,"exited":true}]}"#,
            ),
            (2.5, "greentop-agent: not JSON"),
        ]);
        let account = greentop(&lines);
        assert_eq!(account.cpu_of(&[7]), 0.75);
        assert_eq!(account.joules_of(&[7, 8, 9]), 17.0);
        assert_eq!(
            account.intervals,
            [
                NodeInterval {
                    secs: 1.0,
                    joules: 40.0
                },
                NodeInterval {
                    secs: 1.01,
                    joules: 40.4
                }
            ]
        );
    }

    #[test]
    fn procpoll_json_lines() {
        let lines = stamped(&[
            (
                0.0,
                r#"{"t":1.0,"node_joules":40.0,"processes":[{"pid":3,"cpu_seconds":0.5,"joules":20.0}]}"#,
            ),
            (
                0.0,
                r#"{"t":2.5,"node_joules":60.0,"processes":[{"pid":3,"cpu_seconds":0.25,"joules":10.0}]}"#,
            ),
        ]);
        let account = procpoll(&lines);
        assert_eq!(account.cpu_of(&[3]), 0.75);
        assert!(account.intervals[0].secs.is_nan());
        assert_eq!(
            account.intervals[1],
            NodeInterval {
                secs: 1.5,
                joules: 60.0
            }
        );
    }

    #[test]
    fn scaphandre_stdout_reports() {
        let lines = stamped(&[
            (0.5, "Measurement step is: 1s"),
            (1.0, "Host:\t0 W from "),
            (1.0, "0 W\t42\t\"/bin/busy\""),
            (2.2, "Host:\t40 W from powercap_rapl"),
            (2.2, "Top 5 consumers:"),
            (2.2, "Power\t\tPID\tExe"),
            (2.2, "20 W\t42\t\"/bin/busy\""),
            (2.2, "2 W\t43\t\"/bin/other\""),
        ]);
        let account = scaphandre(&lines, 2);
        // 20 W of 40 W on 2 CPUs over 1.2 s: 1.2 CPU-seconds, 24 J.
        assert!((account.cpu_of(&[42]) - 1.2).abs() < 1e-9);
        assert!((account.joules_of(&[42]) - 24.0).abs() < 1e-9);
        assert!((account.cpu_of(&[43]) - 0.12).abs() < 1e-9);
        assert_eq!(account.intervals.len(), 2);
        assert!(account.intervals[0].secs.is_nan());
        assert!((account.intervals[1].joules - 48.0).abs() < 1e-9);
    }

    #[test]
    fn codecarbon_driver_report() {
        let lines = stamped(&[
            (0.1, "ready"),
            (0.2, "child: children_cpu_ns 1000"),
            (
                5.0,
                r#"{"cpu_joules": 80.0, "samples": [[10.0, 0.0], [11.0, 40.0], [12.0, 80.0]], "hardware": ["RAM", "intel_rapl"]}"#,
            ),
        ]);
        let rapl = codecarbon(&lines, None, 9, 2);
        assert!(!rapl.splits && rapl.cpu_of(&[9]).is_nan());
        assert_eq!(rapl.joules_of(&[9]), 80.0);
        assert_eq!(
            rapl.intervals,
            [NodeInterval {
                secs: 1.0,
                joules: 40.0
            }; 2]
        );
        let load = codecarbon(&lines, Some(40.0), 9, 2);
        assert_eq!(load.cpu_of(&[9]), 4.0);
        assert_eq!(child_lines(&lines), ["children_cpu_ns 1000"]);
    }
}
