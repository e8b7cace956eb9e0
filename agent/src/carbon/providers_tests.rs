//! Unit tests for provider parsing, back-off and configuration (the HTTP paths are
//! covered by `agent/tests/carbon_providers.rs` against a loopback server).
use super::*;

#[test]
fn parse_electricity_maps_table() {
    let cases: &[(&str, Option<f64>)] = &[
        (
            r#"{"zone":"FR","carbonIntensity":56,"datetime":"2026-11-22T22:00:00.000Z"}"#,
            Some(56.0),
        ),
        (r#"{"carbonIntensity":123.5}"#, Some(123.5)),
        (r#"{"carbonIntensity":null}"#, None),
        (r#"{"zone":"FR"}"#, None),
        (r#"{"carbonIntensity":-1}"#, None),
        (r#"{"carbonIntensity":"56"}"#, None),
        ("<html>", None),
        ("", None),
    ];
    for &(body, expected) in cases {
        assert_eq!(parse_electricity_maps(body).ok(), expected, "{body}");
    }
}

#[test]
fn parse_carbon_intensity_uk_table() {
    let period = |forecast: &str, actual: &str| {
        format!(
            r#"{{"data":[{{"from":"2026-11-22T22:00Z","to":"2026-11-22T22:30Z","intensity":{{"forecast":{forecast},"actual":{actual},"index":"low"}}}}]}}"#
        )
    };
    let cases = [
        (period("180", "175"), Some(175.0)),
        (period("180", "null"), Some(180.0)),
        (period("null", "null"), None),
        (r#"{"data":[]}"#.to_string(), None),
        (r#"{"error":{"code":"400"}}"#.to_string(), None),
        ("[1,2".to_string(), None),
    ];
    for (body, expected) in cases {
        assert_eq!(parse_carbon_intensity_uk(&body).ok(), expected, "{body}");
    }
}

#[test]
fn backoff_doubles_to_thirty_minutes() {
    let cases = [
        (0, 30),
        (1, 30),
        (2, 60),
        (3, 120),
        (4, 240),
        (6, 960),
        (7, 1800),
        (40, 1800),
    ];
    for (failures, seconds) in cases {
        assert_eq!(
            backoff_after(failures),
            Duration::from_secs(seconds),
            "{failures}"
        );
    }
}

#[test]
fn zone_for_region_table() {
    let cases = [
        ("FRA", "FR"),
        ("fr", "FR"),
        ("Germany", "DE"),
        ("SE3", "SE-SE3"),
        ("NO-NO4", "NO-NO4"),
        ("US-CA", "US-CA"),
        ("us-cal-ciso", "US-CAL-CISO"),
        ("azure:westeurope", "NL"),
        ("aws:eu-north-1", "SE-SE3"),
    ];
    for (region, zone) in cases {
        assert_eq!(zone_for_region(region), zone, "{region}");
    }
}

#[test]
fn configuration_is_checked() {
    let em = |zone: Option<&str>| ProviderConfig::electricity_maps("t0k", zone.map(String::from));
    let mut bad_base = ProviderConfig::carbon_intensity_uk();
    bad_base.base_url = Some("ftp://x".into());
    let cases = [
        (em(None), None, Err(ProviderError::MissingZone)),
        (em(None), Some("FRA"), Ok("FR")),
        (em(Some("DE")), Some("FRA"), Ok("DE")),
        (
            em(Some("FR&x=1")),
            None,
            Err(ProviderError::BadZone("FR&x=1".into())),
        ),
        (
            ProviderConfig::electricity_maps(" ", None),
            Some("FRA"),
            Err(ProviderError::MissingToken),
        ),
        (ProviderConfig::carbon_intensity_uk(), None, Ok("")),
        (
            bad_base,
            None,
            Err(ProviderError::BadBaseUrl("ftp://x".into())),
        ),
    ];
    for (config, region, expected) in cases {
        let got = LiveProvider::new(config.clone(), region);
        assert_eq!(
            got.as_ref().map(LiveProvider::zone).map_err(Clone::clone),
            expected,
            "{config:?}"
        );
    }
}

#[test]
fn debug_hides_the_token() {
    let config = ProviderConfig::electricity_maps("s3cret-token", Some("FR".into()));
    let text = format!("{config:?}");
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains("redacted"), "{text}");
}

#[test]
fn sources_are_labelled() {
    let em = ProviderConfig::electricity_maps("t", None);
    assert_eq!(em.source().label(), "electricitymaps");
    assert_eq!(
        ProviderConfig::carbon_intensity_uk().source().label(),
        "carbon-intensity-uk"
    );
}
