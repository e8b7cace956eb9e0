//! `greentop run` against the kernel's own accounting and a fixture RAPL: a job that
//! forks 100 short-lived children (half of them orphaned at once) while 4 threads
//! work. Its CPU time must equal the tree's getrusage, and its joules the idle
//! policy's formula at the fixture's known power. Needs root (eBPF ledger).
//!
//! The fixture's `energy_uj` files are FIFOs: a real-time thread computes each value
//! when greentop opens the file, from the time of that read, so the counter holds
//! exactly `power × elapsed` at the instants greentop reads it, however late any
//! thread is scheduled on a loaded machine.
mod run_support;

use run_support::rapl::{DRAM_W, PACKAGE_W, cpus_in_one_package, fixture_sysfs};
use run_support::*;

#[test]
fn a_forking_threaded_job_matches_getrusage_and_the_formula() {
    let (sysfs, counters) = fixture_sysfs();
    let root = sysfs.path().to_str().unwrap();
    let options = [
        "--sysfs-root",
        root,
        "--source",
        "rapl",
        "--no-gpu",
        "--idle",
        "exclude",
        "--ledger",
        "ebpf",
        "--intensity",
        "100",
    ];
    let (out, report) = run_json(&options, &job_cmd(&["tree", "100", "20", "4", "400"]));
    drop(counters);
    assert!(out.status.success(), "{}", out.stderr);
    let run = only_run(&report);
    let oracle_s = printed(&out.stdout, "tree_cpu_ns") / 1e9;
    let cpu_s = f(&run["cpu_seconds"]);
    eprintln!(
        "CPU {cpu_s:.4} s vs getrusage {oracle_s:.4} s: {:+.2} %",
        (cpu_s / oracle_s - 1.0) * 100.0
    );
    assert!(
        rel(cpu_s, oracle_s) <= 0.02,
        "CPU {cpu_s} s, getrusage of the tree {oracle_s} s"
    );
    // greentop reaped the job and its orphans: its own rusage agrees too.
    assert!(
        rel(f(&run["rusage_cpu_seconds"]), oracle_s) <= 0.02,
        "{run}"
    );
    // The job, 100 children and 50 intermediates.
    assert!(run["processes"].as_u64().unwrap() >= 151, "{run}");
    // exclude: E = P × c / ncpu, whatever else the machine ran.
    let ncpu = cpus_in_one_package();
    for (field, watts) in [("cpu_joules", PACKAGE_W), ("dram_joules", DRAM_W)] {
        let got = f(&run[field]);
        let want = watts * oracle_s / ncpu;
        eprintln!(
            "{field} {got:.3} J vs formula {want:.3} J: {:+.2} %",
            (got / want - 1.0) * 100.0
        );
        assert!(rel(got, want) <= 0.02, "{field} {got} J, formula {want} J");
    }
    assert_eq!(run["provenance"]["cpu_source"], "rapl-powercap");
    assert_eq!(run["provenance"]["measured"], true);
    let joules = f(&run["joules"]);
    let gco2 = f(&run["gco2"]);
    assert!(rel(gco2, joules / 3.6e6 * 100.0) < 1e-9, "{run}");
    assert!(f(&run["machine_share"]) > 0.0 && f(&run["machine_share"]) <= 1.0);
}
