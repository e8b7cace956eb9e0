//! greentop-agent's eBPF programs seen from outside: their ids from the agent's file
//! descriptors (`/proc/PID/fdinfo`, only programs this agent holds, never other
//! sessions'), their names and bpf_stats from the kernel.
use std::collections::BTreeMap;

/// The ids of the BPF programs process `pid` holds a descriptor of.
pub fn program_ids(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return Vec::new();
    };
    let mut ids: Vec<u32> = entries
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .filter_map(|text| prog_id(&text))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The `prog_id:` of an fdinfo text (only BPF program descriptors have one).
pub fn prog_id(fdinfo: &str) -> Option<u32> {
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("prog_id:"))
        .and_then(|v| v.trim().parse().ok())
}

/// (run time ns, run count) by program name, over the programs with those ids.
pub type Stats = BTreeMap<String, (u64, u64)>;

pub fn stats(ids: &[u32]) -> Stats {
    let mut out = Stats::new();
    for info in aya::programs::loaded_programs().flatten() {
        if !ids.contains(&info.id()) {
            continue;
        }
        let name = info.name_as_str().unwrap_or("?").to_owned();
        let entry = out.entry(name).or_default();
        entry.0 += info.run_time().as_nanos() as u64;
        entry.1 += info.run_count();
    }
    out
}

/// What the programs did between two readings.
#[derive(Debug, Default, PartialEq)]
pub struct Window {
    /// Run time of all programs, ns.
    pub all_ns: u64,
    /// The sched_switch program's run time and runs (one per context switch).
    pub switch_ns: u64,
    pub switches: u64,
}

/// The difference of two readings; the switch program's name starts with
/// `ledger_switch` (its `_btf`, `_raw` or `_tp` variant).
pub fn window(before: &Stats, after: &Stats) -> Window {
    let mut out = Window::default();
    for (name, &(ns, runs)) in after {
        let (ns0, runs0) = before.get(name).copied().unwrap_or_default();
        let (dns, druns) = (ns.saturating_sub(ns0), runs.saturating_sub(runs0));
        out.all_ns += dns;
        if name.starts_with("ledger_switch") {
            out.switch_ns += dns;
            out.switches += druns;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_of_a_program_and_of_other_descriptors() {
        let prog = "pos:\t0\nflags:\t02000002\nmnt_id:\t16\nino:\t1057\n\
                    prog_type:\t26\nprog_jited:\t1\nprog_tag:\t8f2b5e5c4d8b1a2f\n\
                    memlock:\t4096\nprog_id:\t731\nrun_time_ns:\t0\nrun_cnt:\t0\n";
        assert_eq!(prog_id(prog), Some(731));
        assert_eq!(prog_id("pos:\t0\nflags:\t02\nmap_id:\t12\n"), None);
    }

    #[test]
    fn a_window_sums_every_program_and_singles_out_the_switch() {
        let before = Stats::from([
            ("ledger_switch_btf".into(), (1_000, 10)),
            ("lifecycle_exit".into(), (500, 5)),
        ]);
        let after = Stats::from([
            ("ledger_switch_btf".into(), (3_000, 30)),
            ("lifecycle_exit".into(), (700, 6)),
            ("gpu_ioctl_count".into(), (100, 1)),
        ]);
        assert_eq!(
            window(&before, &after),
            Window {
                all_ns: 2_000 + 200 + 100,
                switch_ns: 2_000,
                switches: 20
            }
        );
    }
}
