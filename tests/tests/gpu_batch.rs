//! The GPU probes through the whole pipeline, as batch mode runs it: the options
//! (`--gpu-probes`, `--cuda-lib`) parsed as the command line gives them, one tick, and
//! the batch JSON's per-process and per-thread `gpu_*` fields and `system.gpu_probes`.
use agent::cli::CommonArgs;
use agent::pipeline::open_pipeline;
use clap::Parser;
use greentop_tests::cuda::{CudaCalls, FakeCuda};

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[test]
fn batch_json_carries_cuda_calls_per_process_and_thread() {
    let fake = FakeCuda::build(&[]);
    let config = fake.dir.path().join("config.toml");
    std::fs::write(&config, "").unwrap();
    let args = Args::try_parse_from([
        "greentop",
        "--ledger",
        "ebpf",
        "--no-gpu",
        "--gpu-probes",
        "all",
        "--cuda-lib",
        fake.lib.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--intensity",
        "100",
    ])
    .unwrap();
    let mut pipeline =
        open_pipeline(&args.common.pipeline_options()).expect("pipeline (needs root)");
    pipeline.tick(true).expect("first tick");
    let sync = ("FAKE_CUDA_SYNC_US", "1000");
    let mut calls = CudaCalls::spawn(&fake, &fake.lib, (10, 20), false, &[sync]);
    let pid = calls.pid;
    calls.init();
    let (_, workers) = calls.run();
    let interval = pipeline.tick(true).expect("tick");
    let json = serde_json::to_value(&interval).unwrap();
    let process = json["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap_or_else(|| panic!("pid {pid} in the interval"));
    assert_eq!(process["gpu_ctx_switches"], 5 * 30);
    assert_eq!(process["gpu_launches"], 8 * 30);
    let wait_s = process["gpu_sync_wait_seconds"].as_f64().unwrap();
    assert!(
        wait_s >= 4.0 * 30.0 * 1e-3,
        "slept 1 ms in each of 120 syncs: {wait_s}"
    );
    for worker in workers {
        let thread = process["threads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tid"] == worker.tid)
            .unwrap_or_else(|| panic!("thread {} in {process}", worker.tid));
        assert_eq!(thread["gpu_launches"], 8 * worker.calls_each, "{thread}");
        assert_eq!(
            thread["gpu_ctx_switches"],
            5 * worker.calls_each,
            "{thread}"
        );
    }
    let probes = &json["system"]["gpu_probes"];
    assert_eq!(probes["mode"], "all");
    let library = format!("{} (17 entry points)", fake.lib.display());
    assert!(
        probes["libraries"]
            .as_array()
            .unwrap()
            .contains(&library.into()),
        "{probes}"
    );
}
