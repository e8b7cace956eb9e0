//! The TOML configuration file (`--config FILE`): defaults for the shared options and
//! the idle power `greentop calibrate` measured. The command line wins over the file,
//! the file over built-in defaults.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::attribution::{Calibration, IdlePolicy};
use crate::carbon::CarbonConfig;
use crate::carbon::providers::ProviderConfig;

/// Everything the file may set. Unknown keys are an error, so a typo is not ignored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Grid region for the carbon intensity table (`FR`, `US-CA`, `gcp:us-central1`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A fixed carbon intensity, g/kWh (overrides the region's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intensity_g_per_kwh: Option<f64>,
    /// CSV of `timestamp,g_per_kwh` to use for each interval's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intensity_series: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<IdlePolicy>,
    /// Live intensity from Electricity Maps (off unless this section is present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub electricitymaps: Option<ElectricityMapsConfig>,
    /// Live intensity from the UK Carbon Intensity API (off unless `enabled = true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carbon_intensity_uk: Option<UkConfig>,
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

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("writing config {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Config {
    /// The carbon part: fixed > series > live provider > region table > world average.
    /// `GREENTOP_ELECTRICITYMAPS_TOKEN` overrides the file's token.
    pub fn carbon(&self) -> Result<CarbonConfig, String> {
        let provider = match (&self.electricitymaps, &self.carbon_intensity_uk) {
            (Some(em), _) => {
                let token = std::env::var("GREENTOP_ELECTRICITYMAPS_TOKEN")
                    .ok()
                    .or_else(|| em.token.clone())
                    .ok_or("[electricitymaps] needs a token (or GREENTOP_ELECTRICITYMAPS_TOKEN)")?;
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
        })
    }

    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses TOML text, checking values the types cannot.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        if let Some(g) = config.intensity_g_per_kwh
            && !(0.0..=5000.0).contains(&g)
        {
            return Err(format!("intensity_g_per_kwh = {g} is outside 0..=5000"));
        }
        let watts = config.calibration.package_idle_w.values();
        if let Some(w) = watts
            .chain(config.calibration.gpu_idle_w.values())
            .find(|w| !(0.0..=5000.0).contains(*w))
        {
            return Err(format!("calibrated idle power {w} W is outside 0..=5000"));
        }
        Ok(config)
    }

    /// Writes the file atomically (temp file + rename), so a crash never leaves half a config.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let write_err = |source| ConfigError::Write {
            path: path.to_path_buf(),
            source,
        };
        let text = toml::to_string_pretty(self).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_round_trips() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/config.example.toml");
        let config = Config::load(&path).unwrap();
        assert_eq!(config.region.as_deref(), Some("FR"));
        assert_eq!(config.idle, Some(IdlePolicy::Baseline));
        assert_eq!(config.calibration.package_idle_w.get(&0), Some(&12.5));
        assert_eq!(config.calibration.gpu_idle_w.get(&0), Some(&61.0));
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
    fn bad_configs_name_the_problem() {
        for (text, wanted) in [
            ("regoin = \"FR\"", "unknown field `regoin`"),
            ("idle = \"sometimes\"", "unknown variant `sometimes`"),
            ("intensity_g_per_kwh = -3.0", "outside 0..=5000"),
            (
                "[calibration.package_idle_w]\n0 = 99999.0",
                "outside 0..=5000",
            ),
            ("region = ", "line 1, column 10"),
        ] {
            let err = Config::parse(text).unwrap_err();
            assert!(err.contains(wanted), "{text:?}: {err}");
        }
        let err = Config::load(Path::new("/nonexistent/greentop.toml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/greentop.toml"));
    }
}
