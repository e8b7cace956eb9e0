//! The perf-reader seam through the real pipeline into the batch JSON and the live
//! view: the VM of issue 8 (a perf PMU whose only event, `energy-psys`, reads 0), a
//! package counter that freezes and recovers, and this machine as it is. Counters
//! are closures evaluated at each read, so nothing waits on a helper thread.
use std::path::Path;
use std::time::Duration;

use agent::attribution::{Calibration, IdlePolicy};
use agent::config::Config;
use agent::energy::select::{CpuSourceChoice, SourceOptions, Sources};
use agent::energy::testkit::{CountScript, ScriptedPerf, perf_counts, perf_pmu_tree};
use agent::model::Interval;
use agent::pipeline::{Pipeline, Settings};
use agent::probes::procfs::ProcLedger;
use agent::topology::Topology;
use greentop_tui::app::{App, Msg, update};
use greentop_tui::view::header::Header;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::widgets::Widget;
use serde_json::Value;

fn options(root: &Path) -> SourceOptions {
    SourceOptions {
        sysfs_root: root.to_path_buf(),
        procfs_root: "/proc".into(),
        cpu: CpuSourceChoice::Auto,
        cpu_tdp_watts: None,
        nvml_lib: None,
        no_gpu: true,
        probe_window: Duration::from_millis(50),
    }
}

fn pipeline(sources: Sources) -> Pipeline {
    let ledger = ProcLedger::new(
        Path::new("/proc"),
        Topology::single_package(64),
        "test".into(),
    )
    .expect("the /proc ledger");
    let settings = Settings {
        procfs_root: "/proc".into(),
        policy: IdlePolicy::Exclude,
        calibration: Calibration::default(),
        config: Config::default(),
    };
    Pipeline::new(Box::new(ledger), sources, settings).expect("pipeline")
}

/// One interval after at least 50 ms (a sleep is only ever longer), as the batch
/// JSON line it prints and as the live view's header shows it.
fn tick(pipeline: &mut Pipeline, app: &mut App) -> (Value, Vec<String>) {
    std::thread::sleep(Duration::from_millis(50));
    let interval: Interval = pipeline.tick(false).expect("tick");
    let json = serde_json::to_value(&interval).unwrap();
    update(app, Msg::Interval(Box::new(interval)));
    let area = Rect::new(0, 0, 120, greentop_tui::view::header::height(app));
    let mut buf = Buffer::empty(area);
    Header(app).render(area, &mut buf);
    let lines = (0..area.height)
        .map(|y| {
            (0..area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
        })
        .collect();
    (json, lines)
}

fn cpu_watts(header: &[String]) -> f64 {
    let field: Vec<&str> = header[0].split_whitespace().collect();
    let value: f64 = field[1].parse().unwrap();
    match field[2] {
        "W" => value,
        "mW" => value / 1e3,
        "kW" => value * 1e3,
        unit => panic!("unit {unit} in {:?}", header[0]),
    }
}

#[test]
fn a_psys_counter_stuck_at_zero_is_an_estimate_in_json_and_live_view() {
    let root = tempfile::tempdir().unwrap();
    perf_pmu_tree(root.path(), &[("energy-psys", 5)]);
    let opener =
        ScriptedPerf(|config, _| (config == 5).then(|| -> CountScript { Box::new(|_, _| Ok(0)) }));
    let sources = Sources::open_with(&options(root.path()), &opener).unwrap();
    let mut pipeline = pipeline(sources);
    let mut app = App::new(1.0, std::process::id(), false);
    for _ in 0..3 {
        let (json, header) = tick(&mut pipeline, &mut app);
        let system = &json["system"];
        assert_eq!(system["cpu_source"], "estimated-tdp", "{system}");
        assert!(
            system["cpu_joules"].as_f64().unwrap() > 0.0,
            "a labelled, non-zero estimate"
        );
        assert_eq!(
            (&system["platform_source"], &system["dram_source"]),
            (&"none".into(), &"estimated-memory".into())
        );
        assert_eq!(system["counters"][0]["problem"], "frozen");
        assert!(
            system["energy"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["measured"] == false)
        );
        assert!(
            header[0].starts_with("CPU ") && header[0].contains("W [estimated]"),
            "{header:#?}"
        );
        assert!(cpu_watts(&header) > 0.0, "{header:#?}");
        assert!(header[1].contains("W [estimated]"), "{header:#?}");
        assert!(
            header
                .last()
                .unwrap()
                .trim_end()
                .ends_with("Counters ⚠ power/energy-psys cpu 0 frozen: left out"),
            "{header:#?}"
        );
    }
}

#[test]
fn a_perf_counter_that_freezes_and_recovers_in_json_and_live_view() {
    let root = tempfile::tempdir().unwrap();
    perf_pmu_tree(root.path(), &[("energy-pkg", 2)]);
    // Reads: the open's baseline, the probe's two, the pipeline's baseline; then ticks.
    let frozen = 6..8;
    let opener = ScriptedPerf(move |config, _| {
        let frozen = frozen.clone();
        let mut last = 0;
        (config == 2).then(|| -> CountScript {
            Box::new(move |read, seconds| {
                if !frozen.contains(&read) {
                    last = perf_counts(20.0 * seconds);
                }
                Ok(last)
            })
        })
    });
    let mut pipeline = pipeline(Sources::open_with(&options(root.path()), &opener).unwrap());
    let mut app = App::new(1.0, std::process::id(), false);
    // (cpu_source, change, header badge, counters line)
    let want = [
        ("perf-power", None, "[measured]", None),
        ("perf-power", None, "[measured]", None),
        (
            "estimated-tdp",
            Some("distrusted"),
            "[estimated]",
            Some("frozen: estimated"),
        ),
        (
            "estimated-tdp",
            None,
            "[estimated]",
            Some("frozen: estimated"),
        ),
        (
            "estimated-tdp",
            Some("recovered"),
            "[estimated]",
            Some("counts again"),
        ),
        ("perf-power", None, "[measured]", None),
    ];
    for (k, (source, change, badge, counters)) in want.into_iter().enumerate() {
        let (json, header) = tick(&mut pipeline, &mut app);
        let system = &json["system"];
        assert_eq!(system["cpu_source"], source, "tick {k}: {system}");
        assert_eq!(system["counters"][0]["change"].as_str(), change, "tick {k}");
        assert!(
            header[0].contains(badge) && cpu_watts(&header) > 0.0,
            "tick {k}: {header:#?}"
        );
        let last = header.last().unwrap().trim_end().to_string();
        match counters {
            Some(text) => assert!(
                last.ends_with(&format!("⚠ power/energy-pkg cpu 0 {text}")),
                "tick {k}: {header:#?}"
            ),
            None => assert!(!last.contains("Counters"), "tick {k}: {header:#?}"),
        }
    }
}

#[test]
fn this_machine_shows_a_labelled_nonzero_cpu_figure() {
    // Whatever this machine has (nothing, a psys that reads 0, real RAPL), the CPU
    // figure is labelled and not zero.
    let sources = Sources::open(&options(Path::new("/sys"))).unwrap();
    let estimated = sources.cpu.name() == "estimated-tdp";
    let mut pipeline = pipeline(sources);
    let mut app = App::new(1.0, std::process::id(), false);
    let (json, header) = tick(&mut pipeline, &mut app);
    let system = &json["system"];
    assert!(system["cpu_joules"].as_f64().unwrap() > 0.0, "{system}");
    let badge = if estimated {
        "[estimated]"
    } else {
        "[measured]"
    };
    assert!(
        header[0].contains(badge) && cpu_watts(&header) > 0.0,
        "{header:#?}"
    );
}
