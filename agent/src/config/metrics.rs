//! greentop-agent's metrics options — where `/metrics` is served, whether beyond
//! loopback, how many series — as one struct that is both the `[metrics]` table of
//! the config file and the `--metrics-*` options (same parsers, same ranges). The
//! command line wins over the file; a non-loopback address needs `allow_remote`.
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::cli::{UsageError, number_in};
use crate::sinks::metrics::MetricsOptions;

/// Accepted `top_n`.
pub const TOP_N_RANGE: std::ops::RangeInclusive<u32> = 1..=10_000;
/// Accepted `grace_s`, seconds.
pub const GRACE_S_RANGE: std::ops::RangeInclusive<f64> = 1.0..=86_400.0;

/// Where `/metrics` is served: `PORT` (loopback), `IP:PORT`, `[IPv6]:PORT` or
/// `localhost:PORT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsAddr(pub SocketAddr);

impl MetricsAddr {
    pub fn parse(text: &str) -> Result<MetricsAddr, String> {
        let bad = || format!("'{text}' is not PORT, IP:PORT, [IPv6]:PORT or localhost:PORT");
        let port = text.strip_prefix("localhost:").unwrap_or(text);
        if let Ok(port) = port.parse::<u16>() {
            let loopback = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port);
            return Ok(MetricsAddr(loopback));
        }
        text.parse::<SocketAddr>()
            .map(MetricsAddr)
            .map_err(|_| bad())
    }

    /// Loopback addresses (127.0.0.0/8, ::1) stay on this machine.
    pub fn is_loopback(&self) -> bool {
        match self.0.ip() {
            IpAddr::V4(ip) => ip.is_loopback(),
            IpAddr::V6(ip) => {
                ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        }
    }
}

/// The metrics options. Unset on the command line means "the file's value", unset
/// in the file means the default; metrics are off unless an address is set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve Prometheus metrics on http://ADDR/metrics: PORT (on 127.0.0.1),
    /// IP:PORT or [IPv6]:PORT [default: off].
    #[arg(long = "metrics-addr", value_name = "ADDR", value_parser = MetricsAddr::parse)]
    #[serde(default, with = "addr", skip_serializing_if = "Option::is_none")]
    pub addr: Option<MetricsAddr>,
    /// Let the metrics address be a non-loopback one. The metrics name busy
    /// processes, their commands and cgroups: without this, only loopback is served.
    #[arg(long = "metrics-allow-remote")]
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_remote: bool,
    /// Processes (and jobs) with a series of their own: the top N by energy each
    /// interval, 1 to 10000; the rest add up in `other` series [default: 20].
    #[arg(long = "metrics-top-n", value_name = "N", value_parser = parse_top_n)]
    #[serde(default, with = "top_n", skip_serializing_if = "Option::is_none")]
    pub top_n: Option<u32>,
    /// Seconds a process's series outlives its exit, or its last interval in the
    /// top N, 1 to 86400 [default: 300].
    #[arg(long = "metrics-grace-s", value_name = "SECS", value_parser = parse_grace)]
    #[serde(default, with = "grace", skip_serializing_if = "Option::is_none")]
    pub grace_s: Option<f64>,
}

impl MetricsConfig {
    /// Each value of `self` (the command line), else the file's.
    pub fn or(&self, file: &MetricsConfig) -> MetricsConfig {
        MetricsConfig {
            addr: self.addr.or(file.addr),
            allow_remote: self.allow_remote || file.allow_remote,
            top_n: self.top_n.or(file.top_n),
            grace_s: self.grace_s.or(file.grace_s),
        }
    }

    /// Where to serve, if anywhere: a non-loopback address without `allow_remote`
    /// is refused.
    pub fn addr(&self) -> Result<Option<SocketAddr>, UsageError> {
        match self.addr {
            Some(addr) if !addr.is_loopback() && !self.allow_remote => Err(UsageError(format!(
                "--metrics-addr {}: not a loopback address; the metrics name busy \
                 processes, their commands and cgroups, so serving them beyond this \
                 machine needs --metrics-allow-remote (or allow_remote = true under \
                 [metrics])",
                addr.0
            ))),
            addr => Ok(addr.map(|a| a.0)),
        }
    }

    /// The exporter's options, defaults where unset.
    pub fn options(&self) -> MetricsOptions {
        let defaults = MetricsOptions::default();
        MetricsOptions {
            top_n: self.top_n.map_or(defaults.top_n, |n| n as usize),
            grace: self.grace_s.map_or(defaults.grace, Duration::from_secs_f64),
        }
    }
}

pub fn parse_top_n(text: &str) -> Result<u32, String> {
    let n: u32 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a whole number"))?;
    if TOP_N_RANGE.contains(&n) {
        Ok(n)
    } else {
        Err(format!("{n} is outside {TOP_N_RANGE:?}"))
    }
}

pub fn parse_grace(text: &str) -> Result<f64, String> {
    number_in(text, GRACE_S_RANGE, "a number of seconds", " s")
}

checked!(
    "metrics",
    addr,
    "addr",
    MetricsAddr,
    String,
    |text: &String| MetricsAddr::parse(text),
    |a: &MetricsAddr| a.0.to_string()
);
checked!(
    "metrics",
    top_n,
    "top_n",
    u32,
    u32,
    |n: &u32| parse_top_n(&n.to_string()),
    |n: &u32| *n
);
checked!(
    "metrics",
    grace,
    "grace_s",
    f64,
    f64,
    |s: &f64| parse_grace(&s.to_string()),
    |s: &f64| *s
);

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
