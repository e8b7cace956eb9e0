//! docs/deploy/ is checked, not just shipped: the systemd unit passes
//! `systemd-analyze verify` without a warning and grants exactly what the agent is
//! measured to need; the DaemonSet parses, is not privileged and adds only those
//! capabilities; the Prometheus configs parse (`promtool check config` for the one
//! Debian's promtool can read); the dashboard is valid JSON with its queries.
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/deploy")
        .join(file)
}

fn read(file: &str) -> String {
    std::fs::read_to_string(deploy(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn yaml(file: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The value of `key=` in the unit (the last one).
fn unit_value(unit: &str, key: &str) -> String {
    let prefix = format!("{key}=");
    unit.lines()
        .rev()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key}= in the unit"))
        .to_string()
}

#[test]
fn the_systemd_unit_verifies_and_grants_only_what_is_measured() {
    let unit = read("greentop-agent.service");
    // verify wants ExecStart to exist: point it at the binary this build made.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("greentop-agent.service");
    let built = env!("CARGO_BIN_EXE_greentop-agent");
    std::fs::write(&copy, unit.replace("/usr/local/bin/greentop-agent", built)).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap_or_else(|e| {
            panic!("systemd-analyze not found ({e}): `cargo xtask setup` installs Debian's systemd")
        });
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
    let granted = "CAP_BPF CAP_PERFMON CAP_DAC_READ_SEARCH";
    assert_eq!(unit_value(&unit, "AmbientCapabilities"), granted);
    assert_eq!(unit_value(&unit, "CapabilityBoundingSet"), granted);
    for (key, value) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ReadWritePaths", "/var/log/greentop"),
        ("User", "greentop"),
        ("UMask", "0027"),
    ] {
        assert_eq!(unit_value(&unit, key), value, "{key}");
    }
    let exec = unit_value(&unit, "ExecStart");
    assert!(exec.contains("--metrics-addr 127.0.0.1:"), "{exec}");
    assert!(
        exec.contains("--log-dir /var/log/greentop "),
        "the writable path: {exec}"
    );
    let sysusers = read("greentop.sysusers.conf");
    assert!(
        sysusers.lines().any(|l| l.starts_with("u greentop ")),
        "{sysusers}"
    );
}

#[test]
fn the_daemonset_is_unprivileged_with_its_host_mounts() {
    let docs = yaml("daemonset.yaml");
    let set = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("DaemonSet"))
        .expect("a DaemonSet");
    let pod = &set["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"].as_bool(), Some(true), "host processes");
    let container = &pod["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["privileged"].as_bool(), Some(false));
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
    let strings = |y: &Yaml| -> Vec<String> {
        y.as_vec()
            .map(|v| {
                v.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(strings(&security["capabilities"]["drop"]), ["ALL"]);
    assert_eq!(
        strings(&security["capabilities"]["add"]),
        ["BPF", "PERFMON"]
    );
    let args = strings(&container["args"]);
    for wanted in [
        "--metrics-allow-remote",
        "--sysfs-root=/host/sys",
        "--log-dir=/var/log/greentop",
    ] {
        assert!(args.iter().any(|a| a == wanted), "{wanted} in {args:?}");
    }
    let mounts: Vec<(String, String)> = container["volumeMounts"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().into(),
                m["mountPath"].as_str().unwrap().into(),
            )
        })
        .collect();
    let host_path = |name: &str| {
        pod["volumes"]
            .as_vec()
            .unwrap()
            .iter()
            .find(|v| v["name"].as_str() == Some(name))
            .and_then(|v| v["hostPath"]["path"].as_str())
            .unwrap_or_else(|| panic!("volume {name}"))
            .to_string()
    };
    for (host, inside) in [
        ("/sys", "/host/sys"),
        ("/var/log/greentop", "/var/log/greentop"),
    ] {
        let (name, _) = mounts
            .iter()
            .find(|(_, path)| path == inside)
            .unwrap_or_else(|| panic!("{inside} mounted: {mounts:?}"));
        assert_eq!(host_path(name), host, "{inside}");
    }
    let annotations = &set["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/port"].as_str(), Some("9911"));
}

#[test]
fn the_prometheus_configs_parse_and_honor_the_job_label() {
    for file in ["prometheus.yml", "prometheus-kubernetes.yml"] {
        let docs = yaml(file);
        let jobs = docs[0]["scrape_configs"].as_vec().expect("scrape_configs");
        for job in jobs {
            assert_eq!(job["honor_labels"].as_bool(), Some(true), "{file}: {job:?}");
        }
    }
    // Debian's promtool has no Kubernetes discovery: it checks the hosts' file.
    let out = Command::new("promtool")
        .args(["check", "config"])
        .arg(deploy("prometheus.yml"))
        .output()
        .expect("promtool: `cargo xtask setup` installs Debian's prometheus");
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "promtool check config: {said}");
}

#[test]
fn the_dashboard_is_json_with_a_query_per_panel() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("grafana-dashboard.json")).unwrap();
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8);
    for panel in panels {
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().expect("expr");
            assert!(expr.contains("greentop_"), "{expr}");
        }
    }
}
