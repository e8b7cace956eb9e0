//! The metrics options: `--metrics-addr` and friends on the command line, the
//! `[metrics]` table in the config file (the command line wins), and the rule that
//! a non-loopback address needs `--metrics-allow-remote`.
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::MetricsOptions;
use crate::cli::UsageError;

/// Accepted `--metrics-top-n`.
pub const TOP_N_RANGE: std::ops::RangeInclusive<u32> = 1..=10_000;
/// Accepted `--metrics-grace-s`, seconds.
pub const GRACE_S_RANGE: std::ops::RangeInclusive<f64> = 1.0..=86_400.0;

/// Where `/metrics` is served: `PORT` (loopback), `IP:PORT`, `[IPv6]:PORT` or
/// `localhost:PORT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsAddr(pub SocketAddr);

impl MetricsAddr {
    pub fn parse(text: &str) -> Result<MetricsAddr, String> {
        let bad = || format!("'{text}' is not PORT, IP:PORT, [IPv6]:PORT or localhost:PORT");
        if let Ok(port) = text.parse::<u16>() {
            return Ok(MetricsAddr(SocketAddr::new(
                Ipv4Addr::LOCALHOST.into(),
                port,
            )));
        }
        if let Some(port) = text.strip_prefix("localhost:") {
            let port = port.parse::<u16>().map_err(|_| bad())?;
            return Ok(MetricsAddr(SocketAddr::new(
                Ipv4Addr::LOCALHOST.into(),
                port,
            )));
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

/// The metrics options of `greentop-agent`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics on http://ADDR/metrics: PORT (on 127.0.0.1),
    /// IP:PORT or [IPv6]:PORT. Off unless given (or `addr` under [metrics] in the
    /// config file).
    #[arg(long, value_name = "ADDR", value_parser = MetricsAddr::parse)]
    pub metrics_addr: Option<MetricsAddr>,
    /// Let --metrics-addr be a non-loopback address. The metrics name busy processes,
    /// their commands and cgroups: without this, only loopback addresses are served.
    #[arg(long)]
    pub metrics_allow_remote: bool,
    /// Processes (and jobs) that get a series of their own: the top N by energy each
    /// interval, 1 to 10000; the rest add up in `other` series [default: 20]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub metrics_top_n: Option<u32>,
    /// Seconds a process's series outlives its exit, or its last interval in the top
    /// N, 1 to 86400 [default: 300]
    #[arg(long, value_name = "SECS", value_parser = parse_grace)]
    pub metrics_grace_s: Option<f64>,
}

fn parse_grace(text: &str) -> Result<f64, String> {
    crate::cli::number_in(text, GRACE_S_RANGE, "a number of seconds", " s")
}

/// The `[metrics]` table of the config file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// As `--metrics-addr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    /// As `--metrics-allow-remote`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_remote: Option<bool>,
    /// As `--metrics-top-n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_n: Option<u32>,
    /// As `--metrics-grace-s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_s: Option<f64>,
}

impl MetricsConfig {
    /// The checks serde cannot make: `(key, problem)` of the first bad value.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if let Some(addr) = &self.addr {
            MetricsAddr::parse(addr).map_err(|e| ("addr", format!("metrics.addr: {e}")))?;
        }
        if let Some(n) = self.top_n
            && !TOP_N_RANGE.contains(&n)
        {
            return Err((
                "top_n",
                format!("metrics.top_n = {n} is outside {TOP_N_RANGE:?}"),
            ));
        }
        if let Some(s) = self.grace_s
            && !GRACE_S_RANGE.contains(&s)
        {
            let message = format!("metrics.grace_s = {s} is outside {GRACE_S_RANGE:?}");
            return Err(("grace_s", message));
        }
        Ok(())
    }
}

/// The options after merging the command line over the config file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricsSettings {
    /// Where to serve `/metrics`; `None`: not at all.
    pub addr: Option<SocketAddr>,
    pub options: MetricsOptions,
}

impl MetricsSettings {
    /// Command line over file over defaults; a non-loopback address without
    /// `--metrics-allow-remote` (or `allow_remote = true`) is refused.
    pub fn resolve(
        args: &MetricsArgs,
        file: Option<&MetricsConfig>,
    ) -> Result<MetricsSettings, UsageError> {
        let file = file.cloned().unwrap_or_default();
        let file_addr = match &file.addr {
            Some(text) => Some(MetricsAddr::parse(text).map_err(UsageError)?),
            None => None,
        };
        let addr = args.metrics_addr.or(file_addr);
        let allow_remote = args.metrics_allow_remote || file.allow_remote == Some(true);
        if let Some(addr) = addr
            && !addr.is_loopback()
            && !allow_remote
        {
            return Err(UsageError(format!(
                "--metrics-addr {}: not a loopback address; the metrics name busy \
                 processes, their commands and cgroups, so serving them beyond this \
                 machine needs --metrics-allow-remote (or allow_remote = true under \
                 [metrics])",
                addr.0
            )));
        }
        let defaults = MetricsOptions::default();
        let top_n = args.metrics_top_n.or(file.top_n);
        let grace_s = args.metrics_grace_s.or(file.grace_s);
        Ok(MetricsSettings {
            addr: addr.map(|a| a.0),
            options: MetricsOptions {
                top_n: top_n.map_or(defaults.top_n, |n| n as usize),
                grace: grace_s.map_or(defaults.grace, Duration::from_secs_f64),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_default_to_loopback() {
        let cases: &[(&str, Result<&str, ()>)] = &[
            ("9911", Ok("127.0.0.1:9911")),
            ("localhost:9911", Ok("127.0.0.1:9911")),
            ("127.0.0.2:80", Ok("127.0.0.2:80")),
            ("[::1]:9911", Ok("[::1]:9911")),
            ("0.0.0.0:9911", Ok("0.0.0.0:9911")),
            ("host:9911", Err(())),
            ("99111", Err(())),
            ("", Err(())),
        ];
        for (text, want) in cases {
            let got = MetricsAddr::parse(text).map(|a| a.0.to_string());
            match want {
                Ok(addr) => assert_eq!(got.as_deref(), Ok(*addr), "{text}"),
                Err(()) => assert!(got.unwrap_err().contains("is not PORT"), "{text}"),
            }
        }
    }

    #[test]
    fn non_loopback_needs_allow_remote() {
        let args = |addr: &str, allow: bool| MetricsArgs {
            metrics_addr: Some(MetricsAddr::parse(addr).unwrap()),
            metrics_allow_remote: allow,
            ..MetricsArgs::default()
        };
        for (addr, allow, ok) in [
            ("9911", false, true),
            ("[::1]:9911", false, true),
            ("[::ffff:127.0.0.1]:9911", false, true),
            ("0.0.0.0:9911", false, false),
            ("[::]:9911", false, false),
            ("10.1.2.3:9911", false, false),
            ("0.0.0.0:9911", true, true),
        ] {
            let got = MetricsSettings::resolve(&args(addr, allow), None);
            assert_eq!(got.is_ok(), ok, "{addr} allow={allow}: {got:?}");
            if let Err(e) = got {
                assert!(e.0.contains("--metrics-allow-remote"), "{e}");
            }
        }
        let file = MetricsConfig {
            addr: Some("0.0.0.0:9911".into()),
            allow_remote: Some(true),
            top_n: Some(5),
            grace_s: Some(30.0),
        };
        let got = MetricsSettings::resolve(&MetricsArgs::default(), Some(&file)).unwrap();
        assert_eq!(got.addr, Some("0.0.0.0:9911".parse().unwrap()));
        assert_eq!(got.options.top_n, 5);
        assert_eq!(got.options.grace, Duration::from_secs(30));
        let cli_wins = MetricsArgs {
            metrics_top_n: Some(7),
            ..MetricsArgs::default()
        };
        let got = MetricsSettings::resolve(&cli_wins, Some(&file)).unwrap();
        assert_eq!(got.options.top_n, 7);
        let off = MetricsSettings::resolve(&MetricsArgs::default(), None).unwrap();
        assert_eq!(off.addr, None, "off unless asked for");
    }

    #[test]
    fn config_values_are_checked() {
        let bad = |c: MetricsConfig| c.check().unwrap_err().1;
        let top = MetricsConfig {
            top_n: Some(0),
            ..MetricsConfig::default()
        };
        assert_eq!(bad(top), "metrics.top_n = 0 is outside 1..=10000");
        let addr = MetricsConfig {
            addr: Some("nowhere".into()),
            ..MetricsConfig::default()
        };
        assert!(bad(addr).starts_with("metrics.addr: 'nowhere' is not PORT"));
        assert_eq!(
            parse_grace("0.5"),
            Err("0.5 s is outside 1.0..=86400.0".into())
        );
    }
}
