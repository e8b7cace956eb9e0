//! The TOML configuration file (`--config FILE`): defaults for the shared options and
//! the idle power `greentop calibrate` measured. The command line wins over the file,
//! the file over built-in defaults.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::attribution::{Calibration, IdlePolicy};
use crate::carbon::providers::ProviderConfig;
use crate::carbon::{CarbonConfig, INTENSITY_RANGE, PUE_RANGE, resolve_region};
use crate::cli::UsageError;

/// Serde for an optional field of the table `$table`: written as `$raw`, read with
/// the same parser as its command-line option, and refused with the key, the value
/// and why. Shared by `[agent]` (agent.rs) and `[metrics]` (metrics.rs).
macro_rules! checked {
    ($table:literal, $module:ident, $key:literal, $type:ty, $raw:ty, $parse:expr, $show:expr) => {
        mod $module {
            use super::*;

            pub fn serialize<S: Serializer>(
                value: &Option<$type>,
                s: S,
            ) -> Result<S::Ok, S::Error> {
                match value {
                    Some(v) => <$raw>::serialize(&$show(v), s),
                    None => s.serialize_none(),
                }
            }

            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<$type>, D::Error> {
                let raw = <$raw>::deserialize(d)?;
                $parse(&raw).map(Some).map_err(|e: String| {
                    serde::de::Error::custom(format!("{}.{} = {raw:?}: {e}", $table, $key))
                })
            }
        }
    };
}

pub mod agent;
pub mod metrics;
pub use agent::AgentConfig;
pub use metrics::{MetricsAddr, MetricsConfig};

/// Values given on the command line: they win over the file's.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    /// The file to read; `None`: the default path, if it exists.
    pub config: Option<PathBuf>,
    pub region: Option<String>,
    pub intensity_g_per_kwh: Option<f64>,
    pub intensity_series: Option<PathBuf>,
    pub pue: Option<f64>,
    pub idle: Option<IdlePolicy>,
}

/// The options after merging the config file: what attribution and carbon need.
#[derive(Clone, Debug)]
pub struct Settings {
    pub procfs_root: PathBuf,
    pub policy: IdlePolicy,
    pub calibration: Calibration,
    /// The file's values with the overrides applied.
    pub config: Config,
}

impl Settings {
    /// CLI over file over defaults. An explicit config file must exist; the default
    /// path is used only if it does.
    pub fn resolve(overrides: &Overrides, procfs_root: &Path) -> Result<Settings, ConfigError> {
        let config = Config::load_or_default(overrides.config.as_deref())?;
        Ok(Settings::merge(config, overrides, procfs_root))
    }

    /// The overrides over a config already read.
    pub fn merge(config: Config, overrides: &Overrides, procfs_root: &Path) -> Settings {
        let mut merged = config.clone();
        if overrides.region.is_some() {
            merged.region.clone_from(&overrides.region);
        }
        if overrides.intensity_g_per_kwh.is_some() {
            merged.intensity_g_per_kwh = overrides.intensity_g_per_kwh;
        }
        if overrides.intensity_series.is_some() {
            merged
                .intensity_series
                .clone_from(&overrides.intensity_series);
        }
        merged.pue = overrides.pue.or(config.pue);
        Settings {
            procfs_root: procfs_root.to_path_buf(),
            policy: overrides.idle.or(config.idle).unwrap_or_default(),
            calibration: config.calibration,
            config: merged,
        }
    }
}

/// Everything the file may set. Unknown keys are an error, so a typo is not ignored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Grid region for the carbon intensity table (`FR`, `US-CA`, `gcp:us-central1`,
    /// `aws:us-east-1`, …); an unknown code is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A fixed carbon intensity, g/kWh (overrides the region's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intensity_g_per_kwh: Option<f64>,
    /// CSV of `timestamp,g_per_kwh` to use for each interval's time (relative to the
    /// config file's directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intensity_series: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<IdlePolicy>,
    /// Power usage effectiveness, 1.0..=3.0: multiplies gCO₂, never joules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pue: Option<f64>,
    /// Live intensity from Electricity Maps (off unless this section is present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub electricitymaps: Option<ElectricityMapsConfig>,
    /// Live intensity from the UK Carbon Intensity API (off unless `enabled = true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carbon_intensity_uk: Option<UkConfig>,
    /// greentop-agent's log, socket and interval (`[agent]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentConfig>,
    /// greentop-agent's Prometheus metrics (`[metrics]`, docs/metrics.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsConfig>,
    /// Idle power per package and GPU, written by `greentop calibrate`.
    #[serde(default)]
    pub calibration: Calibration,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElectricityMapsConfig {
    /// API token; `GREENTOP_ELECTRICITYMAPS_TOKEN` in the environment overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Zone, e.g. `FR`, `DE`, `US-CAL-CISO` (default: derived from `region`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UkConfig {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

/// A config file that cannot be used. One line each: the chain adds the OS reason
/// for `Read` and `Write` once, so it is not repeated here.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{problem}")]
    Parse {
        path: PathBuf,
        problem: ConfigProblem,
    },
    #[error("writing config {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What is wrong in config text, and where: `3:9: pue = 7 is outside 1.0..=3.0`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigProblem {
    /// 1-based line and column, when the place is known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for n in [self.line, self.column].into_iter().flatten() {
            write!(f, "{n}:")?;
        }
        write!(f, " {}", self.message)
    }
}

impl Config {
    /// The carbon part: fixed > series > live provider > region table > world average.
    /// `GREENTOP_ELECTRICITYMAPS_TOKEN` overrides the file's token.
    pub fn carbon(&self) -> Result<CarbonConfig, UsageError> {
        let provider = match (&self.electricitymaps, &self.carbon_intensity_uk) {
            (Some(em), _) => {
                let token = std::env::var("GREENTOP_ELECTRICITYMAPS_TOKEN")
                    .ok()
                    .or_else(|| em.token.clone())
                    .ok_or_else(|| {
                        let why =
                            "[electricitymaps] needs a token (or GREENTOP_ELECTRICITYMAPS_TOKEN)";
                        UsageError(why.to_string())
                    })?;
                let mut provider = ProviderConfig::electricity_maps(token, em.zone.clone());
                provider.base_url.clone_from(&em.base_url);
                Some(provider)
            }
            (None, Some(uk)) if uk.enabled => {
                let mut provider = ProviderConfig::carbon_intensity_uk();
                provider.base_url.clone_from(&uk.base_url);
                Some(provider)
            }
            _ => None,
        };
        Ok(CarbonConfig {
            region: self.region.clone(),
            intensity_g_per_kwh: self.intensity_g_per_kwh,
            series_path: self.intensity_series.clone(),
            provider,
            pue: self.pue,
        })
    }

    /// `path`, which must exist; without one, the default path if it exists, else
    /// the defaults.
    pub fn load_or_default(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(path) => Config::load(path),
            None => {
                let path = Config::default_path();
                if path.exists() {
                    Config::load(&path)
                } else {
                    Ok(Config::default())
                }
            }
        }
    }

    /// Reads and checks a config file. A relative `intensity_series` is taken
    /// relative to the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Config::parse(&text).map_err(|problem| ConfigError::Parse {
            path: path.to_path_buf(),
            problem,
        })?;
        if let (Some(series), Some(dir)) = (&mut config.intensity_series, path.parent())
            && series.is_relative()
        {
            *series = dir.join(&*series);
        }
        Ok(config)
    }

    /// greentop-agent's options from the file: `[agent]`, with `[metrics]` in it.
    pub fn agent_options(&self) -> AgentConfig {
        AgentConfig {
            metrics: self.metrics.clone().unwrap_or_default(),
            ..self.agent.clone().unwrap_or_default()
        }
    }

    /// Parses TOML text, checking values the types cannot.
    pub fn parse(text: &str) -> Result<Config, ConfigProblem> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((None, None), |s| {
                let (line, column) = line_column(text, s.start);
                (Some(line), Some(column))
            });
            let message = e.message().trim().replace('\n', "; ");
            ConfigProblem {
                line,
                column,
                message,
            }
        })?;
        check_values(&config, text)?;
        Ok(config)
    }

    /// Writes the file atomically (temp file + rename), so a crash never leaves half a config.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let write_err = |source| ConfigError::Write {
            path: path.to_path_buf(),
            source,
        };
        let text = toml::to_string_pretty(self).map_err(|e| write_err(std::io::Error::other(e)))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).map_err(write_err)?;
        std::fs::rename(&tmp, path).map_err(write_err)
    }

    /// `/etc/greentop/config.toml` for root, `$XDG_CONFIG_HOME/greentop/config.toml`
    /// (or `~/.config/...`) otherwise.
    pub fn default_path() -> PathBuf {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            return PathBuf::from("/etc/greentop/config.toml");
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("greentop/config.toml")
    }
}

/// Accepted calibrated idle power per package or GPU, watts.
const IDLE_W_RANGE: std::ops::RangeInclusive<f64> = 0.0..=5000.0;

/// The checks serde cannot make, each naming the key and its line.
fn check_values(config: &Config, text: &str) -> Result<(), ConfigProblem> {
    let problem = |path: &[&str], message: String| ConfigProblem {
        line: line_of(text, path),
        column: None,
        message,
    };
    if let Some(code) = &config.region {
        resolve_region(code).map_err(|e| problem(&["region"], e.to_string()))?;
    }
    if let Some(g) = config.intensity_g_per_kwh
        && !INTENSITY_RANGE.contains(&g)
    {
        let message = format!("intensity_g_per_kwh = {g} is outside {INTENSITY_RANGE:?}");
        return Err(problem(&["intensity_g_per_kwh"], message));
    }
    if let Some(pue) = config.pue
        && !PUE_RANGE.contains(&pue)
    {
        return Err(problem(
            &["pue"],
            format!("pue = {pue} is outside {PUE_RANGE:?}"),
        ));
    }
    let calibration = &config.calibration;
    let idle = [
        ("package_idle_w", &calibration.package_idle_w),
        ("gpu_idle_w", &calibration.gpu_idle_w),
    ];
    for (table, watts) in idle {
        if let Some((id, w)) = watts.iter().find(|(_, w)| !IDLE_W_RANGE.contains(*w)) {
            let key = id.to_string();
            let message = format!("calibration.{table}.{key} = {w} W is outside {IDLE_W_RANGE:?}");
            return Err(problem(&["calibration", table, &key], message));
        }
    }
    Ok(())
}

/// 1-based line of the key at `path` (`["calibration", "gpu_idle_w", "0"]`).
fn line_of(text: &str, path: &[&str]) -> Option<usize> {
    let root = toml::de::DeTable::parse(text).ok()?;
    let mut table = root.get_ref();
    let mut start = None;
    for (i, key) in path.iter().enumerate() {
        let (name, value) = table.get_key_value(*key)?;
        start = Some(name.span().start);
        if i + 1 < path.len() {
            table = value.get_ref().as_table()?;
        }
    }
    start.map(|offset| line_column(text, offset).0)
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests;
