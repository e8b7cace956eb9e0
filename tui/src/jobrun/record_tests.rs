//! Recorder tests on synthetic Intervals.
use super::*;
use agent::model::{EnergyDomainJson, SystemSummary};

const GREENTOP: u32 = 100;

/// A finished run with the given joules, grams and wall time (for stats tests).
pub(crate) fn run_with(joules: f64, gco2: f64, wall_s: f64) -> RunRecord {
    let mut record = Recorder::new(JobTree::new(GREENTOP, 0)).finish(end(wall_s));
    record.energy.joules = joules;
    record.energy.gco2 = gco2;
    record
}

fn end(wall_s: f64) -> RunEnd {
    RunEnd {
        command: vec!["job".into()],
        started_at: "2026-11-25T14:00:00.000Z".into(),
        ended_at: "2026-11-25T14:00:01.000Z".into(),
        wall_s,
        exit: ExitStatus {
            code: Some(0),
            signal: None,
        },
        rusage_cpu_seconds: 0.0,
        feed: "local".into(),
        notes: Vec::new(),
    }
}

fn process(pid: u32, ppid: u32, cpu_j: f64, exited: bool) -> ProcessEnergy {
    ProcessEnergy {
        pid,
        ppid,
        comm: format!("p{pid}"),
        start_ns: u64::from(pid),
        cpu_seconds: cpu_j / 10.0,
        cpu_joules: cpu_j,
        dram_joules: cpu_j / 10.0,
        joules: cpu_j * 1.1,
        gco2: cpu_j * 1.1 / 3.6e6 * 100.0,
        exited,
        ..ProcessEnergy::default()
    }
}

fn interval(seconds: f64, machine_cpu_j: f64, processes: Vec<ProcessEnergy>) -> Interval {
    let domain = |kind: &str, source: &str, measured| EnergyDomainJson {
        kind: kind.into(),
        source: source.into(),
        measured,
        ..EnergyDomainJson::default()
    };
    Interval {
        interval_s: seconds,
        system: SystemSummary {
            cpu_joules: machine_cpu_j,
            dram_joules: machine_cpu_j / 10.0,
            cpu_source: "rapl-powercap".into(),
            gpu_source: "none".into(),
            energy: vec![
                domain("package", "rapl-powercap", true),
                domain("dram", "rapl-powercap", true),
            ],
            region: "FRA".into(),
            intensity_g_per_kwh: 100.0,
            intensity_source: "fixed".into(),
            ledger: "ebpf-tp_btf".into(),
            idle_policy: "exclude".into(),
            pue: 1.0,
            ..SystemSummary::default()
        },
        processes,
        ..Interval::default()
    }
}

#[test]
fn the_job_is_its_tree_and_the_machine_is_everything() {
    let mut rec = Recorder::new(JobTree::new(GREENTOP, 0));
    rec.eat(&interval(
        0.5,
        40.0,
        vec![
            process(200, GREENTOP, 10.0, false),
            process(7, 1, 5.0, false),
        ],
    ));
    // The job's child forks and both exit within the next interval.
    rec.eat(&interval(
        0.5,
        40.0,
        vec![
            process(201, 200, 4.0, true),
            process(200, GREENTOP, 6.0, true),
        ],
    ));
    let r = rec.finish(end(1.0));
    assert_eq!(r.processes, 2);
    assert!((r.energy.cpu_joules - 20.0).abs() < 1e-9);
    assert!((r.energy.joules - 22.0).abs() < 1e-9);
    assert!((r.energy.dram_joules - 2.0).abs() < 1e-9);
    assert!((r.machine.joules - 88.0).abs() < 1e-9);
    assert!((r.machine_share - 22.0 / 88.0).abs() < 1e-12);
    assert!((r.watts_avg - 22.0).abs() < 1e-9);
    // Peak: the first interval, 11 J in 0.5 s.
    assert!((r.watts_peak - 22.0).abs() < 1e-9);
    assert!((r.carbon.intensity_g_per_kwh - 100.0).abs() < 1e-9);
    assert_eq!(r.provenance.cpu_source, "rapl-powercap");
    assert_eq!(r.provenance.dram_source, "rapl-powercap");
    assert!(r.provenance.measured);
    assert_eq!(r.top_processes[0].pid, 200);
    assert!(r.phases.is_empty(), "no marks, no phases");
}

#[test]
fn processes_not_seen_to_exit_are_unfinished() {
    let mut rec = Recorder::new(JobTree::new(GREENTOP, 0));
    rec.eat(&interval(
        0.5,
        1.0,
        vec![
            process(200, GREENTOP, 1.0, false),
            process(201, 200, 1.0, false),
        ],
    ));
    rec.eat(&interval(0.5, 1.0, vec![process(201, 200, 1.0, true)]));
    assert_eq!(rec.unfinished(), vec![(200, 200)]);
    assert_eq!(rec.exited_pids(), vec![201]);
}

#[test]
fn marks_split_the_run_into_phases() {
    let mut rec = Recorder::new(JobTree::new(GREENTOP, 0));
    rec.eat(&interval(
        0.3,
        10.0,
        vec![process(200, GREENTOP, 1.0, false)],
    ));
    rec.mark("load", 0.3);
    rec.eat(&interval(
        0.5,
        10.0,
        vec![process(200, GREENTOP, 2.0, false)],
    ));
    rec.eat(&interval(
        0.5,
        10.0,
        vec![process(200, GREENTOP, 3.0, false)],
    ));
    rec.mark("train", 1.3);
    rec.mark("eval", 1.3);
    rec.eat(&interval(
        0.05,
        1.0,
        vec![process(200, GREENTOP, 0.5, true)],
    ));
    let r = rec.finish(end(1.35));
    let names: Vec<&str> = r.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["(start)", "load", "train", "eval"]);
    let cpu: Vec<f64> = r.phases.iter().map(|p| p.energy.cpu_joules).collect();
    assert_eq!(cpu, [1.0, 5.0, 0.0, 0.5]);
    let walls: Vec<f64> = r.phases.iter().map(|p| p.wall_s).collect();
    for (got, want) in walls.iter().zip([0.3, 1.0, 0.0, 0.05]) {
        assert!((got - want).abs() < 1e-9, "{walls:?}");
    }
    // The 0.05 s interval is too short to set the peak (0.55 J / 0.05 s = 11 W).
    assert!((r.watts_peak - 3.3 / 0.5).abs() < 1e-9, "{}", r.watts_peak);
    let total: f64 = r.phases.iter().map(|p| p.energy.joules).sum();
    assert!((total - r.energy.joules).abs() < 1e-9);
}

#[test]
fn estimated_energy_and_changing_labels_are_said() {
    let mut rec = Recorder::new(JobTree::new(GREENTOP, 0));
    let mut first = interval(0.5, 10.0, vec![process(200, GREENTOP, 1.0, false)]);
    first.system.energy[0].measured = false;
    first.system.energy_notes = vec!["a degraded read".into()];
    rec.eat(&first);
    let mut second = interval(0.5, 10.0, vec![process(200, GREENTOP, 1.0, false)]);
    second.system.intensity_source = "series".into();
    second.system.energy_notes = vec!["a degraded read".into()];
    rec.eat(&second);
    let r = rec.finish(end(1.0));
    assert!(!r.provenance.measured);
    assert_eq!(r.carbon.intensity_source, "fixed+series");
    assert_eq!(r.notes, ["a degraded read"]);
    assert_eq!(rec_unfinished(), vec![(200, 200)]);
}

fn rec_unfinished() -> Vec<(u32, u64)> {
    let mut rec = Recorder::new(JobTree::new(GREENTOP, 0));
    rec.eat(&interval(
        0.5,
        1.0,
        vec![process(200, GREENTOP, 1.0, false)],
    ));
    rec.unfinished()
}
