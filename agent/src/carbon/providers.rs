//! Live grid-intensity providers, off unless configured: Electricity Maps (token) and
//! the GB Carbon Intensity API. Each read is cached, failures back off
//! exponentially, and a request never takes longer than its timeout, so a tick is
//! never held longer than that.
use std::fmt;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::IntensitySource;
use super::table;

/// Public endpoints; tests and proxies override them with `base_url`.
pub const ELECTRICITY_MAPS_BASE_URL: &str = "https://api.electricitymap.org";
pub const CARBON_INTENSITY_UK_BASE_URL: &str = "https://api.carbonintensity.org.uk";

/// Whole request (resolve, connect, send, read) limit.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(600);
pub const BACKOFF_FIRST: Duration = Duration::from_secs(30);
pub const BACKOFF_MAX: Duration = Duration::from_secs(1800);
const MAX_BODY_BYTES: u64 = 1 << 20;

#[derive(Clone, PartialEq)]
pub enum ProviderKind {
    /// `GET {base}/v3/carbon-intensity/latest?zone=ZONE` with header `auth-token`.
    /// `zone` defaults to the region (`FRA` → `FR`, `SE3` → `SE-SE3`).
    ElectricityMaps { token: String, zone: Option<String> },
    /// `GET {base}/intensity`: Great Britain, actual if published, else forecast.
    CarbonIntensityUk,
}

impl fmt::Debug for ProviderKind {
    // Keeps the token out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProviderKind::ElectricityMaps { zone, .. } => f
                .debug_struct("ElectricityMaps")
                .field("token", &"<redacted>")
                .field("zone", zone)
                .finish(),
            ProviderKind::CarbonIntensityUk => f.write_str("CarbonIntensityUk"),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// `http://` or `https://` root; `None` → the public endpoint.
    pub base_url: Option<String>,
    pub timeout: Duration,
    pub cache_ttl: Duration,
}

impl ProviderConfig {
    pub fn electricity_maps(token: impl Into<String>, zone: Option<String>) -> ProviderConfig {
        ProviderConfig::with_kind(ProviderKind::ElectricityMaps {
            token: token.into(),
            zone,
        })
    }

    pub fn carbon_intensity_uk() -> ProviderConfig {
        ProviderConfig::with_kind(ProviderKind::CarbonIntensityUk)
    }

    fn with_kind(kind: ProviderKind) -> ProviderConfig {
        ProviderConfig {
            kind,
            base_url: None,
            timeout: DEFAULT_TIMEOUT,
            cache_ttl: DEFAULT_CACHE_TTL,
        }
    }

    pub fn source(&self) -> IntensitySource {
        match self.kind {
            ProviderKind::ElectricityMaps { .. } => IntensitySource::ElectricityMaps,
            ProviderKind::CarbonIntensityUk => IntensitySource::CarbonIntensityUk,
        }
    }
}

#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum ProviderError {
    #[error("request failed: {0}")]
    Request(String),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("unexpected response: {0}")]
    BadResponse(String),
    #[error("retrying in {retry_in_s} s after: {last}")]
    BackingOff { retry_in_s: u64, last: String },
    #[error("Electricity Maps needs a zone: set one or give a region")]
    MissingZone,
    #[error("zone {0:?} is not a zone code (letters, digits, `-`, `_`)")]
    BadZone(String),
    #[error("base URL {0:?} must start with http:// or https://")]
    BadBaseUrl(String),
    #[error("Electricity Maps needs an API token")]
    MissingToken,
}

/// One configured provider with its cache and back-off state.
pub struct LiveProvider {
    config: ProviderConfig,
    zone: String,
    agent: ureq::Agent,
    cached: Option<(SystemTime, f64)>,
    failures: u32,
    retry_at: Option<SystemTime>,
    last_error: String,
}

impl LiveProvider {
    /// Checks the configuration; `region` supplies the Electricity Maps zone when the
    /// configuration has none. Makes no request.
    pub fn new(config: ProviderConfig, region: Option<&str>) -> Result<Self, ProviderError> {
        if let Some(base) = &config.base_url
            && !(base.starts_with("http://") || base.starts_with("https://"))
        {
            return Err(ProviderError::BadBaseUrl(base.clone()));
        }
        let zone = match &config.kind {
            ProviderKind::ElectricityMaps { token, zone } => {
                if token.trim().is_empty() {
                    return Err(ProviderError::MissingToken);
                }
                let zone = zone.clone().or_else(|| region.map(zone_for_region));
                checked_zone(zone.ok_or(ProviderError::MissingZone)?)?
            }
            ProviderKind::CarbonIntensityUk => String::new(),
        };
        let agent_config = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .build();
        Ok(LiveProvider {
            agent: agent_config.into(),
            config,
            zone,
            cached: None,
            failures: 0,
            retry_at: None,
            last_error: String::new(),
        })
    }

    pub fn source(&self) -> IntensitySource {
        self.config.source()
    }

    /// Electricity Maps zone queried (empty for the GB API).
    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// The intensity at `at`: the cached value while younger than the TTL, else one
    /// request (bounded by the timeout). After a failure no request is made until the
    /// back-off (30 s, doubling to 30 min) has passed.
    pub fn intensity_at(&mut self, at: SystemTime) -> Result<f64, ProviderError> {
        if let Some((fetched_at, g_per_kwh)) = self.cached {
            let age = at.duration_since(fetched_at);
            if age.is_ok_and(|age| age < self.config.cache_ttl) {
                return Ok(g_per_kwh);
            }
        }
        if let Some(wait) = self.retry_at.and_then(|r| r.duration_since(at).ok())
            && !wait.is_zero()
        {
            let retry_in_s = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let last = self.last_error.clone();
            return Err(ProviderError::BackingOff { retry_in_s, last });
        }
        match self.fetch() {
            Ok(g_per_kwh) => {
                if self.failures > 0 {
                    tracing::info!("{} answering again", self.source());
                }
                (self.cached, self.failures, self.retry_at) = (Some((at, g_per_kwh)), 0, None);
                Ok(g_per_kwh)
            }
            Err(e) => {
                self.failures = self.failures.saturating_add(1);
                let wait = backoff_after(self.failures);
                tracing::warn!("{}: {e}; next try in {} s", self.source(), wait.as_secs());
                self.retry_at = Some(at + wait);
                self.last_error = e.to_string();
                Err(e)
            }
        }
    }

    fn fetch(&self) -> Result<f64, ProviderError> {
        let request = match &self.config.kind {
            ProviderKind::ElectricityMaps { token, .. } => {
                let base = self.base_url(ELECTRICITY_MAPS_BASE_URL);
                let url = format!("{base}/v3/carbon-intensity/latest?zone={}", self.zone);
                self.agent.get(url).header("auth-token", token.as_str())
            }
            ProviderKind::CarbonIntensityUk => {
                let base = self.base_url(CARBON_INTENSITY_UK_BASE_URL);
                self.agent.get(format!("{base}/intensity"))
            }
        };
        let mut response = request
            .header("accept", "application/json")
            .call()
            .map_err(|e| ProviderError::Request(e.to_string()))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(ProviderError::Status(status));
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_string()
            .map_err(|e| ProviderError::Request(e.to_string()))?;
        match self.config.kind {
            ProviderKind::ElectricityMaps { .. } => parse_electricity_maps(&body),
            ProviderKind::CarbonIntensityUk => parse_carbon_intensity_uk(&body),
        }
    }

    fn base_url<'a>(&'a self, default: &'a str) -> &'a str {
        self.config
            .base_url
            .as_deref()
            .unwrap_or(default)
            .trim_end_matches('/')
    }
}

/// Wait after `failures` consecutive failures: 30 s, 60 s, 120 s … capped at 30 min.
pub fn backoff_after(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    BACKOFF_FIRST
        .saturating_mul(1 << doublings)
        .min(BACKOFF_MAX)
}

/// Electricity Maps zone for a region code: ISO alpha-2 for countries, `SE-SE3` for
/// Nordic bidding zones, the grid zone's for AWS and Azure regions, the code itself
/// (upper case) otherwise.
pub fn zone_for_region(region: &str) -> String {
    let Some(mut entry) = table::lookup(region) else {
        return region.trim().to_uppercase();
    };
    if let Some(zone) = entry.zone.and_then(table::lookup) {
        entry = zone;
    }
    if let Some(alpha2) = table::alpha2_of(entry) {
        return alpha2.to_string();
    }
    let country = entry.code.get(..2).unwrap_or_default();
    let prefixed = format!("{country}-{}", entry.code);
    if entry.aliases().any(|a| a == prefixed) {
        prefixed
    } else {
        entry.code.to_string()
    }
}

fn checked_zone(zone: String) -> Result<String, ProviderError> {
    let valid = !zone.is_empty()
        && zone
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(zone)
    } else {
        Err(ProviderError::BadZone(zone))
    }
}

fn checked_value(g_per_kwh: f64) -> Result<f64, ProviderError> {
    if g_per_kwh.is_finite() && g_per_kwh >= 0.0 {
        Ok(g_per_kwh)
    } else {
        Err(ProviderError::BadResponse(format!(
            "intensity out of range: {g_per_kwh}"
        )))
    }
}

#[derive(Deserialize)]
struct ElectricityMapsLatest {
    #[serde(rename = "carbonIntensity")]
    carbon_intensity: Option<f64>,
}

/// `{"zone":"FR","carbonIntensity":56,…}` → 56.
pub fn parse_electricity_maps(body: &str) -> Result<f64, ProviderError> {
    let latest: ElectricityMapsLatest =
        serde_json::from_str(body).map_err(|e| ProviderError::BadResponse(e.to_string()))?;
    let value = latest.carbon_intensity;
    checked_value(value.ok_or_else(|| ProviderError::BadResponse("no carbonIntensity".into()))?)
}

#[derive(Deserialize)]
struct UkResponse {
    data: Vec<UkPeriod>,
}

#[derive(Deserialize)]
struct UkPeriod {
    intensity: UkIntensity,
}

#[derive(Deserialize)]
struct UkIntensity {
    forecast: Option<f64>,
    actual: Option<f64>,
}

/// `{"data":[{"from":…,"to":…,"intensity":{"forecast":N,"actual":N|null,…}}]}` →
/// actual if present, else forecast.
pub fn parse_carbon_intensity_uk(body: &str) -> Result<f64, ProviderError> {
    let response: UkResponse =
        serde_json::from_str(body).map_err(|e| ProviderError::BadResponse(e.to_string()))?;
    let period = response
        .data
        .first()
        .ok_or_else(|| ProviderError::BadResponse("empty data".into()))?;
    let value = period.intensity.actual.or(period.intensity.forecast);
    checked_value(value.ok_or_else(|| ProviderError::BadResponse("no forecast or actual".into()))?)
}

#[cfg(test)]
#[path = "providers_tests.rs"]
mod tests;
