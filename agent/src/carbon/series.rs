//! Carbon-intensity time series from a CSV file (`timestamp,g_per_kwh`), read as a
//! step function: each point holds until the next one.
//!
//! Format: RFC 3339 timestamps (`2026-11-22T22:00:00Z`, `…+01:00`, fractional
//! seconds allowed), an optional header line, `#` comments and blank lines. Points
//! must be strictly increasing in time and evenly spaced: a spacing more than 1.5
//! times the series' usual (median) step is a gap, and an error naming its line. The
//! last point holds for as long as the spacing before it (an hourly series covers
//! its last hour), so a series needs at least two points.
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum SeriesError {
    #[error("reading {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}: a series needs at least two points, found {points}", path.display())]
    TooShort { path: PathBuf, points: usize },
}

/// A step function of intensity over time, covering `[start(), end())`.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    points: Vec<(SystemTime, f64)>,
}

impl Series {
    /// Reads and checks a series file; errors name the file and line.
    pub fn from_path(path: &Path) -> Result<Series, SeriesError> {
        let text = std::fs::read_to_string(path).map_err(|source| SeriesError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Series::parse(&text, path)
    }

    /// Parses series text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Series, SeriesError> {
        let mut points: Vec<(SystemTime, f64)> = Vec::new();
        let mut lines: Vec<usize> = Vec::new();
        let mut first_content_line = true;
        for (i, raw) in text.trim_start_matches('\u{feff}').lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let is_first = std::mem::replace(&mut first_content_line, false);
            let error = |message: String| SeriesError::Line {
                path: origin.to_path_buf(),
                line: i + 1,
                message,
            };
            let Some((ts, value)) = line.split_once(',') else {
                return Err(error(format!(
                    "expected `timestamp,g_per_kwh`, got {line:?}"
                )));
            };
            let (ts, value) = (ts.trim(), value.trim());
            if is_first && value.parse::<f64>().is_err() && parse_rfc3339(ts).is_none() {
                continue; // header
            }
            let at =
                parse_rfc3339(ts).ok_or_else(|| error(format!("bad RFC 3339 timestamp {ts:?}")))?;
            let g_per_kwh: f64 = value
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| error(format!("bad g_per_kwh {value:?} (need a number ≥ 0)")))?;
            if let Some(&(previous, _)) = points.last()
                && at <= previous
            {
                return Err(error(format!(
                    "timestamp {ts} is not after the previous point"
                )));
            }
            points.push((at, g_per_kwh));
            lines.push(i + 1);
        }
        if let Some((index, message)) = first_gap(&points) {
            return Err(SeriesError::Line {
                path: origin.to_path_buf(),
                line: lines[index],
                message,
            });
        }
        Series::from_points(points).map_err(|points| SeriesError::TooShort {
            path: origin.to_path_buf(),
            points,
        })
    }

    /// A series from points already sorted by strictly increasing time; `Err` holds
    /// the point count when there are fewer than two.
    pub fn from_points(points: Vec<(SystemTime, f64)>) -> Result<Series, usize> {
        if points.len() < 2 {
            return Err(points.len());
        }
        Ok(Series { points })
    }

    pub fn points(&self) -> &[(SystemTime, f64)] {
        &self.points
    }

    /// First instant covered.
    pub fn start(&self) -> SystemTime {
        self.points[0].0
    }

    /// First instant no longer covered: the last point plus the spacing before it.
    pub fn end(&self) -> SystemTime {
        let n = self.points.len();
        let (last, before) = (self.points[n - 1].0, self.points[n - 2].0);
        last + last.duration_since(before).unwrap_or_default()
    }

    /// The value of the last point at or before `at`; `None` outside `[start, end)`.
    pub fn value_at(&self, at: SystemTime) -> Option<f64> {
        if at < self.start() || at >= self.end() {
            return None;
        }
        let i = self.points.partition_point(|&(t, _)| t <= at);
        Some(self.points[i - 1].1)
    }

    /// Time-weighted average over `[from, from + duration)`; `None` when the window is
    /// empty or not fully covered.
    pub fn average_over(&self, from: SystemTime, duration: Duration) -> Option<f64> {
        let to = from + duration;
        if duration.is_zero() || from < self.start() || to > self.end() {
            return None;
        }
        let ends = self
            .points
            .iter()
            .skip(1)
            .map(|&(t, _)| t)
            .chain([self.end()]);
        let mut weighted = 0.0;
        for (&(seg_start, g_per_kwh), seg_end) in self.points.iter().zip(ends) {
            let (lo, hi) = (seg_start.max(from), seg_end.min(to));
            if let Ok(overlap) = hi.duration_since(lo) {
                weighted += g_per_kwh * overlap.as_secs_f64();
            }
        }
        Some(weighted / duration.as_secs_f64())
    }
}

/// A spacing longer than this many usual steps is a gap.
const GAP_STEPS: f64 = 1.5;

/// The first point that comes a gap after the one before it: its index and why.
/// The usual step is the (lower) median spacing, so a few late points cannot hide a
/// gap and one gap cannot set the step.
fn first_gap(points: &[(SystemTime, f64)]) -> Option<(usize, String)> {
    let spacing = |i: usize| {
        let (before, at) = (points[i - 1].0, points[i].0);
        at.duration_since(before).unwrap_or_default()
    };
    let mut spacings: Vec<Duration> = (1..points.len()).map(spacing).collect();
    spacings.sort_unstable();
    let step = *spacings.get(spacings.len().checked_sub(1)? / 2)?;
    let index =
        (1..points.len()).find(|&i| spacing(i).as_secs_f64() > GAP_STEPS * step.as_secs_f64())?;
    let message = format!(
        "gap: {} comes {} after the point before it; the series steps every {}",
        humantime::format_rfc3339_seconds(points[index].0),
        humantime::format_duration(spacing(index)),
        humantime::format_duration(step)
    );
    Some((index, message))
}

/// `YYYY-MM-DDTHH:MM[:SS[.fff]](Z|±HH:MM)`, `T` or space between date and time;
/// instants before 1970 are refused.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<u64> {
        let s = text.get(from..from + len)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let sep_ok = b.get(4) == Some(&b'-') && b.get(7) == Some(&b'-') && b.get(13) == Some(&b':');
    if !sep_ok || !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute) = (digits(11, 2)?, digits(14, 2)?);
    let mut pos = 16;
    let mut second = 0;
    let mut nanos = 0u64;
    if b.get(pos) == Some(&b':') {
        second = digits(pos + 1, 2)?;
        pos += 3;
        if b.get(pos) == Some(&b'.') {
            let frac_len = b[pos + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if frac_len == 0 {
                return None;
            }
            // Digits past nanoseconds are dropped.
            let frac = text.get(pos + 1..pos + 1 + frac_len.min(9))?;
            nanos = format!("{frac:0<9}").parse().ok()?;
            pos += 1 + frac_len;
        }
    }
    let offset_s: i64 = match text.get(pos..)? {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && tz.as_bytes()[3] == b':' => {
            let sign = match tz.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = (digits(pos + 1, 2)?, digits(pos + 4, 2)?);
            sign * i64::try_from(h * 3600 + m * 60).ok()?
        }
        _ => return None,
    };
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61;
    if !valid {
        return None;
    }
    let days = days_from_civil(year, month, day)?;
    let local_s = days * 86_400 + i64::try_from(hour * 3600 + minute * 60 + second).ok()?;
    let utc_s = u64::try_from(local_s - offset_s).ok()?;
    Some(UNIX_EPOCH + Duration::new(utc_s, u32::try_from(nanos).ok()?))
}

fn days_in_month(year: u64, month: u64) -> u64 {
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<i64> {
    let y = i64::try_from(year).ok()? - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::try_from(month).ok()?;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + i64::try_from(day).ok()? - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
#[path = "series_tests.rs"]
mod tests;
