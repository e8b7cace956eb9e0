//! The report against logs written by the real writer from synthetic intervals:
//! every row equals the sum of the logged intervals exactly.
use std::path::Path;

use super::*;
use crate::model::{Interval, ProcessEnergy};
use crate::sinks::Sink;
use crate::sinks::log::synth::{Synth, Workload};
use crate::sinks::log::{LogOptions, LogWriter, read_intervals};

/// Two writer runs (two segments) of synthetic intervals; returns what was logged.
fn logged(dir: &Path, n: usize) -> Vec<Interval> {
    let mut synth = Synth::new(Workload::new(25));
    let intervals: Vec<Interval> = (0..n).map(|_| synth.next_interval()).collect();
    for part in intervals.chunks(n / 2 + 1) {
        let mut writer = LogWriter::open(LogOptions::new(dir)).unwrap();
        part.iter().for_each(|i| writer.write(i).unwrap());
        writer.close().unwrap();
    }
    let mut back = Vec::new();
    read_intervals(&[dir.to_path_buf()], &mut |i| back.push(i)).unwrap();
    back
}

fn label(p: &ProcessEnergy, by: GroupBy) -> String {
    match by {
        GroupBy::Process => format!("{} [{}]", p.comm, p.pid),
        GroupBy::Job => p.job.clone().unwrap_or_else(|| "(no job)".into()),
        GroupBy::Cgroup => p.cgroup.clone(),
        GroupBy::User => p.user.clone(),
        GroupBy::Comm | GroupBy::Machine => p.comm.clone(),
    }
}

/// Per group (cpu, dram, gpu, total J, gCO₂, seconds), summed in log order.
fn oracle(intervals: &[Interval], by: GroupBy) -> HashMap<String, [f64; 6]> {
    let mut sums: HashMap<String, [f64; 6]> = HashMap::new();
    for interval in intervals {
        let mut seen = Vec::new();
        for p in &interval.processes {
            let s = sums.entry(label(p, by)).or_default();
            for (acc, v) in
                s.iter_mut()
                    .zip([p.cpu_joules, p.dram_joules, p.gpu_joules, p.joules, p.gco2])
            {
                *acc += v;
            }
            if !seen.contains(&label(p, by)) {
                seen.push(label(p, by));
                s[5] += interval.interval_s;
            }
        }
    }
    sums
}

fn report(dir: &Path, opts: &ReportOptions) -> Report {
    build(&[dir.to_path_buf()], opts, &mut |_, _| {}).unwrap()
}

#[test]
fn every_row_is_the_exact_sum_of_the_logged_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let intervals = logged(dir.path(), 40);
    for by in [
        GroupBy::Process,
        GroupBy::Job,
        GroupBy::Cgroup,
        GroupBy::User,
        GroupBy::Comm,
    ] {
        let opts = ReportOptions {
            by: Some(by),
            ..ReportOptions::default()
        };
        let r = report(dir.path(), &opts);
        let expected = oracle(&intervals, by);
        assert_eq!(r.rows.len(), expected.len() + 1, "{by:?}: groups + (idle)");
        for row in &r.rows[..r.rows.len() - 1] {
            let e = expected
                .get(&row.group)
                .unwrap_or_else(|| panic!("{by:?} {}", row.group));
            let got = [
                row.cpu_joules,
                row.dram_joules,
                row.gpu_joules,
                row.joules,
                row.gco2,
                row.seconds,
            ];
            assert_eq!(
                got.map(f64::to_bits),
                e.map(f64::to_bits),
                "{by:?} {}",
                row.group
            );
        }
        let idle = r.rows.last().unwrap();
        assert_eq!(idle.group, "(idle)");
        let mut idle_j = 0.0;
        let mut measured = 0.0;
        for i in &intervals {
            let b = &i.system.balance;
            idle_j += b.cpu.idle_j + b.dram.idle_j + b.gpu.idle_j;
            measured += b.cpu.measured_j + b.dram.measured_j + b.gpu.measured_j;
        }
        assert_eq!(idle.joules.to_bits(), idle_j.to_bits());
        assert_eq!(r.machine.joules.to_bits(), measured.to_bits());
        let logged_g: f64 = intervals.iter().map(|i| i.system.gco2).sum();
        assert_eq!(r.machine.gco2.to_bits(), logged_g.to_bits());
        assert!(
            r.residual_joules.abs() <= 1e-9 * measured,
            "{by:?}: {}",
            r.residual_joules
        );
        assert_eq!(r.intervals, 40);
    }
}

#[test]
fn machine_is_one_row_with_idle_included() {
    let dir = tempfile::tempdir().unwrap();
    let intervals = logged(dir.path(), 10);
    let opts = ReportOptions {
        by: Some(GroupBy::Machine),
        ..ReportOptions::default()
    };
    let r = report(dir.path(), &opts);
    assert_eq!(r.rows.len(), 1);
    let seconds: f64 = intervals.iter().map(|i| i.interval_s).sum();
    assert_eq!(r.rows[0].seconds, seconds);
    assert_eq!(r.rows[0].joules, r.machine.joules);
    assert!((r.rows[0].share_pct(&r.machine) - 100.0).abs() < 1e-12);
    let peak = intervals
        .iter()
        .map(|i| (i.system.cpu_joules + i.system.dram_joules + i.system.gpu_joules) / i.interval_s)
        .fold(0.0, f64::max);
    assert!((r.rows[0].peak_watts - peak).abs() < 1e-9 * peak);
}

#[test]
fn since_until_top_and_recomputed_carbon() {
    let dir = tempfile::tempdir().unwrap();
    let intervals = logged(dir.path(), 20);
    let start = humantime::parse_rfc3339(&intervals[5].ts).unwrap();
    let end = humantime::parse_rfc3339(&intervals[15].ts).unwrap();
    let opts = ReportOptions {
        by: Some(GroupBy::Comm),
        since: Some(start),
        until: Some(end),
        top: Some(2),
        carbon: Some(CarbonConfig {
            region: Some("SE".into()),
            ..CarbonConfig::default()
        }),
        pue: None,
    };
    let r = report(dir.path(), &opts);
    assert_eq!(r.intervals, 10, "[since, until) holds intervals 5..15");
    assert_eq!(r.rows.len(), 4, "2 + (other) + (idle)");
    assert!(
        r.rows[2].group.starts_with("(other: "),
        "{}",
        r.rows[2].group
    );
    assert_eq!(r.rows[2].seconds, r.machine.seconds);
    assert!(r.rows[2].peak_watts.is_nan());
    let csv = format::csv(&r);
    let other = csv.lines().nth(3).unwrap();
    assert!(
        other.starts_with("(other: ") && other.contains(",,"),
        "no peak: {other}"
    );
    let sweden = crate::carbon::table::lookup("SWE").unwrap().g_per_kwh;
    let window = &intervals[5..15];
    let expected_g: f64 = window
        .iter()
        .map(|i| {
            let b = &i.system.balance;
            gco2(
                b.cpu.measured_j + b.dram.measured_j + b.gpu.measured_j,
                sweden,
            )
        })
        .sum();
    assert_eq!(r.machine.gco2.to_bits(), expected_g.to_bits());
    assert!(r.intensity.contains("SWE"), "{}", r.intensity);
    let total: f64 = r.rows.iter().map(|row| row.joules).sum();
    assert!((total - r.machine.joules).abs() < 1e-9 * r.machine.joules);
}

/// Synthetic intervals logged as if measured in a data centre with PUE 1.5.
fn logged_with_pue(dir: &Path, n: usize) -> Vec<Interval> {
    let mut synth = Synth::new(Workload::new(10));
    let mut writer = LogWriter::open(LogOptions::new(dir)).unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        let mut i = synth.next_interval();
        let g = i.system.intensity_g_per_kwh * 1.5;
        i.system.pue = 1.5;
        let b = &i.system.balance;
        i.system.gco2 = gco2(b.cpu.measured_j + b.dram.measured_j + b.gpu.measured_j, g);
        for p in &mut i.processes {
            p.gco2 = gco2(p.joules, g);
        }
        writer.write(&i).unwrap();
        out.push(i);
    }
    writer.close().unwrap();
    out
}

#[test]
fn the_logged_pue_applies_unless_another_is_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let intervals = logged_with_pue(dir.path(), 12);
    let measured = |i: &Interval| {
        let b = &i.system.balance;
        b.cpu.measured_j + b.dram.measured_j + b.gpu.measured_j
    };
    let sum = |f: &dyn Fn(&Interval) -> f64| intervals.iter().map(f).sum::<f64>();
    let logged = report(dir.path(), &ReportOptions::default());
    assert_eq!(
        logged.machine.gco2.to_bits(),
        sum(&|i| i.system.gco2).to_bits()
    );
    let process_g: f64 = logged.rows.iter().map(|r| r.gco2).sum();
    assert!((process_g - logged.machine.gco2).abs() < 1e-9 * logged.machine.gco2);
    let other_pue = ReportOptions {
        pue: Some(1.2),
        ..ReportOptions::default()
    };
    let r = report(dir.path(), &other_pue);
    let want = sum(&|i| gco2(measured(i), i.system.intensity_g_per_kwh * 1.2));
    assert_eq!(r.machine.gco2.to_bits(), want.to_bits());
    let sweden = ReportOptions {
        carbon: Some(CarbonConfig {
            region: Some("SE".into()),
            ..CarbonConfig::default()
        }),
        ..ReportOptions::default()
    };
    let r = report(dir.path(), &sweden);
    let g = crate::carbon::table::lookup("SWE").unwrap().g_per_kwh * 1.5;
    let want = sum(&|i| gco2(measured(i), g));
    assert_eq!(r.machine.gco2.to_bits(), want.to_bits());
}

#[test]
fn times_parse_as_rfc3339_or_a_duration_ago() {
    let now = UNIX_EPOCH + Duration::from_secs(1_795_385_400);
    assert_eq!(parse_time("2026-11-22T22:10:00Z", now), Ok(now));
    assert_eq!(parse_time("2026-11-22 22:10:00", now), Ok(now));
    assert_eq!(parse_time("1h", now), Ok(now - Duration::from_secs(3600)));
    assert!(
        parse_time("yesterday", now)
            .unwrap_err()
            .contains("'yesterday'")
    );
}

#[test]
fn formats_carry_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    logged(dir.path(), 6);
    let opts = ReportOptions {
        by: Some(GroupBy::Job),
        ..ReportOptions::default()
    };
    let r = report(dir.path(), &opts);
    let csv = format::csv(&r);
    assert_eq!(csv.lines().count(), r.rows.len() + 1);
    assert_eq!(csv.lines().next().unwrap(), format::CSV_COLUMNS.join(","));
    let json: serde_json::Value = serde_json::from_str(&format::json(&r)).unwrap();
    assert_eq!(json["rows"].as_array().unwrap().len(), r.rows.len());
    assert_eq!(json["rows"][0]["joules"].as_f64(), Some(r.rows[0].joules));
    let codecarbon = emissions::emissions_csv(&r);
    assert_eq!(
        codecarbon.lines().next().unwrap(),
        crate::codecarbon::COLUMNS.join(",")
    );
    let table = format::table(&r);
    assert!(
        table.contains("(idle)") && table.contains("slurm:10"),
        "{table}"
    );
    assert_eq!(format::duration(3725.0), "1h02m");
    for (value, text) in [
        (0.0, "0"),
        (1234.5, "1234"),
        (12.345, "12.3"),
        (0.0064123, "0.00641"),
        (2e-6, "2.00e-6"),
    ] {
        assert_eq!(format::number(value), text);
    }
}
