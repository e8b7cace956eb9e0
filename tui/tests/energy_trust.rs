//! A counter that does not count is never shown as measured (issue 8), through
//! `greentop --batch --json` on fixture powercap trees: flat counters, one that
//! freezes and recovers, a backwards jump that is not a wrap, and a psys-only
//! machine. Counters are FIFOs scripted by read index (so which interval freezes
//! does not depend on timing) and each interval's expected source, label and note is
//! derived from exactly what the fixture served at greentop's reads.
mod energy_support;

use agent::energy::testkit::{FifoCounter, Script, at_watts};
use energy_support::*;
use serde_json::Value;

/// Reads greentop makes of a counter before its first interval: the open's baseline,
/// the probe's two, `--list-sources`' describe and the pipeline's baseline.
const SETUP_READS: usize = 5;

fn batch(root: &str, ticks: usize, extra: &[&str]) -> (Vec<Value>, String) {
    let n = ticks.to_string();
    let args = [
        &[
            "--batch",
            "-n",
            &n,
            "-d",
            "0.25",
            "--json",
            "--no-gpu",
            "--sysfs-root",
            root,
        ][..],
        extra,
    ]
    .concat();
    let out = run(&args);
    (
        json_lines(&out),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// 20 W, whose reads in `frozen` return the previous value, and which drops by
/// `drop_j` joules at read `drop_at`.
fn scripted(frozen: std::ops::Range<usize>, drop_at: usize, drop_j: f64) -> Script {
    let mut last = 0;
    Box::new(move |read, seconds| {
        if !frozen.contains(&read) {
            let dropped = if read >= drop_at { drop_j * 1e6 } else { 0.0 };
            last = (1e9 + 20e6 * seconds - dropped) as u64;
        }
        last
    })
}

/// What greentop must report for the package in each interval, from the deltas it
/// read: (source, change, problem). Shorter intervals than the trust checks judge
/// cannot flip the state; the fixture's are 0.25 s.
fn expected(
    deltas: &[i128],
    lines: &[Value],
) -> Vec<(&'static str, Option<&'static str>, Option<&'static str>)> {
    let mut trusted = true;
    deltas
        .iter()
        .zip(lines)
        .map(|(&delta, line)| {
            let judged = line["interval_s"].as_f64().unwrap() >= 0.02;
            let joules = delta as f64 / 1e6;
            let bad = match () {
                _ if delta < 0 || joules > 1e5 => Some("backwards"),
                _ if delta == 0 && judged => Some("frozen"),
                _ => None,
            };
            match (trusted, bad) {
                (true, None) => ("rapl-powercap", None, None),
                (true, Some(problem)) => {
                    trusted = false;
                    ("estimated-tdp", Some("distrusted"), Some(problem))
                }
                (false, None) if judged => {
                    trusted = true;
                    ("estimated-tdp", Some("recovered"), None)
                }
                (false, _) => ("estimated-tdp", None, bad.or(Some("frozen"))),
            }
        })
        .collect()
}

fn check_package_story(lines: &[Value], deltas: &[i128], stderr: &str) -> Vec<&'static str> {
    let want = expected(deltas, lines);
    for (k, (line, (source, change, problem))) in lines.iter().zip(&want).enumerate() {
        let system = &line["system"];
        assert_eq!(system["cpu_source"], *source, "interval {k}: {system}");
        assert!(
            system["cpu_joules"].as_f64().unwrap() > 0.0,
            "interval {k}: non-zero"
        );
        let package = domains(system, "package")[0];
        assert_eq!(
            package["measured"],
            *source == "rapl-powercap",
            "interval {k}"
        );
        if *source == "rapl-powercap" {
            assert_eq!(
                (package["joules"].as_f64().unwrap() * 1e6).round() as i128,
                deltas[k]
            );
        }
        let counter = &system["counters"][0];
        assert_eq!(counter["name"], "intel-rapl:0");
        assert_eq!(
            counter["change"].as_str(),
            *change,
            "interval {k}: {counter}"
        );
        assert_eq!(
            counter["problem"].as_str(),
            *problem,
            "interval {k}: {counter}"
        );
        let notes = system["energy_notes"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let noted = notes
            .iter()
            .any(|n| n.as_str().unwrap().starts_with("intel-rapl:0 (package 0)"));
        assert_eq!(noted, *source == "estimated-tdp", "interval {k}: {notes:?}");
    }
    let changes: Vec<&str> = want.iter().filter_map(|(_, change, _)| *change).collect();
    if changes.contains(&"distrusted") {
        assert!(
            stderr.contains("greentop: WARNING: intel-rapl:0 (package 0): "),
            "{stderr}"
        );
    }
    if changes.contains(&"recovered") {
        assert!(
            stderr.contains(
                "greentop: intel-rapl:0 (package 0) counts again; measured from the next interval"
            ),
            "{stderr}"
        );
    }
    changes
}

#[test]
fn a_counter_that_freezes_switches_to_the_estimate_and_back() {
    let sysfs = powercap_copy("one-socket");
    let frozen = SETUP_READS + 2..SETUP_READS + 5;
    let package = FifoCounter::serve(
        &energy_file(sysfs.path(), "intel-rapl:0"),
        scripted(frozen, usize::MAX, 0.0),
    );
    let _dram = FifoCounter::serve(
        &energy_file(sysfs.path(), "intel-rapl:0:2"),
        at_watts(0, 2.0),
    );
    let (lines, stderr) = batch(sysfs.path().to_str().unwrap(), 8, &[]);
    let deltas = tick_deltas(&package.served(), lines.len());
    let changes = check_package_story(&lines, &deltas, &stderr);
    assert_eq!(
        changes,
        ["distrusted", "recovered"],
        "the fixture froze and recovered: {deltas:?}"
    );
    assert_eq!(
        lines.last().unwrap()["system"]["cpu_source"],
        "rapl-powercap"
    );
}

#[test]
fn a_backwards_jump_is_not_a_wrap() {
    let sysfs = powercap_copy("one-socket");
    let script = scripted(0..0, SETUP_READS + 2, 30.0);
    let package = FifoCounter::serve(&energy_file(sysfs.path(), "intel-rapl:0"), script);
    let _dram = FifoCounter::serve(
        &energy_file(sysfs.path(), "intel-rapl:0:2"),
        at_watts(0, 2.0),
    );
    let (lines, stderr) = batch(sysfs.path().to_str().unwrap(), 6, &[]);
    let deltas = tick_deltas(&package.served(), lines.len());
    assert_eq!(
        check_package_story(&lines, &deltas, &stderr),
        ["distrusted", "recovered"]
    );
    let note = lines
        .iter()
        .filter_map(|l| l["system"]["counters"][0]["note"].as_str())
        .find(|n| n.contains("went backwards"))
        .expect("a note on the backwards jump");
    assert!(
        note.contains(": not a wrap; package 0 from estimated-tdp until it counts again"),
        "{note}"
    );
}

#[test]
fn flat_counters_are_rejected_or_flagged_when_asked_for() {
    // The fixture's files never change: every counter is flat.
    let sysfs = powercap_copy("one-socket");
    let root = sysfs.path().to_str().unwrap();
    let (lines, stderr) = batch(root, 2, &[]);
    assert!(
        stderr.contains("CPU energy from estimated-tdp (no trustworthy energy counter: powercap: no counter passed the start-up probe"),
        "{stderr}"
    );
    for line in &lines {
        let system = &line["system"];
        assert_eq!(
            (&system["cpu_source"], &system["dram_source"]),
            (&"estimated-tdp".into(), &"estimated-memory".into())
        );
        assert!(system["cpu_joules"].as_f64().unwrap() > 0.0);
        let counters = system["counters"].as_array().unwrap();
        assert!(
            counters
                .iter()
                .all(|c| c["trusted"] == false && c["problem"] == "frozen"),
            "{system}"
        );
        let notes: Vec<&str> = system["energy_notes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            notes.iter().any(
                |n| n.starts_with("intel-rapl:0 (package 0): did not advance in ")
                    && n.ends_with("; package 0 from estimated-tdp until it counts again")
            ),
            "{notes:?}"
        );
        assert!(
            notes.iter().any(|n| n
                .ends_with("; DRAM from estimated-memory until every DRAM counter counts again")),
            "{notes:?}"
        );
    }
    let listed =
        String::from_utf8_lossy(&run(&["--list-sources", "--no-gpu", "--sysfs-root", root]).stdout)
            .into_owned();
    assert!(
        listed.contains("      probe: intel-rapl:0 (package 0): did not advance: 0.000000 J in "),
        "{listed}"
    );
    assert!(
        listed.contains(
            "      not chosen: no counter advanced at a plausible rate during the probe; watched"
        ),
        "{listed}"
    );
    assert!(
        listed.contains("; the DRAM counters did not pass the probe\n"),
        "{listed}"
    );
    // Asked for, it runs, shown as read and not as measured, with a loud warning.
    let (lines, stderr) = batch(root, 2, &["--source", "rapl"]);
    assert!(
        stderr.contains("greentop: WARNING: intel-rapl:0 (package 0): did not advance: "),
        "{stderr}"
    );
    assert!(
        stderr.contains("used anyway because --source rapl asked for it"),
        "{stderr}"
    );
    for line in &lines {
        let system = &line["system"];
        assert_eq!(system["cpu_source"], "rapl-powercap");
        assert!(
            system["energy"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["measured"] == false),
            "{system}"
        );
        let notes = system["energy_notes"].to_string();
        assert!(
            notes.contains("shown as read but not as measured, because --source asked for it"),
            "{notes}"
        );
    }
}

#[test]
fn psys_alone_is_the_platform_never_the_cpu() {
    let sysfs = powercap_copy("psys-only");
    let root = sysfs.path().to_str().unwrap();
    let psys = FifoCounter::serve(
        &energy_file(sysfs.path(), "intel-rapl:0"),
        at_watts(0, 25.0),
    );
    let (lines, stderr) = batch(root, 3, &[]);
    assert!(
        stderr.contains(
            "CPU energy from estimated-tdp (no package counter passed the start-up probe"
        ),
        "{stderr}"
    );
    let deltas = tick_deltas(&psys.served(), lines.len());
    for (line, delta) in lines.iter().zip(&deltas) {
        let system = &line["system"];
        assert_eq!(
            (&system["cpu_source"], &system["platform_source"]),
            (&"estimated-tdp".into(), &"rapl-powercap".into())
        );
        assert_eq!(
            (system["platform_joules"].as_f64().unwrap() * 1e6).round() as i128,
            *delta
        );
        let packages: f64 = domains(system, "package")
            .iter()
            .map(|d| d["joules"].as_f64().unwrap())
            .sum();
        assert_eq!(
            system["cpu_joules"].as_f64().unwrap(),
            packages,
            "psys is never added to the CPU"
        );
        assert!(
            domains(system, "package")
                .iter()
                .all(|d| d["source"] == "estimated-tdp")
        );
        let platform = domains(system, "psys")[0];
        assert_eq!(
            (&platform["measured"], &platform["name"]),
            (&true.into(), &"intel-rapl:0".into())
        );
    }
    let text = table(root);
    assert!(
        text.contains(" W (rapl-powercap)  idle") && text.contains("platform "),
        "{text}"
    );
    let listed =
        String::from_utf8_lossy(&run(&["--list-sources", "--no-gpu", "--sysfs-root", root]).stdout)
            .into_owned();
    assert!(
        listed.contains("Platform energy: rapl-powercap psys (the whole platform"),
        "{listed}"
    );
    drop(psys);
    // Flat, it is left out, and says so.
    let flat = powercap_copy("psys-only");
    let (lines, _) = batch(flat.path().to_str().unwrap(), 2, &[]);
    for line in &lines {
        let system = &line["system"];
        assert_eq!(
            (
                &system["platform_source"],
                system["platform_joules"].as_f64()
            ),
            (&"none".into(), Some(0.0))
        );
        assert!(domains(system, "psys").is_empty());
        assert!(
            system["energy_notes"]
                .to_string()
                .contains("platform energy left out until it counts again")
        );
    }
}
