//! Tests for series parsing, lookup and averaging.
use super::*;

fn t(s: &str) -> SystemTime {
    parse_rfc3339(s).unwrap()
}

fn secs(s: &str) -> u64 {
    t(s).duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn parse(text: &str) -> Result<Series, SeriesError> {
    Series::parse(text, Path::new("grid.csv"))
}

const HOURLY: &str = "\
# forecast, g/kWh
timestamp,g_per_kwh
2026-11-22T00:00:00Z,100
2026-11-22T01:00:00Z,200

2026-11-22T02:00:00Z,50
";

#[test]
fn rfc3339_table() {
    let cases: &[(&str, Option<(u64, u32)>)] = &[
        ("1970-01-01T00:00:00Z", Some((0, 0))),
        ("2026-11-22T22:10:00Z", Some((1_795_385_400, 0))),
        ("2026-11-22T22:10Z", Some((1_795_385_400, 0))),
        ("2026-11-22 22:10:00z", Some((1_795_385_400, 0))),
        ("2026-11-22T23:10:00+01:00", Some((1_795_385_400, 0))),
        ("2026-11-22T21:40:00-00:30", Some((1_795_385_400, 0))),
        (
            "2026-11-22T22:10:00.123Z",
            Some((1_795_385_400, 123_000_000)),
        ),
        (
            "2026-11-22T22:10:00.1234567891Z",
            Some((1_795_385_400, 123_456_789)),
        ),
        ("2024-02-29T00:00:00Z", Some((1_709_164_800, 0))),
        ("2000-03-01T00:00:00Z", Some((951_868_800, 0))),
        ("2023-02-29T00:00:00Z", None),
        ("2026-13-01T00:00:00Z", None),
        ("2026-11-22T24:00:00Z", None),
        ("2026-11-22T22:10:00", None),
        ("2026-11-22T22:10:00.Z", None),
        ("2026-11-22T22:10:00+0100", None),
        ("1969-12-31T23:59:59Z", None),
        ("22/11/2026 22:10", None),
        ("", None),
    ];
    for &(text, expected) in cases {
        let got = parse_rfc3339(text).map(|at| {
            let d = at.duration_since(UNIX_EPOCH).unwrap();
            (d.as_secs(), d.subsec_nanos())
        });
        assert_eq!(got, expected, "{text:?}");
    }
}

#[test]
fn parses_with_header_comments_and_blank_lines() {
    let series = parse(HOURLY).unwrap();
    assert_eq!(series.points().len(), 3);
    assert_eq!(series.start(), t("2026-11-22T00:00:00Z"));
    assert_eq!(series.end(), t("2026-11-22T03:00:00Z"));
    let without_header = parse("2026-11-22T00:00:00Z,1\n2026-11-22T00:30:00Z,2.5\n").unwrap();
    assert_eq!(without_header.points()[1].1, 2.5);
}

#[test]
fn value_at_is_a_step_function() {
    let series = parse(HOURLY).unwrap();
    let cases = [
        ("2026-11-21T23:59:59Z", None),
        ("2026-11-22T00:00:00Z", Some(100.0)),
        ("2026-11-22T00:59:59Z", Some(100.0)),
        ("2026-11-22T01:00:00Z", Some(200.0)),
        ("2026-11-22T02:30:00Z", Some(50.0)),
        ("2026-11-22T02:59:59Z", Some(50.0)),
        ("2026-11-22T03:00:00Z", None),
    ];
    for (at, expected) in cases {
        assert_eq!(series.value_at(t(at)), expected, "{at}");
    }
}

#[test]
fn average_over_is_time_weighted() {
    let series = parse(HOURLY).unwrap();
    let h = |n: u64| Duration::from_secs(n * 3600);
    let cases = [
        ("2026-11-22T00:00:00Z", h(1), Some(100.0)),
        ("2026-11-22T00:00:00Z", h(2), Some(150.0)),
        ("2026-11-22T00:30:00Z", h(1), Some(150.0)),
        (
            "2026-11-22T00:30:00Z",
            h(2),
            Some((50.0 + 200.0 + 25.0) / 2.0),
        ),
        ("2026-11-22T00:00:00Z", h(3), Some(350.0 / 3.0)),
        ("2026-11-22T00:00:00Z", h(4), None),
        ("2026-11-21T23:00:00Z", h(1), None),
        ("2026-11-22T00:00:00Z", h(0), None),
    ];
    for (from, duration, expected) in cases {
        let got = series.average_over(t(from), duration);
        match (got, expected) {
            (Some(g), Some(e)) => assert!((g - e).abs() < 1e-9, "{from} {duration:?}: {g}"),
            _ => assert_eq!(got, expected, "{from} {duration:?}"),
        }
    }
}

#[test]
fn bad_input_names_file_and_line() {
    let cases = [
        (
            "2026-11-22T00:00:00Z,1\nnot a line\n",
            "grid.csv:2: expected",
        ),
        (
            "2026-11-22T00:00:00Z,1\nyesterday,2\n",
            "grid.csv:2: bad RFC 3339",
        ),
        ("# c\n2026-11-22T00:00:00Z,x\n", "grid.csv:2: bad g_per_kwh"),
        (
            "2026-11-22T00:00:00Z,-3\n2026-11-22T01:00:00Z,1\n",
            "grid.csv:1: bad g_per_kwh",
        ),
        (
            "2026-11-22T00:00:00Z,NaN\n2026-11-22T01:00:00Z,1\n",
            "grid.csv:1: bad g_per_kwh",
        ),
        (
            "2026-11-22T01:00:00Z,1\n2026-11-22T00:00:00Z,1\n",
            "grid.csv:2: timestamp",
        ),
        (
            "2026-11-22T01:00:00Z,1\n2026-11-22T01:00:00Z,1\n",
            "grid.csv:2: timestamp",
        ),
        (
            "timestamp,g_per_kwh\n2026-11-22T01:00:00Z,1\n",
            "grid.csv: a series needs",
        ),
        ("", "grid.csv: a series needs at least two points, found 0"),
        (
            "t,g\n2026-11-22T00:00:00Z,1\n2026-11-22T01:00:00Z,1\n2026-11-22T04:00:00Z,1\n2026-11-22T05:00:00Z,1\n",
            "grid.csv:4: gap: 2026-11-22T04:00:00Z comes 3h after the point before it; the series steps every 1h",
        ),
        (
            "2026-11-22T00:00:00Z,1\n2026-11-22T00:30:00Z,1\n2026-11-22T01:30:00Z,1\n",
            "grid.csv:3: gap: 2026-11-22T01:30:00Z comes 1h after the point before it; the series steps every 30m",
        ),
    ];
    for (text, prefix) in cases {
        let message = parse(text).unwrap_err().to_string();
        assert!(message.starts_with(prefix), "{text:?}: {message}");
    }
}

#[test]
fn from_path_reads_file_and_reports_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.csv");
    std::fs::write(&path, HOURLY).unwrap();
    assert_eq!(Series::from_path(&path).unwrap().points().len(), 3);
    let missing = dir.path().join("missing.csv");
    let message = Series::from_path(&missing).unwrap_err().to_string();
    assert!(message.contains("missing.csv"), "{message}");
    assert_eq!(secs("2026-11-22T00:00:00Z") % 86_400, 0);
}

#[test]
fn uneven_but_gapless_series_are_accepted() {
    // Jitter of a few seconds, and one spacing 1.5 steps long, are not gaps.
    let text = "2026-11-22T00:00:00Z,1\n2026-11-22T00:05:03Z,2\n2026-11-22T00:10:00Z,3\n\
                2026-11-22T00:17:30Z,4\n2026-11-22T00:22:30Z,5\n";
    assert_eq!(parse(text).unwrap().points().len(), 5);
    let two = "2026-11-22T00:00:00Z,1\n2026-11-22T09:00:00Z,2\n";
    assert_eq!(parse(two).unwrap().end(), t("2026-11-22T18:00:00Z"));
}
