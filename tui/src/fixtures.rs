//! Hand-built, deterministic Intervals for tests, screen snapshots and the render
//! benchmark: a small machine with a training job on a GPU, a shell, a database and
//! greentop itself. No clocks: everything follows from the tick number.
use agent::model::{
    BalanceJson, CounterJson, EnergyDomainJson, GpuJson, GpuProcessJson, Interval,
    LedgerHealthJson, PackageTime, ProcessEnergy, SystemSummary, ThreadEnergy,
};

/// greentop's own pid in the fixtures.
pub const OWN_PID: u32 = 4242;

struct Proc {
    pid: u32,
    ppid: u32,
    comm: &'static str,
    user: &'static str,
    job: Option<&'static str>,
    cgroup: &'static str,
    cpu_s: f64,
    joules: f64,
}

const PROCS: [Proc; 8] = [
    Proc {
        pid: 1,
        ppid: 0,
        comm: "systemd",
        user: "root",
        job: None,
        cgroup: "/init.scope",
        cpu_s: 0.001,
        joules: 0.02,
    },
    Proc {
        pid: 812,
        ppid: 1,
        comm: "sshd",
        user: "root",
        job: Some("ssh.service"),
        cgroup: "/system.slice/ssh.service",
        cpu_s: 0.002,
        joules: 0.05,
    },
    Proc {
        pid: 1200,
        ppid: 812,
        comm: "bash",
        user: "alice",
        job: Some("session-3.scope"),
        cgroup: "/user.slice/session-3.scope",
        cpu_s: 0.004,
        joules: 0.11,
    },
    Proc {
        pid: 2301,
        ppid: 1200,
        comm: "python",
        user: "alice",
        job: Some("train-resnet"),
        cgroup: "/user.slice/session-3.scope",
        cpu_s: 1.6,
        joules: 31.0,
    },
    Proc {
        pid: 2302,
        ppid: 2301,
        comm: "pt_data_worker",
        user: "alice",
        job: Some("train-resnet"),
        cgroup: "/user.slice/session-3.scope",
        cpu_s: 0.4,
        joules: 7.5,
    },
    Proc {
        pid: 3100,
        ppid: 1,
        comm: "postgres",
        user: "postgres",
        job: Some("postgresql.service"),
        cgroup: "/system.slice/postgresql.service",
        cpu_s: 0.15,
        joules: 2.9,
    },
    Proc {
        pid: 3300,
        ppid: 1200,
        comm: "make",
        user: "bob",
        job: Some("build-kernel"),
        cgroup: "/user.slice/session-7.scope",
        cpu_s: 0.3,
        joules: 5.2,
    },
    Proc {
        pid: OWN_PID,
        ppid: 1200,
        comm: "greentop",
        user: "root",
        job: None,
        cgroup: "/user.slice/session-3.scope",
        cpu_s: 0.008,
        joules: 0.15,
    },
];

/// `gpu`: the training job drives a GPU, and the eBPF probes see its CUDA calls.
fn process(p: &Proc, tick: u32, interval_s: f64, g_per_j: f64, gpu: bool) -> ProcessEnergy {
    // A gentle, deterministic wobble so sparklines have a shape.
    let wobble = 1.0 + 0.25 * f64::from(tick % 4) / 3.0;
    let joules = p.joules * wobble * interval_s;
    let cuda = gpu && p.pid == 2301;
    let threads = (p.pid == 2301).then(|| {
        vec![
            ThreadEnergy {
                tid: 2301,
                comm: "python".into(),
                cpu_seconds: 1.0,
                exited: false,
                joules: joules * 0.6,
                gco2: joules * 0.6 * g_per_j,
                gpu_ctx_switches: if cuda { 4 } else { 0 },
                gpu_launches: if cuda { 1450 } else { 0 },
                gpu_sync_wait_seconds: if cuda { 0.12 * interval_s } else { 0.0 },
                gpu_ioctls: if cuda { 12 } else { 0 },
            },
            ThreadEnergy {
                tid: 2305,
                comm: "pt_autograd_0".into(),
                cpu_seconds: 0.6,
                exited: false,
                joules: joules * 0.4,
                gco2: joules * 0.4 * g_per_j,
                gpu_launches: if cuda { 620 } else { 0 },
                gpu_sync_wait_seconds: if cuda { 0.3 * interval_s } else { 0.0 },
                ..ThreadEnergy::default()
            },
        ]
    });
    ProcessEnergy {
        pid: p.pid,
        ppid: p.ppid,
        comm: p.comm.to_string(),
        user: p.user.to_string(),
        uid: 1000,
        cgroup: p.cgroup.to_string(),
        job: p.job.map(str::to_string),
        start_ns: 1_000_000 + u64::from(p.pid),
        cpu_seconds: p.cpu_s * interval_s,
        cpu_seconds_by_package: vec![p.cpu_s * interval_s],
        exited: false,
        cpu_joules: joules * 0.9,
        dram_joules: joules * 0.1,
        gpu_joules: 0.0,
        joules,
        gco2: joules * g_per_j,
        joules_total: 0.0,
        gco2_total: 0.0,
        gpu_ctx_switches: if cuda { 4 } else { 0 },
        gpu_launches: if cuda { 2070 } else { 0 },
        gpu_sync_wait_seconds: if cuda { 0.42 * interval_s } else { 0.0 },
        gpu_ioctls: if cuda { 12 } else { 0 },
        threads,
    }
}

/// The interval ending at tick `tick` (1-based); `gpu` adds one GPU running the job.
pub fn interval(tick: u32, gpu: bool) -> Interval {
    let interval_s = 1.0;
    let intensity = 56.0;
    let g_per_j = intensity / 3.6e6;
    let processes: Vec<ProcessEnergy> = PROCS
        .iter()
        .map(|p| process(p, tick, interval_s, g_per_j, gpu))
        .collect();
    let attributed: f64 = processes.iter().map(|p| p.joules).sum();
    let cpu_joules = (55.0 + 5.0 * f64::from(tick % 5)) * interval_s;
    let gpu_joules = if gpu { 212.0 * interval_s } else { 0.0 };
    // Measured DRAM on the GPU machine; the memory estimate (24 GiB × 3/8 W) on the other.
    let dram_joules = if gpu { 4.2 } else { 9.0 } * interval_s;
    let gpus = if gpu {
        vec![gpu_json(gpu_joules)]
    } else {
        Vec::new()
    };
    let total = cpu_joules + dram_joules + gpu_joules;
    Interval {
        ts: format!("2025-03-01T12:00:{:02}.000Z", tick % 60),
        interval_s,
        system: SystemSummary {
            cpu_seconds: 2.47,
            idle_seconds: 5.53,
            cpus: 8,
            packages: vec![PackageTime {
                package: 0,
                cpu_seconds: 2.47,
                idle_seconds: 5.53,
            }],
            ledger: if gpu { "ebpf-tp_btf" } else { "procfs" }.to_string(),
            ledger_note: (!gpu).then(|| {
                "lower fidelity /proc sampling (short-lived processes are missed): not root"
                    .to_string()
            }),
            ledger_health: LedgerHealthJson {
                switches: 1834,
                flushes: 1,
                ns_per_switch: gpu.then_some(161.0),
                ..LedgerHealthJson::default()
            },
            cpu_joules,
            dram_joules,
            gpu_joules,
            cpu_source: if gpu {
                "rapl-powercap"
            } else {
                "estimated-tdp"
            }
            .to_string(),
            gpu_source: if gpu { "nvml-energy" } else { "none" }.to_string(),
            dram_source: if gpu {
                "rapl-powercap"
            } else {
                "estimated-memory"
            }
            .to_string(),
            platform_joules: 0.0,
            platform_source: "none".to_string(),
            counters: Vec::new(),
            energy: vec![
                EnergyDomainJson {
                    kind: "dram".into(),
                    index: 0,
                    name: if gpu { "dram-0" } else { "estimated memory 0" }.into(),
                    joules: dram_joules,
                    watts: dram_joules / interval_s,
                    source: if gpu {
                        "rapl-powercap"
                    } else {
                        "estimated-memory"
                    }
                    .into(),
                    measured: gpu,
                    note: None,
                },
                EnergyDomainJson {
                    kind: "package".into(),
                    index: 0,
                    name: "package-0".into(),
                    joules: cpu_joules,
                    watts: cpu_joules / interval_s,
                    source: if gpu {
                        "rapl-powercap"
                    } else {
                        "estimated-tdp"
                    }
                    .into(),
                    measured: gpu,
                    note: None,
                },
            ],
            gpus,
            energy_notes: Vec::new(),
            idle_joules: total - attributed,
            idle_policy: "exclude".into(),
            balance: BalanceJson {
                residual_joules: 0.0,
                ..BalanceJson::default()
            },
            region: "FR".into(),
            intensity_g_per_kwh: intensity,
            intensity_source: "table".into(),
            intensity_note: None,
            pue: 1.0,
            gco2: total * g_per_j,
            jobs: Vec::new(),
            gpu_probes: None,
            gpu_split: Vec::new(),
            sinks: Vec::new(),
        },
        processes,
    }
}

/// `interval(tick, false)` on a machine whose package counter froze (its energy from
/// the estimate until it counts again) and whose psys counter measures the platform.
pub fn frozen_counter_interval(tick: u32) -> Interval {
    let mut interval = interval(tick, false);
    let sys = &mut interval.system;
    let note = "intel-rapl:0 (package 0): did not advance in 1.00 s; package 0 from \
                estimated-tdp until it counts again";
    sys.platform_joules = 25.0 * interval.interval_s;
    sys.platform_source = "rapl-powercap".into();
    sys.energy.push(EnergyDomainJson {
        kind: "psys".into(),
        index: 0,
        name: "intel-rapl:1".into(),
        joules: sys.platform_joules,
        watts: 25.0,
        source: "rapl-powercap".into(),
        measured: true,
        note: None,
    });
    sys.counters = vec![
        CounterJson {
            name: "intel-rapl:0".into(),
            kind: "package".into(),
            index: 0,
            source: "rapl-powercap".into(),
            trusted: false,
            problem: Some("frozen".into()),
            note: Some(note.into()),
            change: (tick == 1).then(|| "distrusted".into()),
        },
        CounterJson {
            name: "intel-rapl:1".into(),
            kind: "psys".into(),
            index: 0,
            source: "rapl-powercap".into(),
            trusted: true,
            ..CounterJson::default()
        },
    ];
    sys.energy_notes.push(note.into());
    interval
}

fn gpu_json(joules: f64) -> GpuJson {
    GpuJson {
        index: 0,
        name: "NVIDIA H100 80GB HBM3".into(),
        uuid: "GPU-0000".into(),
        joules,
        power_w: Some(joules),
        gpu_util_pct: Some(87),
        mem_util_pct: Some(41),
        processes: vec![GpuProcessJson {
            pid: 2301,
            used_memory_bytes: Some(30 << 30),
            sm_util_pct: Some(85),
            mem_util_pct: Some(40),
            gpu_instance_id: None,
            compute_instance_id: None,
        }],
        notes: Vec::new(),
    }
}
