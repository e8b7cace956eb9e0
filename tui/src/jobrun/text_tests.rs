//! The summaries on fixed records.
use super::*;
use crate::jobrun::child::ExitStatus;
use crate::jobrun::record::{CarbonUsed, Energy, MachineEnergy, Provenance};
use crate::jobrun::stats::{compare, summarize};
use agent::carbon::Equivalents;

fn energy(joules: f64, gco2: f64) -> Energy {
    Energy {
        cpu_seconds: 2.5,
        cpu_joules: joules * 0.9,
        dram_joules: joules * 0.1,
        gpu_joules: 0.0,
        joules,
        gco2,
    }
}

fn record(joules: f64, wall_s: f64) -> RunRecord {
    let gco2 = joules / 3.6e6 * 56.0;
    RunRecord {
        command: vec!["python".into(), "train.py".into(), "--epochs 3".into()],
        started_at: "2026-11-25T14:00:00.000Z".into(),
        ended_at: "2026-11-25T14:00:12.000Z".into(),
        wall_s,
        exit: ExitStatus {
            code: Some(0),
            signal: None,
        },
        energy: energy(joules, gco2),
        watts_avg: joules / wall_s,
        watts_peak: 2.0 * joules / wall_s,
        machine: MachineEnergy {
            joules: joules * 4.0,
            ..MachineEnergy::default()
        },
        machine_share: 0.25,
        carbon: CarbonUsed {
            region: "FRA".into(),
            intensity_g_per_kwh: 56.0,
            intensity_source: "table".into(),
            pue: 1.0,
        },
        equivalents: Equivalents::from_grams(gco2),
        provenance: Provenance {
            ledger: "ebpf-tp_btf".into(),
            cpu_source: "rapl-powercap".into(),
            dram_source: "rapl-powercap".into(),
            gpu_source: "none".into(),
            measured: true,
            idle_policy: "exclude".into(),
            gpus: Vec::new(),
        },
        feed: "local".into(),
        processes: 3,
        rusage_cpu_seconds: 2.49,
        phases: vec![
            Phase {
                name: "epoch".into(),
                start_s: 0.0,
                wall_s: 4.0,
                energy: energy(40.0, 0.0006),
            },
            Phase {
                name: "eval".into(),
                start_s: 4.0,
                wall_s: 1.0,
                energy: energy(5.0, 0.0001),
            },
            Phase {
                name: "epoch".into(),
                start_s: 5.0,
                wall_s: 5.0,
                energy: energy(50.0, 0.0008),
            },
        ],
        top_processes: Vec::new(),
        notes: vec!["a note".into()],
    }
}

#[test]
fn one_run() {
    let text = run_summary(&record(100.0, 10.0), Some("resnet"), Some(1000.0));
    let want = "\
greentop run: python train.py \"--epochs 3\" [resnet]
  exit status 0 · wall 10.00 s · CPU 2.50 s (rusage 2.49 s) · 3 processes
  energy  CPU 90.0 J (rapl-powercap) · DRAM 10.0 J (rapl-powercap) · GPU 0 J (none) · total 100 J [measured]
          avg 10.0 W · peak 20.0 W · 25.0 % of the machine's 400 J (idle policy exclude, ledger ebpf-tp_btf)
  carbon  1.56 mg CO₂ at 56 gCO₂/kWh (FRA, table)
          = 1.30e-5 car km · 1.94e-4 phone charges · 1.73e-8 flight hours · 7.41e-8 tree-years
  per unit (1000): 100 mJ · 0.00156 mgCO₂ · 10 ms
  phase                         wall       CPU     energy        CO₂
  epoch ×2                    9.00 s    5.00 s     90.0 J    1.40 mg
  eval                        1.00 s    2.50 s     5.00 J    0.10 mg
  note: a note
";
    assert_eq!(text, want, "\n{text}");
}

#[test]
fn the_agent_feed_is_named() {
    let mut r = record(100.0, 10.0);
    r.feed = "agent:/run/greentop/agent.sock".into();
    let text = run_summary(&r, None, None);
    assert!(
        text.contains("(idle policy exclude, ledger ebpf-tp_btf, via greentop-agent /run/greentop/agent.sock)\n"),
        "{text}"
    );
}

#[test]
fn numbers_read_well() {
    for (x, want) in [
        (0.0, "0"),
        (0.0153, "0.0153"),
        (0.001556, "0.00156"),
        (12.34, "12.3"),
        (2.67e-8, "2.67e-8"),
        (1000.0, "1000"),
        (1.5, "1.5"),
    ] {
        assert_eq!(small(x), want, "{x}");
    }
    for (s, want) in [
        (0.0123, "12 ms"),
        (0.000085, "85 µs"),
        (2.345, "2.35 s"),
        (3600.0, "3600 s"),
    ] {
        assert_eq!(seconds(s), want, "{s}");
    }
}

#[test]
fn repeats_and_comparisons() {
    let runs = vec![record(100.0, 10.0), record(120.0, 11.0), record(90.0, 9.0)];
    let text = repeat_summary(&runs[0].command, &summarize(&runs, Some(10.0)));
    assert!(
        text.starts_with("greentop run: 3 runs of python train.py"),
        "{text}"
    );
    assert!(
        text.contains("energy  100 J (90.0 J–120 J, spread 30.0 %)"),
        "{text}"
    );
    assert!(
        text.contains("per unit (10): 10.0 J (9.00 J–12.0 J"),
        "{text}"
    );
    let faster = vec![record(70.0, 8.0), record(84.0, 8.8), record(63.0, 7.2)];
    let all = [runs.clone(), faster];
    let summaries: Vec<_> = all.iter().map(|r| summarize(r, None)).collect();
    let commands = vec![runs[0].command.clone(), vec!["b".to_string()]];
    let text = comparison(&commands, &summaries, &compare(&all));
    assert!(
        text.contains("[2] vs [1]: 30.0 % less energy: energy ×0.700 (0.700–0.700), time ×0.800"),
        "{text}"
    );
    let line = run_line(1, None, &runs[1]);
    assert_eq!(
        line,
        "greentop run: run 2 of python train.py \"--epochs 3\": 11.00 s · 120 J · CPU 2.50 s · 1.87 mg CO₂ · exit status 0\n"
    );
}
