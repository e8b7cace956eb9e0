//! Live intensity providers against a loopback HTTP server that serves the documented
//! JSON shapes, counts requests and can fail, close or hang on demand.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agent::carbon::{
    CarbonConfig, CarbonResolver, Intensity, IntensitySource, ProviderConfig, lookup,
};

#[derive(Clone)]
enum Reply {
    Json(u16, String),
    Close,
    Hang,
}

struct Server {
    base_url: String,
    requests: Arc<AtomicUsize>,
    reply: Arc<Mutex<Reply>>,
    /// Request heads as received, newest last.
    seen: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(reply: Reply) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let server = Server {
            base_url,
            requests: Arc::new(AtomicUsize::new(0)),
            reply: Arc::new(Mutex::new(reply)),
            seen: Arc::new(Mutex::new(Vec::new())),
        };
        let (requests, reply, seen) = (
            server.requests.clone(),
            server.reply.clone(),
            server.seen.clone(),
        );
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (requests, reply, seen) = (requests.clone(), reply.clone(), seen.clone());
                thread::spawn(move || serve(stream, &requests, &reply, &seen));
            }
        });
        server
    }

    fn set(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }

    fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn last_head(&self) -> String {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default()
    }
}

fn serve(
    mut stream: TcpStream,
    requests: &AtomicUsize,
    reply: &Mutex<Reply>,
    seen: &Mutex<Vec<String>>,
) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    seen.lock()
        .unwrap()
        .push(String::from_utf8_lossy(&head).into_owned());
    requests.fetch_add(1, Ordering::SeqCst);
    let reply = reply.lock().unwrap().clone();
    match reply {
        Reply::Json(status, body) => {
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
        Reply::Close => drop(stream),
        Reply::Hang => thread::sleep(Duration::from_secs(6)),
    }
}

fn em_json(g_per_kwh: u32) -> Reply {
    let body = format!(
        r#"{{"zone":"FR","carbonIntensity":{g_per_kwh},"datetime":"2026-11-22T22:00:00.000Z","updatedAt":"2026-11-22T21:55:00.000Z","isEstimated":false}}"#
    );
    Reply::Json(200, body)
}

fn uk_json(forecast: u32, actual: &str) -> Reply {
    let body = format!(
        r#"{{"data":[{{"from":"2026-11-22T22:00Z","to":"2026-11-22T22:30Z","intensity":{{"forecast":{forecast},"actual":{actual},"index":"moderate"}}}}]}}"#
    );
    Reply::Json(200, body)
}

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_385_400)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn em_resolver(server: &Server, region: &str) -> CarbonResolver {
    let mut provider = ProviderConfig::electricity_maps("t0ken", None);
    provider.base_url = Some(server.base_url.clone());
    let config = CarbonConfig {
        region: Some(region.to_string()),
        provider: Some(provider),
        ..Default::default()
    };
    CarbonResolver::new(config).unwrap()
}

fn france_g_per_kwh() -> f64 {
    lookup("FRA").unwrap().g_per_kwh
}

fn assert_table_fallback(got: &Intensity, note_part: &str) {
    assert_eq!(got.source, IntensitySource::Table, "{got:?}");
    assert_eq!(
        (got.g_per_kwh, got.region.as_str()),
        (france_g_per_kwh(), "FRA")
    );
    let note = got.note.as_deref().unwrap_or_default();
    assert!(note.starts_with("electricitymaps unavailable ("), "{note}");
    assert!(note.contains(note_part), "{note} lacks {note_part}");
    assert!(note.ends_with("; using the table value for FRA"), "{note}");
}

#[test]
fn electricity_maps_value_is_parsed_with_zone_and_token() {
    let server = Server::start(em_json(42));
    let got = em_resolver(&server, "fr").intensity_at(t0());
    let expected = Intensity {
        g_per_kwh: 42.0,
        region: "FRA".into(),
        source: IntensitySource::ElectricityMaps,
        note: None,
    };
    assert_eq!(got, expected);
    let head = server.last_head();
    assert!(
        head.starts_with("GET /v3/carbon-intensity/latest?zone=FR HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("\r\nauth-token: t0ken\r\n"),
        "{head}"
    );
}

#[test]
fn carbon_intensity_uk_prefers_actual_over_forecast() {
    let server = Server::start(uk_json(180, "175"));
    let mut provider = ProviderConfig::carbon_intensity_uk();
    provider.base_url = Some(format!("{}/", server.base_url));
    let config = CarbonConfig {
        provider: Some(provider),
        ..Default::default()
    };
    let mut resolver = CarbonResolver::new(config).unwrap();
    let got = resolver.intensity_at(t0());
    assert_eq!(
        (got.g_per_kwh, got.source),
        (175.0, IntensitySource::CarbonIntensityUk)
    );
    assert_eq!(got.region, "GBR");
    assert!(
        server
            .last_head()
            .starts_with("GET /intensity HTTP/1.1\r\n")
    );

    server.set(uk_json(180, "null"));
    let later = resolver.intensity_at(t0() + secs(601));
    assert_eq!(later.g_per_kwh, 180.0);
    assert_eq!(server.count(), 2);
}

#[test]
fn reads_within_the_ttl_hit_the_cache() {
    let server = Server::start(em_json(42));
    let mut resolver = em_resolver(&server, "FRA");
    let reads = [
        (0, 42.0, 1),
        (300, 42.0, 1),
        (599, 42.0, 1),
        (600, 43.0, 2),
        (900, 43.0, 2),
    ];
    for (at_s, g_per_kwh, requests) in reads {
        if at_s == 600 {
            server.set(em_json(43));
        }
        let got = resolver.intensity_at(t0() + secs(at_s));
        assert_eq!(got.g_per_kwh, g_per_kwh, "at +{at_s} s");
        assert_eq!(server.count(), requests, "at +{at_s} s");
    }
}

#[test]
fn failures_fall_back_to_the_table_with_a_note() {
    let cases = [
        (Reply::Json(500, "oops".into()), "HTTP status 500"),
        (
            Reply::Json(401, r#"{"error":"bad token"}"#.into()),
            "HTTP status 401",
        ),
        (Reply::Json(200, "{not json".into()), "unexpected response"),
        (
            Reply::Json(200, r#"{"carbonIntensity":null}"#.into()),
            "no carbonIntensity",
        ),
        (Reply::Close, "request failed"),
    ];
    for (reply, note_part) in cases {
        let server = Server::start(reply);
        let got = em_resolver(&server, "FRA").intensity_at(t0());
        assert_table_fallback(&got, note_part);
        assert_eq!(server.count(), 1, "{note_part}");
    }
}

/// A zone the table does not know is fine for the provider; with no region its
/// fallback is the world average. An unknown region is an error before any request.
#[test]
fn failure_without_region_falls_back_to_world_average() {
    let server = Server::start(Reply::Json(503, String::new()));
    let mut provider = ProviderConfig::electricity_maps("t0ken", Some("XX-NOWHERE".into()));
    provider.base_url = Some(server.base_url.clone());
    let config = CarbonConfig {
        provider: Some(provider),
        ..Default::default()
    };
    let got = CarbonResolver::new(config).unwrap().intensity_at(t0());
    assert_eq!(
        (got.g_per_kwh, got.source),
        (475.0, IntensitySource::WorldAverage)
    );
    let note = got.note.unwrap();
    assert!(note.contains("HTTP status 503"), "{note}");
    assert!(note.ends_with("; using the world average"), "{note}");
    assert!(
        server
            .last_head()
            .starts_with("GET /v3/carbon-intensity/latest?zone=XX-NOWHERE ")
    );
    let unknown = CarbonConfig {
        region: Some("XX-NOWHERE".into()),
        provider: Some(ProviderConfig::electricity_maps("t0ken", None)),
        ..Default::default()
    };
    let err = CarbonResolver::new(unknown).err().unwrap().to_string();
    assert!(err.starts_with("unknown region \"XX-NOWHERE\""), "{err}");
}

#[test]
fn no_request_is_made_during_backoff() {
    let server = Server::start(Reply::Json(500, String::new()));
    let mut resolver = em_resolver(&server, "FRA");
    // (seconds after t0, requests so far, note fragment); back-off 30 s then 60 s.
    let steps = [
        (0, 1, "HTTP status 500"),
        (10, 1, "retrying in 20 s after: HTTP status 500"),
        (29, 1, "retrying in 1 s"),
        (30, 2, "HTTP status 500"),
        (60, 2, "retrying in 30 s"),
        (89, 2, "retrying in 1 s"),
    ];
    for (at_s, requests, note_part) in steps {
        let got = resolver.intensity_at(t0() + secs(at_s));
        assert_table_fallback(&got, note_part);
        assert_eq!(server.count(), requests, "at +{at_s} s");
    }
    server.set(em_json(42));
    let got = resolver.intensity_at(t0() + secs(90));
    assert_eq!(
        (got.g_per_kwh, got.source),
        (42.0, IntensitySource::ElectricityMaps)
    );
    assert_eq!(server.count(), 3);
}

#[test]
fn a_server_that_never_answers_times_out_with_a_fallback() {
    let server = Server::start(Reply::Hang);
    let mut resolver = em_resolver(&server, "FRA");
    let started = Instant::now();
    let got = resolver.intensity_at(t0());
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(3_500), "took {elapsed:?}");
    assert!(
        elapsed >= Duration::from_millis(1_500),
        "took only {elapsed:?}"
    );
    assert_table_fallback(&got, "request failed");
    // The next tick is in back-off: immediate, no request.
    let started = Instant::now();
    let got = resolver.intensity_at(t0() + secs(1));
    assert!(started.elapsed() < Duration::from_millis(100));
    assert_table_fallback(&got, "retrying in 29 s");
    assert_eq!(server.count(), 1);
}
