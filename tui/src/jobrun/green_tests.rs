//! `--when-green` on a fast clock: hours of waiting in no time.
use super::*;
use agent::carbon::series::parse_rfc3339;
use std::path::Path;

/// A clock that jumps forward when asked to sleep, and counts the sleeps.
struct FastClock {
    now: SystemTime,
    slept: Vec<Duration>,
    /// Interrupt the n-th sleep (0-based).
    interrupt_at: Option<usize>,
}

impl FastClock {
    fn at(text: &str) -> FastClock {
        FastClock {
            now: t(text),
            slept: Vec::new(),
            interrupt_at: None,
        }
    }
}

impl Clock for FastClock {
    fn now(&self) -> SystemTime {
        self.now
    }
    fn sleep(&mut self, span: Duration) -> bool {
        if self.interrupt_at == Some(self.slept.len()) {
            return false;
        }
        self.slept.push(span);
        self.now += span;
        true
    }
}

fn t(hm: &str) -> SystemTime {
    parse_rfc3339(&format!("2026-11-22T{hm}:00Z")).unwrap()
}

const H: u64 = 3600;

/// Hourly from 00:00: 400, 350, 250, 120 (the valley, 03:00), 280, 450; ends 06:00.
fn series() -> Series {
    let text = "timestamp,g_per_kwh\n\
        2026-11-22T00:00:00Z,400\n2026-11-22T01:00:00Z,350\n2026-11-22T02:00:00Z,250\n\
        2026-11-22T03:00:00Z,120\n2026-11-22T04:00:00Z,280\n2026-11-22T05:00:00Z,450\n";
    Series::parse(text, Path::new("valley.csv")).unwrap()
}

fn policy(urgency: Urgency, max_wait_h: u64, duration_h: Option<u64>) -> GreenPolicy {
    GreenPolicy {
        threshold_g_per_kwh: 200.0,
        urgency,
        max_wait: Duration::from_secs(max_wait_h * H),
        expected_duration: duration_h.map(|h| Duration::from_secs(h * H)),
    }
}

fn run(clock: &mut FastClock, policy: &GreenPolicy) -> (GreenDecision, Vec<String>) {
    let s = series();
    let mut lines = Vec::new();
    let decision = wait_for_green(Outlook::Forecast(&s), policy, clock, &mut |l| {
        lines.push(l.to_string())
    })
    .unwrap();
    (decision, lines)
}

#[test]
fn waits_for_the_valley_on_a_series() {
    // (now, urgency, max wait h, expected h, start, start g/kWh)
    let cases = [
        // low: 200 first reached at 03:00.
        ("00:00", Urgency::Low, 24, None, "03:00", 120.0),
        // medium: 300 first reached at 02:00.
        ("00:00", Urgency::Medium, 24, None, "02:00", 250.0),
        // Already green enough: no wait.
        ("02:30", Urgency::Medium, 24, None, "02:30", 250.0),
        // The valley is past --max-wait: the lowest before it (02:00), never later.
        ("00:00", Urgency::Low, 2, None, "02:00", 250.0),
        ("00:30", Urgency::Low, 1, None, "01:00", 350.0),
        // Two hours of work: 02:00–04:00 averages 185, 03:00–05:00 200: 02:00.
        ("00:00", Urgency::Low, 24, Some(2), "02:00", 185.0),
        // … unless the window must start within one hour.
        ("00:00", Urgency::Low, 1, Some(2), "01:00", 300.0),
        // high never waits.
        ("00:00", Urgency::High, 24, None, "00:00", 400.0),
        ("00:00", Urgency::High, 24, Some(2), "00:00", 400.0),
    ];
    for (now, urgency, max_wait, duration, start, start_g) in cases {
        let label = format!("{now} {urgency:?} max {max_wait} h, job {duration:?} h");
        let policy = policy(urgency, max_wait, duration);
        let mut clock = FastClock::at(now);
        let (decision, lines) = run(&mut clock, &policy);
        assert_eq!(clock.now, t(start), "{label}: {lines:?}");
        assert!(
            clock.now <= t(now) + policy.max_wait,
            "{label}: past --max-wait"
        );
        let waited = t(start).duration_since(t(now)).unwrap().as_secs_f64();
        assert_eq!(decision.waited_s, waited, "{label}");
        assert_eq!(decision.start_g_per_kwh, Some(start_g), "{label}");
        let planned = humantime::parse_rfc3339(&decision.start_at).unwrap();
        assert_eq!(planned, t(start), "{label}");
        if urgency == Urgency::High {
            assert!(
                clock.slept.is_empty(),
                "{label}: high slept {:?}",
                clock.slept
            );
        }
        if waited > 0.0 {
            assert!(lines[0].starts_with("waiting "), "{label}: {lines:?}");
            assert!(lines[0].contains("expected saving"), "{label}: {lines:?}");
        }
    }
}

#[test]
fn a_long_wait_is_logged_and_a_signal_ends_it() {
    let mut clock = FastClock::at("00:00");
    let (decision, lines) = run(&mut clock, &policy(Urgency::Low, 24, None));
    // 3 h in steps of at most LOG_EVERY, each saying what is left.
    assert!(clock.slept.iter().all(|&s| s <= LOG_EVERY));
    assert_eq!(
        clock.slept.iter().sum::<Duration>(),
        Duration::from_secs(3 * H)
    );
    assert!(
        lines.iter().any(|l| l == "still waiting: 2h 45m left"),
        "{lines:?}"
    );
    // As docs/run.md shows it.
    assert_eq!(
        lines[0],
        "waiting 3h until 2026-11-22T03:00:00Z (first at or below 200 gCO₂/kWh): \
         120 gCO₂/kWh then instead of 400 gCO₂/kWh now; expected saving 70.0 %"
    );
    assert!(
        (decision.expected_saving_pct - 70.0).abs() < 1e-9,
        "{decision:?}"
    );
    let mut clock = FastClock::at("00:00");
    clock.interrupt_at = Some(2);
    let s = series();
    let got = wait_for_green(
        Outlook::Forecast(&s),
        &policy(Urgency::Low, 24, None),
        &mut clock,
        &mut |_| {},
    );
    assert_eq!(got, Err(Interrupted));
}

#[test]
fn a_live_provider_is_polled_until_green_or_max_wait() {
    // 400 until 01:10, then 150.
    let mut poll = |at: SystemTime| Ok(if at < t("01:10") { 400.0 } else { 150.0 });
    let mut clock = FastClock::at("00:00");
    let mut lines = Vec::new();
    let decision = wait_for_green(
        Outlook::Live(&mut poll),
        &policy(Urgency::Low, 24, None),
        &mut clock,
        &mut |l| lines.push(l.to_string()),
    )
    .unwrap();
    // Polled every 5 minutes: green at the 01:10 poll.
    assert_eq!(clock.now, t("01:10"), "{lines:?}");
    assert!(clock.slept.iter().all(|&s| s == POLL_EVERY));
    assert_eq!(decision.start_g_per_kwh, Some(150.0));
    // Never green: starts at --max-wait exactly.
    let mut never = |_: SystemTime| Ok(400.0);
    let mut clock = FastClock::at("00:00");
    let decision = wait_for_green(
        Outlook::Live(&mut never),
        &policy(Urgency::Medium, 1, None),
        &mut clock,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(clock.now, t("01:00"));
    assert_eq!(decision.decision, "--max-wait reached: starting");
    // A failing provider is waited out too, and high never polls twice.
    let mut failing = |_: SystemTime| Err("HTTP status 503".to_string());
    let mut clock = FastClock::at("00:00");
    let got = wait_for_green(
        Outlook::Live(&mut failing),
        &policy(Urgency::High, 1, None),
        &mut clock,
        &mut |_| {},
    );
    assert_eq!((got.unwrap().waited_s, clock.slept.len()), (0.0, 0));
}

#[test]
fn a_constant_intensity_never_waits() {
    let mut clock = FastClock::at("00:00");
    let decision = wait_for_green(
        Outlook::Constant(475.0),
        &policy(Urgency::Low, 24, None),
        &mut clock,
        &mut |_| {},
    )
    .unwrap();
    assert!(clock.slept.is_empty());
    assert_eq!(decision.now_g_per_kwh, Some(475.0));
}
