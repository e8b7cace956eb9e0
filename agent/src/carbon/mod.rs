//! Carbon: the grid intensity for each tick (fixed value, series file, live provider,
//! embedded table or world average, in that order), grams of CO₂ from joules, everyday
//! equivalents and the greenest time to run a job.
//!
//! `gCO2 = joules / 3.6e6 × intensity_g_per_kWh`. Sources, units and precedence are
//! described in docs/carbon.md.
pub mod cloud;
pub mod equivalents;
pub mod greenest;
pub mod providers;
pub mod regions;
pub mod series;
pub mod table;

#[cfg(test)]
mod derive;

use std::fmt;
use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

pub use equivalents::Equivalents;
pub use greenest::{GreenestError, GreenestWindow, greenest_window};
pub use providers::{LiveProvider, ProviderConfig, ProviderError, ProviderKind};
pub use regions::{UnknownRegion, resolve_region};
pub use series::{Series, SeriesError};
pub use table::{TableEntry, lookup, world_average};

pub const JOULES_PER_KWH: f64 = 3.6e6;

/// Accepted power usage effectiveness. 1.0 is a data centre that spends nothing
/// beyond its IT load; surveyed averages are about 1.5 to 1.6, poor rooms reach 2.5.
pub const PUE_RANGE: std::ops::RangeInclusive<f64> = 1.0..=3.0;

/// Accepted fixed intensity, gCO₂/kWh: the dirtiest grids are near 1000.
pub const INTENSITY_RANGE: std::ops::RangeInclusive<f64> = 0.0..=5000.0;

/// Region label when no region is set.
pub const WORLD_REGION: &str = "world";

/// Grams of CO₂ for `joules` at `g_per_kwh`.
pub fn gco2(joules: f64, g_per_kwh: f64) -> f64 {
    joules / JOULES_PER_KWH * g_per_kwh
}

/// Where an intensity value came from; `label()` is the string in JSON and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IntensitySource {
    #[serde(rename = "table")]
    Table,
    #[serde(rename = "world-average")]
    WorldAverage,
    #[serde(rename = "fixed")]
    Fixed,
    #[serde(rename = "series")]
    Series,
    #[serde(rename = "electricitymaps")]
    ElectricityMaps,
    #[serde(rename = "carbon-intensity-uk")]
    CarbonIntensityUk,
}

impl IntensitySource {
    pub fn label(self) -> &'static str {
        match self {
            IntensitySource::Table => "table",
            IntensitySource::WorldAverage => "world-average",
            IntensitySource::Fixed => "fixed",
            IntensitySource::Series => "series",
            IntensitySource::ElectricityMaps => "electricitymaps",
            IntensitySource::CarbonIntensityUk => "carbon-intensity-uk",
        }
    }
}

impl fmt::Display for IntensitySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The intensity applied to one tick.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Intensity {
    pub g_per_kwh: f64,
    /// Canonical table code (`FRA`, `US-CA`, `aws:us-east-1`…), or `world` when unset.
    pub region: String,
    pub source: IntensitySource,
    /// Why a fallback was used (series gap, provider failure).
    pub note: Option<String>,
}

/// What the user asked for: `--region`, `--intensity`, `--intensity-series`, a
/// provider, `--pue`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CarbonConfig {
    pub region: Option<String>,
    pub intensity_g_per_kwh: Option<f64>,
    pub series_path: Option<PathBuf>,
    pub provider: Option<ProviderConfig>,
    /// Power usage effectiveness (1.0 when unset).
    pub pue: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum CarbonError {
    #[error("--intensity must be a finite number of g/kWh ≥ 0, got {0}")]
    BadFixedIntensity(f64),
    #[error("PUE {0} is outside {PUE_RANGE:?}")]
    BadPue(f64),
    #[error(transparent)]
    Region(#[from] UnknownRegion),
    #[error("intensity series")]
    Series(#[from] SeriesError),
    #[error("live intensity provider")]
    Provider(#[from] ProviderError),
}

/// The intensity of the embedded table for `region`, or the world average when no
/// region is given. An unknown code is an error naming the closest known ones.
pub fn table_intensity(region: Option<&str>) -> Result<Intensity, UnknownRegion> {
    let Some(code) = region else {
        return Ok(world_intensity());
    };
    let entry = resolve_region(code)?;
    Ok(Intensity {
        g_per_kwh: entry.g_per_kwh,
        region: entry.code.to_string(),
        source: IntensitySource::Table,
        note: None,
    })
}

fn world_intensity() -> Intensity {
    Intensity {
        g_per_kwh: world_average().g_per_kwh,
        region: WORLD_REGION.to_string(),
        source: IntensitySource::WorldAverage,
        note: None,
    }
}

/// Resolves the intensity of each tick from a `CarbonConfig`; owns the series and
/// the provider's cache.
pub struct CarbonResolver {
    baseline: Intensity,
    pue: f64,
    fixed_g_per_kwh: Option<f64>,
    series: Option<(PathBuf, Series)>,
    provider: Option<LiveProvider>,
}

impl CarbonResolver {
    /// Checks the region, the fixed value and the PUE, reads the series file and
    /// checks the provider configuration; makes no network request.
    pub fn new(config: CarbonConfig) -> Result<CarbonResolver, CarbonError> {
        if let Some(g) = config.intensity_g_per_kwh
            && (!g.is_finite() || g < 0.0)
        {
            return Err(CarbonError::BadFixedIntensity(g));
        }
        let pue = config.pue.unwrap_or(1.0);
        if !PUE_RANGE.contains(&pue) {
            return Err(CarbonError::BadPue(pue));
        }
        // The GB API measures Great Britain: its fallback is the GBR table row.
        let is_uk =
            matches!(&config.provider, Some(p) if p.kind == ProviderKind::CarbonIntensityUk);
        let region = config.region.or_else(|| is_uk.then(|| "GBR".to_string()));
        let baseline = table_intensity(region.as_deref())?;
        let series = match config.series_path {
            Some(path) => Some((path.clone(), Series::from_path(&path)?)),
            None => None,
        };
        let provider = match config.provider {
            Some(p) => Some(LiveProvider::new(p, region.as_deref())?),
            None => None,
        };
        Ok(CarbonResolver {
            baseline,
            pue,
            fixed_g_per_kwh: config.intensity_g_per_kwh,
            series,
            provider,
        })
    }

    /// The table (or world-average) intensity every fallback lands on.
    pub fn baseline(&self) -> &Intensity {
        &self.baseline
    }

    /// The power usage effectiveness grams are multiplied by (1.0 unless set).
    pub fn pue(&self) -> f64 {
        self.pue
    }

    /// Intensity at `at`: fixed > series > live provider > table > world average.
    /// Never fails: every fallback says why in `note`.
    pub fn intensity_at(&mut self, at: SystemTime) -> Intensity {
        if let Some(g_per_kwh) = self.fixed_g_per_kwh {
            return self.labelled(g_per_kwh, IntensitySource::Fixed);
        }
        if let Some((path, series)) = &self.series {
            if let Some(g_per_kwh) = series.value_at(at) {
                return self.labelled(g_per_kwh, IntensitySource::Series);
            }
            let why = format!(
                "series {} has no value at {} (covers {} to {})",
                path.display(),
                humantime::format_rfc3339_seconds(at),
                humantime::format_rfc3339_seconds(series.start()),
                humantime::format_rfc3339_seconds(series.end()),
            );
            return self.fallback(why);
        }
        let Some(provider) = self.provider.as_mut() else {
            return self.baseline.clone();
        };
        let source = provider.source();
        match provider.intensity_at(at) {
            Ok(g_per_kwh) => self.labelled(g_per_kwh, source),
            Err(e) => self.fallback(format!("{source} unavailable ({e})")),
        }
    }

    fn labelled(&self, g_per_kwh: f64, source: IntensitySource) -> Intensity {
        Intensity {
            g_per_kwh,
            region: self.baseline.region.clone(),
            source,
            note: None,
        }
    }

    fn fallback(&self, why: String) -> Intensity {
        let using = match self.baseline.source {
            IntensitySource::Table => format!("using the table value for {}", self.baseline.region),
            _ => "using the world average".to_string(),
        };
        Intensity {
            note: Some(format!("{why}; {using}")),
            ..self.baseline.clone()
        }
    }
}

#[cfg(test)]
#[path = "resolver_tests.rs"]
mod tests;
