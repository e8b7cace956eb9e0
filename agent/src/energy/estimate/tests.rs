//! Tests of the TDP estimate against fixture procfs trees.
use super::*;

const XEON: &str = "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz";
const TEN_S: Duration = Duration::from_secs(10);

/// A procfs and sysfs tree: `packages[cpu]` is the package of each CPU.
struct Fixture {
    root: tempfile::TempDir,
    cpus: usize,
}

impl Fixture {
    fn new(model: &str, hypervisor: bool, packages: &[u32]) -> Fixture {
        let root = tempfile::tempdir().unwrap();
        let proc = root.path().join("proc");
        std::fs::create_dir_all(&proc).unwrap();
        let flags = if hypervisor {
            "fpu vme de pse tsc msr pae mce cx8 apic sep hypervisor lahf_lm"
        } else {
            "fpu vme de pse tsc msr pae mce cx8 apic sep lahf_lm"
        };
        let cpuinfo: String = (0..packages.len())
            .map(|cpu| {
                format!(
                    "processor\t: {cpu}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n\
                     model\t\t: 85\nmodel name\t: {model}\nphysical id\t: {}\n\
                     flags\t\t: {flags}\n\n",
                    packages[cpu]
                )
            })
            .collect();
        std::fs::write(proc.join("cpuinfo"), cpuinfo).unwrap();
        let cpu_dir = root.path().join("sys/devices/system/cpu");
        for (cpu, package) in packages.iter().enumerate() {
            let dir = cpu_dir.join(format!("cpu{cpu}/topology"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("physical_package_id"), format!("{package}\n")).unwrap();
        }
        std::fs::write(
            cpu_dir.join("possible"),
            format!("0-{}\n", packages.len() - 1),
        )
        .unwrap();
        let fixture = Fixture {
            root,
            cpus: packages.len(),
        };
        fixture.write_stat(&vec![(0, 0); packages.len()]);
        fixture
    }

    /// `/proc/stat` with each CPU at 1000 busy / 5000 idle ticks plus `extra`.
    fn write_stat(&self, extra: &[(u64, u64)]) {
        let mut text = String::from("cpu  9999 0 0 99999 0 0 0 0 0 0\n");
        for (cpu, (busy, idle)) in extra.iter().enumerate() {
            let busy = 1000 + busy;
            let user = busy / 2;
            let (system, irq) = (busy - user - 3, 3);
            let (idle, iowait) = (5000 + idle - 7, 7);
            text.push_str(&format!(
                "cpu{cpu} {user} 0 {system} {idle} {iowait} {irq} 0 0 0 0\n"
            ));
        }
        text.push_str("intr 12345 0 0\nctxt 6789\nbtime 1700000000\nprocesses 42\n");
        text.push_str("procs_running 1\nprocs_blocked 0\nsoftirq 1 2 3\n");
        std::fs::write(self.root.path().join("proc/stat"), text).unwrap();
    }

    fn open(&self, tdp_override_w: Option<f64>) -> EstimateSource {
        let root = self.root.path();
        EstimateSource::open(&root.join("proc"), &root.join("sys"), tdp_override_w).unwrap()
    }

    /// Energy (µJ) per package over 10 s with `load[cpu]` busy out of 100 ticks.
    fn energy_uj(&self, tdp_override_w: Option<f64>, load: &[u64]) -> Vec<(u32, u64)> {
        assert_eq!(load.len(), self.cpus);
        self.write_stat(&vec![(0, 0); self.cpus]);
        let mut source = self.open(tdp_override_w);
        let ticks: Vec<(u64, u64)> = load.iter().map(|&busy| (busy, 100 - busy)).collect();
        self.write_stat(&ticks);
        let reading = source.read_at(source.previous_at() + TEN_S).unwrap();
        assert_eq!(reading.elapsed, TEN_S);
        reading
            .domains
            .iter()
            .map(|d| {
                assert_eq!(d.domain.kind, DomainKind::Package);
                assert_eq!(d.provenance, Provenance::EstimatedTdp);
                (d.domain.index, d.energy_uj)
            })
            .collect()
    }
}

#[test]
fn load_curve_interpolates_between_teads_points() {
    let cases = [
        (-1.0, 0.12),
        (0.0, 0.12),
        (0.05, 0.22),
        (0.10, 0.32),
        (0.25, 0.48125),
        (0.50, 0.75),
        (0.75, 0.885),
        (1.0, 1.02),
        (2.0, 1.02),
    ];
    for (u, want) in cases {
        assert!(
            (load_curve(u) - want).abs() < 1e-12,
            "f({u}) = {}",
            load_curve(u)
        );
    }
}

#[test]
fn bare_metal_xeon_follows_tdp_times_curve() {
    let fixture = Fixture::new(XEON, false, &[0, 0]);
    // 150 W × f(u) × 10 s.
    let cases: &[(&[u64], u64)] = &[
        (&[0, 0], 180_000_000),       // 150 × 0.12
        (&[50, 50], 1_125_000_000),   // 150 × 0.75
        (&[100, 100], 1_530_000_000), // 150 × 1.02
        (&[25, 25], 721_875_000),     // 150 × 0.48125
        (&[0, 50], 721_875_000),      // 25 % over the package's CPUs
    ];
    for (load, want) in cases {
        assert_eq!(fixture.energy_uj(None, load), [(0, *want)], "{load:?}");
    }
    let source = fixture.open(None);
    let lines = source.describe().join("\n");
    for part in [
        XEON,
        "'Intel Xeon Gold 6248': 150 W",
        "bare metal",
        "override: none",
    ] {
        assert!(lines.contains(part), "{part:?} not in {lines}");
    }
    assert_eq!(source.name(), "estimated-tdp");
}

#[test]
fn vm_uses_per_vcpu_coefficients() {
    let fixture = Fixture::new("AMD EPYC", true, &[0, 0]);
    assert_eq!(fixture.energy_uj(None, &[0, 0]), [(0, 14_800_000)]); // 2 × 0.74 W
    assert_eq!(fixture.energy_uj(None, &[100, 100]), [(0, 70_000_000)]); // 2 × 3.5 W
    assert_eq!(fixture.energy_uj(None, &[50, 50]), [(0, 42_400_000)]); // 2 × 2.12 W
    let lines = fixture.open(None).describe().join("\n");
    for part in [
        "virtual machine",
        "per-vCPU",
        "no TDP table row matches 'AMD EPYC'",
    ] {
        assert!(lines.contains(part), "{part:?} not in {lines}");
    }
}

#[test]
fn override_sets_the_watts() {
    let metal = Fixture::new(XEON, false, &[0, 0]);
    assert_eq!(metal.energy_uj(Some(100.0), &[50, 50]), [(0, 750_000_000)]);
    let vm = Fixture::new("AMD EPYC", true, &[0, 0]);
    assert_eq!(vm.energy_uj(Some(20.0), &[100, 100]), [(0, 204_000_000)]);
    let lines = vm.open(Some(20.0)).describe().join("\n");
    assert!(lines.contains("--cpu-tdp-watts 20"), "{lines}");
    for bad in [0.0, -5.0, f64::NAN, f64::INFINITY] {
        let root = metal.root.path();
        let result = EstimateSource::open(&root.join("proc"), &root.join("sys"), Some(bad));
        assert!(matches!(result, Err(SourceError::Unsupported(_))), "{bad}");
    }
}

#[test]
fn unknown_model_assumes_85_w_and_says_so() {
    let fixture = Fixture::new("Acme Widget 9000", false, &[0]);
    assert_eq!(fixture.energy_uj(None, &[100]), [(0, 867_000_000)]); // 85 × 1.02
    let mut source = fixture.open(None);
    let reading = source.read_at(source.previous_at() + TEN_S).unwrap();
    let note = "unknown CPU model 'Acme Widget 9000': assumed 85 W";
    assert_eq!(reading.domains[0].note.as_deref(), Some(note));
    assert!(
        source.describe().iter().any(|l| l == note),
        "{:?}",
        source.describe()
    );
    // A known model carries no note.
    let known = Fixture::new(XEON, false, &[0]);
    assert_eq!(known.open(None).read().unwrap().domains[0].note, None);
}

#[test]
fn each_package_gets_its_own_power() {
    let metal = Fixture::new(XEON, false, &[0, 0, 1, 1]);
    let want = [(0, 180_000_000), (1, 1_530_000_000)];
    assert_eq!(metal.energy_uj(None, &[0, 0, 100, 100]), want);
    let vm = Fixture::new("AMD EPYC", true, &[0, 0, 1, 1]);
    assert_eq!(
        vm.energy_uj(None, &[0, 0, 100, 100]),
        [(0, 14_800_000), (1, 70_000_000)]
    );
    // The override is for the whole VM, split by vCPUs: 10 W × 1.02 per package.
    let want = [(0, 102_000_000), (1, 102_000_000)];
    assert_eq!(vm.energy_uj(Some(20.0), &[100, 100, 100, 100]), want);
    let lines = metal.open(None).describe().join("\n");
    assert!(
        lines.contains("package 0: estimated from CPUs 0-1"),
        "{lines}"
    );
    assert!(
        lines.contains("package 1: estimated from CPUs 2-3"),
        "{lines}"
    );
}

#[test]
fn no_elapsed_ticks_keeps_the_previous_load() {
    let fixture = Fixture::new(XEON, false, &[0]);
    let mut source = fixture.open(None);
    fixture.write_stat(&[(100, 0)]);
    let first = source.read_at(source.previous_at() + TEN_S).unwrap();
    let second = source.read_at(source.previous_at() + TEN_S).unwrap();
    assert_eq!(first.domains[0].energy_uj, 1_530_000_000);
    assert_eq!(second.domains[0].energy_uj, 1_530_000_000);
}

#[test]
fn parses_stat_fields() {
    let path = Path::new("/fixture/stat");
    let text = "cpu  1 2 3 4\ncpu0 10 2 5 70 5 3 2 3 7 1\ncpu2 1 2 3 4\nintr 1 2\n";
    let want = vec![
        Some(CpuTicks { busy: 25, idle: 75 }), // guest (7, 1) is inside user, nice
        None,
        Some(CpuTicks { busy: 6, idle: 4 }), // a kernel without iowait…steal
    ];
    assert_eq!(parse_stat(path, text).unwrap(), want);
}

#[test]
fn malformed_stat_is_a_parse_error_naming_the_file() {
    let fixture = Fixture::new(XEON, false, &[0]);
    let stat = fixture.root.path().join("proc/stat");
    let mut source = fixture.open(None);
    for text in [
        "cpu0 10 abc 5 70\n",
        "cpu0 10 2\n",
        "cpux 1 2 3 4\n",
        "cpu99999999 1 2 3 4\n",
        "intr 1 2 3\n",
        "",
    ] {
        std::fs::write(&stat, text).unwrap();
        let err = source.read().unwrap_err();
        assert!(
            matches!(&err, SourceError::Parse { path, .. } if *path == stat),
            "{err:?}"
        );
        assert!(err.to_string().contains("proc/stat"), "{err}");
        let root = fixture.root.path();
        let open = EstimateSource::open(&root.join("proc"), &root.join("sys"), None);
        assert!(matches!(open, Err(SourceError::Parse { .. })), "{text:?}");
    }
}

#[test]
fn missing_cpuinfo_names_the_file() {
    let fixture = Fixture::new(XEON, false, &[0]);
    let root = fixture.root.path();
    std::fs::remove_file(root.join("proc/cpuinfo")).unwrap();
    let err = EstimateSource::open(&root.join("proc"), &root.join("sys"), None)
        .err()
        .unwrap();
    assert!(matches!(err, SourceError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("proc/cpuinfo"), "{err}");
}

#[test]
fn formats_cpu_ranges() {
    let cases: &[(&[usize], &str)] = &[
        (&[], ""),
        (&[0], "0"),
        (&[0, 1, 2, 3], "0-3"),
        (&[0, 1, 2, 3, 8], "0-3,8"),
        (&[1, 3, 4], "1,3-4"),
    ];
    for (cpus, want) in cases {
        assert_eq!(cpu_ranges(cpus), *want);
    }
}

#[test]
fn real_proc_smoke() {
    let mut source = EstimateSource::open(Path::new("/proc"), Path::new("/sys"), None).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let reading = source.read().unwrap();
    let seconds = reading.elapsed.as_secs_f64();
    assert!(seconds >= 0.3, "{seconds}");
    let watts = reading
        .domains
        .iter()
        .map(|d| d.energy_uj as f64)
        .sum::<f64>()
        / 1e6
        / seconds;
    let vcpus = read_stat(Path::new("/proc/stat"))
        .unwrap()
        .iter()
        .flatten()
        .count() as f64;
    let packages = reading.domains.len() as f64;
    let (low, high) = match source.model {
        PowerModel::PerVcpu => (vcpus * VCPU_MIN_W, vcpus * VCPU_MAX_W),
        PowerModel::PackageTdp { tdp_w } => (packages * tdp_w * 0.12, packages * tdp_w * 1.02),
        PowerModel::MachineTdp { .. } => unreachable!("no override given"),
    };
    let slack = 1e-5 * high;
    assert!(
        low - slack <= watts && watts <= high + slack,
        "{watts} W not in {low}..={high}"
    );
    assert!(
        reading
            .domains
            .iter()
            .all(|d| d.provenance == Provenance::EstimatedTdp)
    );
    let is_vm = read_cpuinfo(Path::new("/proc/cpuinfo")).unwrap().hypervisor;
    assert_eq!(
        is_vm,
        source.model == PowerModel::PerVcpu,
        "{:?}",
        source.describe()
    );
}
