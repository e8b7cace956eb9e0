//! Bad values are errors, not silent defaults: every option, config key and input
//! file given a value greentop cannot use ends it with one line on stderr naming the
//! value (or `file:line`) and exit status 2. The lines are compared with
//! tests/golden/errors.txt (`UPDATE_GOLDEN=1` rewrites it).
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn greentop() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_greentop"))
}

/// Files the cases name, written into the directory greentop runs in, so the
/// messages hold relative paths.
const FILES: &[(&str, &str)] = &[
    ("bad-key.toml", "region = \"FR\"\nregoin = \"DE\"\n"),
    ("bad-syntax.toml", "idle = \"share\"\nregion = \n"),
    ("bad-region.toml", "# my site\nregion = \"Frnace\"\n"),
    ("bad-pue.toml", "region = \"FR\"\npue = 0.8\n"),
    ("bad-idle.toml", "idle = \"sometimes\"\n"),
    (
        "bad-calibration.toml",
        "[calibration.package_idle_w]\n0 = 12.5\n1 = -4.0\n",
    ),
    ("bad-intensity.toml", "intensity_g_per_kwh = 9000.0\n"),
    ("series-key.toml", "intensity_series = \"gap.csv\"\n"),
    (
        "bad-value.csv",
        "timestamp,g_per_kwh\n2026-01-01T00:00:00Z,abc\n",
    ),
    (
        "bad-time.csv",
        "2026-01-01T00:00:00Z,10\n2026-01-01 1am,10\n",
    ),
    (
        "gap.csv",
        "timestamp,g_per_kwh\n2026-01-01T00:00:00Z,10\n2026-01-01T01:00:00Z,20\n\
         2026-01-01T05:00:00Z,30\n2026-01-01T06:00:00Z,40\n",
    ),
    (
        "short.csv",
        "timestamp,g_per_kwh\n2026-01-01T00:00:00Z,10\n",
    ),
    (
        "ok.csv",
        "2026-01-01T00:00:00Z,10\n2026-01-01T01:00:00Z,20\n2026-01-01T02:00:00Z,30\n",
    ),
    ("no-token.toml", "[electricitymaps]\nzone = \"FR\"\n"),
    (
        "bad-zone.toml",
        "[electricitymaps]\ntoken = \"t\"\nzone = \"F R\"\n",
    ),
    (
        "bad-url.toml",
        "[carbon_intensity_uk]\nenabled = true\nbase_url = \"ftp://example.invalid\"\n",
    ),
];

/// Arguments after `greentop`; batch cases run on /proc with one short interval.
const CASES: &[&str] = &[
    "--region XX-NOPE",
    "--region Frnace",
    "--region aws:us-east-9",
    "--region azure:west-europe",
    "--region ''",
    "--pue 0.5",
    "--pue 3.5",
    "--pue x",
    "--intensity 9000",
    "--intensity=-1",
    "--cpu-tdp-watts 0",
    "-d 0",
    "-d 7200",
    "-n 0",
    "--idle sometimes",
    "--sysfs-root missing-dir",
    "--procfs-root gap.csv",
    "--nvml-lib missing.so",
    "--config missing.toml",
    "--config bad-key.toml",
    "--config bad-syntax.toml",
    "--config bad-region.toml",
    "--config bad-pue.toml",
    "--config bad-idle.toml",
    "--config bad-calibration.toml",
    "--config bad-intensity.toml",
    "--config series-key.toml",
    "--config no-token.toml",
    "--config bad-zone.toml",
    "--config bad-url.toml",
    "--intensity-series missing.csv",
    "--intensity-series bad-value.csv",
    "--intensity-series bad-time.csv",
    "--intensity-series gap.csv",
    "--intensity-series short.csv",
    "greenest --duration 0s --series gap.csv",
    "greenest --duration 4h --within 1h --series ok.csv",
    "greenest --duration 4h --series short.csv",
    "greenest --duration soon --series gap.csv",
    "",
];

/// Runs one case: `(command line as shown, exit status, stderr)`.
fn run_case(dir: &Path, case: &str) -> (String, Option<i32>, String) {
    let words: Vec<String> = case
        .split_whitespace()
        .map(|w| w.trim_matches('\'').to_string())
        .collect();
    let subcommand = words.first().is_some_and(|w| w == "greenest");
    let live = words.is_empty();
    let mut args: Vec<String> = Vec::new();
    if !subcommand && !live {
        args.extend(["--batch", "--ledger", "procfs", "--no-gpu"].map(String::from));
        for (flag, value) in [("-n", "1"), ("-d", "0.1")] {
            if !words.iter().any(|w| w == flag) {
                args.extend([flag.to_string(), value.to_string()]);
            }
        }
    }
    args.extend(words);
    // A config home that does not exist keeps the user's config out of it.
    let out = Command::new(greentop())
        .args(&args)
        .current_dir(dir)
        .env("XDG_CONFIG_HOME", dir.join("no-config"))
        .env_remove("GREENTOP_ELECTRICITYMAPS_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("run greentop");
    let quoted: Vec<&str> = args
        .iter()
        .map(|a| if a.is_empty() { "''" } else { a })
        .collect();
    let shown = format!("$ greentop {}", quoted.join(" "))
        .trim_end()
        .to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (shown, out.status.code(), stderr)
}

#[test]
fn bad_values_are_one_line_errors_with_status_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in FILES {
        std::fs::write(dir.path().join(name), text).expect("write fixture");
    }
    let mut report = String::new();
    for case in CASES {
        let (shown, status, stderr) = run_case(dir.path(), case);
        assert_eq!(status, Some(2), "{shown}: exit {status:?}\n{stderr}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{shown}: not one line:\n{stderr}"
        );
        assert!(stderr.starts_with("greentop: "), "{shown}: {stderr}");
        assert!(
            stderr.matches("(os error").count() <= 1,
            "{shown}: repeated cause: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{shown}: {stderr}");
        report.push_str(&format!("{shown}\n{stderr}\n"));
    }
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/errors.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &report).expect("write golden");
    }
    let want = std::fs::read_to_string(&golden).unwrap_or_default();
    assert_eq!(
        report, want,
        "error messages changed: rerun with UPDATE_GOLDEN=1 and review the diff"
    );
}
