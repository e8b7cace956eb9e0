//! greentop-agent's own options — the log directory with its rotation, retention
//! and fsync policy, the socket, the interval, the metrics — as one struct that is
//! both the `[agent]` (and `[metrics]`) table of the config file and the daemon's
//! command-line options (same names, same checks). The command line wins.
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::MetricsConfig;
use crate::cli::{UsageError, parse_seconds};
use crate::sinks::log::{FsyncPolicy, LogOptions, Retention};

/// The agent's options. Every field is optional: unset on the command line means
/// "the file's value", unset in the file means the default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Record every interval to a binary log in this directory
    /// (docs/log-format.md).
    #[arg(long, value_name = "DIR")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_dir: Option<PathBuf>,
    /// Seconds per interval, 0.05 to 3600 [default: 1].
    #[arg(long = "interval", visible_alias = "interval-s", value_name = "SECS",
          value_parser = parse_seconds)]
    #[serde(default, with = "seconds", skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<f64>,
    /// Serve Intervals to `greentop --connect` on this unix socket (mode 0660).
    #[arg(long, value_name = "PATH")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    /// Group owning the socket: its members may connect [default: the agent's group].
    #[arg(long, value_name = "NAME")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_group: Option<String>,
    /// Start a new log segment once it holds this much: 64KiB to 1TiB, e.g. 64MiB
    /// [default: 64MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_rotate_size)]
    #[serde(default, with = "rotate_size", skip_serializing_if = "Option::is_none")]
    pub rotate_size: Option<u64>,
    /// Start a new log segment once it is this old: 1s to 30days, e.g. 1h [default: 1h].
    #[arg(long, value_name = "DURATION", value_parser = parse_rotate_age)]
    #[serde(default, with = "rotate_age", skip_serializing_if = "Option::is_none")]
    pub rotate_age: Option<Duration>,
    /// Delete the oldest segments while the log holds more than this: at least the
    /// rotate size, e.g. 10GiB [default: keep everything].
    #[arg(long, value_name = "SIZE", value_parser = parse_retain_size)]
    #[serde(default, with = "retain_size", skip_serializing_if = "Option::is_none")]
    pub retain_size: Option<u64>,
    /// Delete segments last written longer ago than this: 1min to 100years, e.g.
    /// 30days [default: keep everything].
    #[arg(long, value_name = "DURATION", value_parser = parse_retain_age)]
    #[serde(default, with = "retain_age", skip_serializing_if = "Option::is_none")]
    pub retain_age: Option<Duration>,
    /// When the log is forced to disk: always (each interval), never (left to the
    /// kernel), or at most this long after a write, 10ms to 1h [default: 1s].
    #[arg(long, value_name = "POLICY", value_parser = parse_fsync)]
    #[serde(default, with = "fsync", skip_serializing_if = "Option::is_none")]
    pub fsync: Option<FsyncPolicy>,
    /// Per-thread rows in every interval (the file's key; `--threads` on the
    /// command line).
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<bool>,
    /// Prometheus metrics: `--metrics-*` on the command line, the `[metrics]`
    /// table in the file (`Config::agent_options` puts it here).
    #[command(flatten)]
    #[serde(skip)]
    pub metrics: MetricsConfig,
}

impl AgentConfig {
    /// Each value of `self` (the command line), else the file's.
    pub fn or(&self, file: &AgentConfig) -> AgentConfig {
        AgentConfig {
            log_dir: self.log_dir.clone().or_else(|| file.log_dir.clone()),
            interval_s: self.interval_s.or(file.interval_s),
            socket: self.socket.clone().or_else(|| file.socket.clone()),
            socket_group: self
                .socket_group
                .clone()
                .or_else(|| file.socket_group.clone()),
            rotate_size: self.rotate_size.or(file.rotate_size),
            rotate_age: self.rotate_age.or(file.rotate_age),
            retain_size: self.retain_size.or(file.retain_size),
            retain_age: self.retain_age.or(file.retain_age),
            fsync: self.fsync.or(file.fsync),
            threads: self.threads.or(file.threads),
            metrics: self.metrics.or(&file.metrics),
        }
    }

    pub fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.interval_s.unwrap_or(1.0))
    }

    /// The log's options, if a directory is set; a retention smaller than one
    /// segment is refused.
    pub fn log_options(&self) -> Result<Option<LogOptions>, UsageError> {
        let Some(dir) = &self.log_dir else {
            return Ok(None);
        };
        let mut opts = LogOptions::new(dir);
        opts.rotate_bytes = self.rotate_size.unwrap_or(opts.rotate_bytes);
        opts.rotate_age = self.rotate_age.unwrap_or(opts.rotate_age);
        opts.fsync = self.fsync.unwrap_or(opts.fsync);
        opts.retention = Retention {
            max_bytes: self.retain_size,
            max_age: self.retain_age,
        };
        if let Some(max) = self.retain_size
            && max < opts.rotate_bytes
        {
            return Err(UsageError(format!(
                "retain-size {} is smaller than rotate-size {}: every finished segment would be deleted at once",
                format_size(max),
                format_size(opts.rotate_bytes)
            )));
        }
        Ok(Some(opts))
    }
}

const KIB: u64 = 1 << 10;
const TIB: u64 = 1 << 40;

/// `64MiB`, `1.5GiB`, `500MB`, `4096` (bytes); K, M, G, T alone are binary.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("'{text}' is not a size like 64MiB, 10GB or 4096");
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let unit = unit.trim().to_ascii_lowercase();
    let scale = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "kb" => 1e3,
        "m" | "mib" => 1024.0f64.powi(2),
        "mb" => 1e6,
        "g" | "gib" => 1024.0f64.powi(3),
        "gb" => 1e9,
        "t" | "tib" => 1024.0f64.powi(4),
        "tb" => 1e12,
        _ => return Err(bad()),
    };
    Ok((number * scale).round() as u64)
}

/// Bytes as the largest binary unit that divides them (`64MiB`), else bytes.
pub fn format_size(bytes: u64) -> String {
    for (unit, scale) in [("TiB", 1u64 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)] {
        if bytes >= scale && bytes.is_multiple_of(scale) {
            return format!("{}{unit}", bytes / scale);
        }
    }
    if bytes >= KIB && bytes.is_multiple_of(KIB) {
        return format!("{}KiB", bytes / KIB);
    }
    format!("{bytes}B")
}

fn size_in(text: &str, min: u64, max: u64) -> Result<u64, String> {
    let bytes = parse_size(text)?;
    if (min..=max).contains(&bytes) {
        Ok(bytes)
    } else {
        Err(format!(
            "{text} is outside {}..={}",
            format_size(min),
            format_size(max)
        ))
    }
}

pub fn parse_rotate_size(text: &str) -> Result<u64, String> {
    size_in(text, 64 * KIB, TIB)
}

pub fn parse_retain_size(text: &str) -> Result<u64, String> {
    size_in(text, 64 * KIB, 1024 * TIB)
}

fn span_in(text: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let span = humantime::parse_duration(text)
        .map_err(|_| format!("'{text}' is not a duration like 90s, 1h or 30days"))?;
    if (min..=max).contains(&span) {
        Ok(span)
    } else {
        Err(format!(
            "{text} is outside {}..={}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        ))
    }
}

const DAY: u64 = 86_400;

pub fn parse_rotate_age(text: &str) -> Result<Duration, String> {
    span_in(text, Duration::from_secs(1), Duration::from_secs(30 * DAY))
}

pub fn parse_retain_age(text: &str) -> Result<Duration, String> {
    span_in(
        text,
        Duration::from_secs(60),
        Duration::from_secs(36_525 * DAY),
    )
}

/// `always`, `never`, or a duration from 10ms to 1h.
pub fn parse_fsync(text: &str) -> Result<FsyncPolicy, String> {
    match text.parse::<FsyncPolicy>()? {
        FsyncPolicy::Every(period) => {
            span_in(text, Duration::from_millis(10), Duration::from_secs(3600))?;
            Ok(FsyncPolicy::Every(period))
        }
        policy => Ok(policy),
    }
}

checked!(
    "agent",
    seconds,
    "interval_s",
    f64,
    f64,
    |s: &f64| parse_seconds(&s.to_string()),
    |s: &f64| *s
);
checked!(
    "agent",
    rotate_size,
    "rotate_size",
    u64,
    String,
    parse_rotate_size,
    |b: &u64| format_size(*b)
);
checked!(
    "agent",
    retain_size,
    "retain_size",
    u64,
    String,
    parse_retain_size,
    |b: &u64| format_size(*b)
);
checked!(
    "agent",
    rotate_age,
    "rotate_age",
    Duration,
    String,
    parse_rotate_age,
    show_span
);
checked!(
    "agent",
    retain_age,
    "retain_age",
    Duration,
    String,
    parse_retain_age,
    show_span
);
checked!(
    "agent",
    fsync,
    "fsync",
    FsyncPolicy,
    String,
    parse_fsync,
    |p: &FsyncPolicy| p.to_string()
);

fn show_span(span: &Duration) -> String {
    humantime::format_duration(*span).to_string()
}

#[cfg(test)]
#[path = "agent_tests.rs"]
mod tests;
