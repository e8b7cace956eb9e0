//! The greenest time to start a job: the start, now or on the series' grid, that
//! minimises the time-weighted average intensity over the job's duration.
use std::time::{Duration, SystemTime};

use super::series::Series;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GreenestWindow {
    /// Best start: `now` or a point of the series.
    pub start: SystemTime,
    /// Average intensity over `[start, start + duration)`.
    pub average_g_per_kwh: f64,
    /// Average intensity over `[now, now + duration)`.
    pub now_average_g_per_kwh: f64,
    /// `(now − best) / now × 100`; 0 when starting now is best (or now is 0 g/kWh).
    pub saving_percent: f64,
}

#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum GreenestError {
    #[error("the job duration must be longer than zero")]
    ZeroDuration,
    #[error("the job ({duration_s} s) does not fit in the window ({within_s} s)")]
    DoesNotFit { duration_s: u64, within_s: u64 },
    #[error("the series does not cover the next {duration_s} s from now")]
    NowNotCovered { duration_s: u64 },
}

/// Candidates are `now` and every series point `t` with `now < t` and
/// `t + duration ≤ now + within`; windows the series does not fully cover are
/// skipped. The earliest of equally good starts wins.
pub fn greenest_window(
    series: &Series,
    duration: Duration,
    within: Duration,
    now: SystemTime,
) -> Result<GreenestWindow, GreenestError> {
    if duration.is_zero() {
        return Err(GreenestError::ZeroDuration);
    }
    if duration > within {
        return Err(GreenestError::DoesNotFit {
            duration_s: duration.as_secs(),
            within_s: within.as_secs(),
        });
    }
    let now_average = series
        .average_over(now, duration)
        .ok_or(GreenestError::NowNotCovered {
            duration_s: duration.as_secs(),
        })?;
    let latest_start = now + (within - duration);
    let grid = series.points().iter().map(|&(t, _)| t);
    let later = grid.filter(|&t| t > now && t <= latest_start);
    let (mut best_start, mut best_average) = (now, now_average);
    for start in later {
        let Some(average) = series.average_over(start, duration) else {
            continue;
        };
        // A relative margin so that rounding never moves an equal window later.
        if average < best_average - 1e-12 * best_average.abs().max(1.0) {
            (best_start, best_average) = (start, average);
        }
    }
    let saving_percent = if now_average > 0.0 {
        (now_average - best_average) / now_average * 100.0
    } else {
        0.0
    };
    Ok(GreenestWindow {
        start: best_start,
        average_g_per_kwh: best_average,
        now_average_g_per_kwh: now_average,
        saving_percent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carbon::series::parse_rfc3339;
    use std::path::Path;

    fn t(s: &str) -> SystemTime {
        parse_rfc3339(s).unwrap()
    }

    /// Hourly: 300, 100, 400, 50, 50, 500 (covers 00:00–06:00).
    fn series() -> Series {
        let text = "\
2026-11-22T00:00:00Z,300
2026-11-22T01:00:00Z,100
2026-11-22T02:00:00Z,400
2026-11-22T03:00:00Z,50
2026-11-22T04:00:00Z,50
2026-11-22T05:00:00Z,500
";
        Series::parse(text, Path::new("test.csv")).unwrap()
    }

    const H: u64 = 3600;

    #[test]
    fn greenest_window_table() {
        // (now, duration h, within h, start, best avg, now avg)
        let cases = [
            ("00:00", 1, 6, "03:00", 50.0, 300.0),
            ("00:00", 1, 2, "01:00", 100.0, 300.0),
            ("00:00", 2, 6, "03:00", 50.0, 200.0),
            ("00:00", 3, 6, "02:00", 500.0 / 3.0, 800.0 / 3.0),
            ("00:00", 2, 3, "00:00", 200.0, 200.0),
            ("00:00", 6, 6, "00:00", 1400.0 / 6.0, 1400.0 / 6.0),
            // now off the grid: 30 min of 300 and 30 of 100 vs the grid's 01:00 → 100
            ("00:30", 1, 2, "01:00", 100.0, 200.0),
            // off-grid now, window spanning three points: (150 + 400 + 25) / 2 h
            (
                "01:30",
                2,
                2,
                "01:30",
                (50.0 + 400.0 + 25.0) / 2.0,
                (50.0 + 400.0 + 25.0) / 2.0,
            ),
            ("01:30", 2, 10, "03:00", 50.0, (50.0 + 400.0 + 25.0) / 2.0),
            ("04:00", 1, 10, "04:00", 50.0, 50.0),
        ];
        for (now, duration_h, within_h, start, best, now_avg) in cases {
            let at = |hm: &str| t(&format!("2026-11-22T{hm}:00Z"));
            let w = greenest_window(
                &series(),
                Duration::from_secs(duration_h * H),
                Duration::from_secs(within_h * H),
                at(now),
            )
            .unwrap();
            let label = format!("now {now}, {duration_h} h within {within_h} h");
            assert_eq!(w.start, at(start), "{label}");
            assert!((w.average_g_per_kwh - best).abs() < 1e-9, "{label}: {w:?}");
            assert!(
                (w.now_average_g_per_kwh - now_avg).abs() < 1e-9,
                "{label}: {w:?}"
            );
            let saving = (now_avg - best) / now_avg * 100.0;
            assert!((w.saving_percent - saving).abs() < 1e-9, "{label}: {w:?}");
        }
    }

    #[test]
    fn saving_is_exact_for_one_hour_from_midnight() {
        let w = greenest_window(
            &series(),
            Duration::from_secs(H),
            Duration::from_secs(6 * H),
            t("2026-11-22T00:00:00Z"),
        )
        .unwrap();
        assert!((w.saving_percent - 100.0 * 250.0 / 300.0).abs() < 1e-9);
    }

    #[test]
    fn errors() {
        let s = series();
        let now = t("2026-11-22T00:00:00Z");
        let cases = [
            (0, 6 * H, now, GreenestError::ZeroDuration),
            (
                2 * H,
                H,
                now,
                GreenestError::DoesNotFit {
                    duration_s: 2 * H,
                    within_s: H,
                },
            ),
            (
                H,
                6 * H,
                t("2026-11-21T23:30:00Z"),
                GreenestError::NowNotCovered { duration_s: H },
            ),
            (
                H,
                6 * H,
                t("2026-11-22T05:30:00Z"),
                GreenestError::NowNotCovered { duration_s: H },
            ),
        ];
        for (duration_s, within_s, at, error) in cases {
            let got = greenest_window(
                &s,
                Duration::from_secs(duration_s),
                Duration::from_secs(within_s),
                at,
            );
            assert_eq!(
                got,
                Err(error.clone()),
                "{duration_s} s within {within_s} s"
            );
        }
    }
}
