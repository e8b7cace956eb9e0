use super::*;

#[test]
fn example_config_parses_and_round_trips() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/config.example.toml");
    let config = Config::load(&path).unwrap();
    assert_eq!(config.region.as_deref(), Some("FR"));
    assert_eq!(config.idle, Some(IdlePolicy::Baseline));
    assert_eq!(config.pue, Some(1.2));
    assert_eq!(config.calibration.package_idle_w.get(&0), Some(&12.5));
    assert_eq!(config.calibration.gpu_idle_w.get(&0), Some(&61.0));
    let metrics = config.metrics.as_ref().expect("[metrics]");
    assert_eq!(metrics.addr, MetricsAddr::parse("127.0.0.1:9911").ok());
    assert_eq!((metrics.top_n, metrics.grace_s), (Some(20), Some(300.0)));
    assert_eq!(
        config
            .electricitymaps
            .as_ref()
            .and_then(|e| e.zone.as_deref()),
        Some("FR")
    );
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("sub/config.toml");
    config.save(&copy).unwrap();
    assert_eq!(Config::load(&copy).unwrap(), config);
}

#[test]
fn bad_configs_name_the_problem_and_its_line() {
    let cases: &[(&str, Option<usize>, &str)] = &[
        ("regoin = \"FR\"", Some(1), "unknown field `regoin`"),
        (
            "idle = \"sometimes\"",
            Some(1),
            "unknown variant `sometimes`",
        ),
        (
            "# c\nintensity_g_per_kwh = -3.0",
            Some(2),
            "intensity_g_per_kwh = -3 is outside 0.0..=5000.0",
        ),
        ("\n\npue = 0.5", Some(3), "pue = 0.5 is outside 1.0..=3.0"),
        ("pue = nan", Some(1), "pue = NaN is outside 1.0..=3.0"),
        (
            "idle = \"share\"\nregion = \"XX-NOPE\"",
            Some(2),
            "unknown region \"XX-NOPE\" (closest known: ",
        ),
        (
            "[calibration.package_idle_w]\n0 = 12.0\n1 = 99999.0",
            Some(3),
            "calibration.package_idle_w.1 = 99999 W is outside 0.0..=5000.0",
        ),
        ("region = ", Some(1), "string values must be quoted"),
        (
            "[metrics]\naddr = \"9911\"\ntop_n = 0",
            Some(3),
            "metrics.top_n = 0: 0 is outside 1..=10000",
        ),
    ];
    for &(text, line, wanted) in cases {
        let problem = Config::parse(text).unwrap_err();
        assert!(problem.message.starts_with(wanted), "{text:?}: {problem}");
        assert_eq!(problem.line, line, "{text:?}: {problem}");
        assert!(!problem.to_string().contains('\n'), "{problem}");
    }
    let err = Config::load(Path::new("/nonexistent/greentop.toml")).unwrap_err();
    assert_eq!(err.to_string(), "reading config /nonexistent/greentop.toml");
    let chain = format!("{:#}", anyhow::Error::new(err));
    assert_eq!(
        chain.matches("No such file or directory").count(),
        1,
        "{chain}"
    );
}

#[test]
fn parse_errors_read_file_line_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("greentop.toml");
    std::fs::write(&path, "region = \"FR\"\npue = 9.0\n").unwrap();
    let err = Config::load(&path).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("{}:2: pue = 9 is outside 1.0..=3.0", path.display())
    );
    std::fs::write(&path, "region = \"FR\"\n  regoin = 1\n").unwrap();
    let err = Config::load(&path).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}:2:3: unknown field `regoin`", path.display())),
        "{err}"
    );
}

#[test]
fn relative_series_is_next_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("greentop.toml");
    std::fs::write(&path, "intensity_series = \"grid.csv\"\npue = 1.2\n").unwrap();
    let config = Config::load(&path).unwrap();
    assert_eq!(config.intensity_series, Some(dir.path().join("grid.csv")));
    assert_eq!(config.carbon().unwrap().pue, Some(1.2));
}
