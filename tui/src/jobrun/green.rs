//! Carbon-aware start (`--when-green`), the seed's scheduler: wait before starting
//! the command until the grid's intensity is below `--threshold` (× 1.5 at urgency
//! medium; urgency high starts now), never longer than `--max-wait`; or, with
//! `--expected-duration`, start in the greenest window (`greentop greenest`).
//!
//! With a series file the future is known, so the start is planned once and slept
//! to; with a live provider the current value is polled. Time comes from a `Clock`,
//! so tests run hours of waiting in no time.
use std::time::{Duration, SystemTime};

use agent::carbon::Series;
use agent::carbon::greenest::greenest_window;
use serde::{Deserialize, Serialize};

use super::args::Urgency;

/// Time for the wait.
pub trait Clock {
    fn now(&self) -> SystemTime;
    /// Sleeps for `span`; false if interrupted.
    fn sleep(&mut self, span: Duration) -> bool;
}

/// A live provider is asked this often.
pub const POLL_EVERY: Duration = Duration::from_secs(300);
/// A planned wait says how long is left this often.
pub const LOG_EVERY: Duration = Duration::from_secs(900);

/// What `--when-green` asked for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GreenPolicy {
    pub threshold_g_per_kwh: f64,
    pub urgency: Urgency,
    pub max_wait: Duration,
    pub expected_duration: Option<Duration>,
}

impl GreenPolicy {
    /// The intensity at or below which the job may start; `None` at urgency high.
    pub fn limit(&self) -> Option<f64> {
        self.urgency
            .threshold_factor()
            .map(|f| f * self.threshold_g_per_kwh)
    }
}

/// Where the intensity comes from.
pub enum Outlook<'a> {
    /// A series file: the future is known.
    Forecast(&'a Series),
    /// A live provider, asked for the current value (`Err`: why it failed).
    Live(&'a mut dyn FnMut(SystemTime) -> Result<f64, String>),
    /// A fixed or table value: it will not change by waiting.
    Constant(f64),
}

/// What was decided and what came of it (the report's `when_green`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GreenDecision {
    /// One sentence: why the job started when it did.
    pub decision: String,
    pub waited_s: f64,
    pub limit_g_per_kwh: Option<f64>,
    /// At the decision (the average over the expected duration, if given).
    pub now_g_per_kwh: Option<f64>,
    /// Expected at the chosen start, likewise.
    pub start_g_per_kwh: Option<f64>,
    /// `(now − start) / now × 100`.
    pub expected_saving_pct: f64,
    /// The start decided on, RFC 3339 UTC: a point of the series, or when a live
    /// value (or the end of --max-wait) let the job go.
    pub start_at: String,
}

/// A start planned on a series.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub start: SystemTime,
    pub now_g: Option<f64>,
    pub start_g: Option<f64>,
    pub reason: String,
}

/// Plans the start on a known series; never later than `now + max_wait`.
pub fn plan_on_series(series: &Series, now: SystemTime, policy: &GreenPolicy) -> Plan {
    let now_plan = |now_g: Option<f64>, reason: String| Plan {
        start: now,
        now_g,
        start_g: now_g,
        reason,
    };
    let Some(limit) = policy.limit() else {
        return now_plan(series.value_at(now), "urgency high: starting now".into());
    };
    let Some(duration) = policy.expected_duration else {
        return plan_on_threshold(series, now, policy.max_wait, limit);
    };
    let Some(now_avg) = series.average_over(now, duration) else {
        return now_plan(
            None,
            "the series does not cover the job from now; starting now".into(),
        );
    };
    if now_avg <= limit {
        return now_plan(
            Some(now_avg),
            format!("already at or below {limit:.0} gCO₂/kWh"),
        );
    }
    match greenest_window(series, duration, policy.max_wait + duration, now) {
        Ok(w) => Plan {
            start: w.start,
            now_g: Some(now_avg),
            start_g: Some(w.average_g_per_kwh),
            reason: "the greenest window for the expected duration within --max-wait".into(),
        },
        Err(e) => now_plan(Some(now_avg), format!("{e}; starting now")),
    }
}

/// The first instant at or below `limit` within `max_wait`, else the lowest.
fn plan_on_threshold(series: &Series, now: SystemTime, max_wait: Duration, limit: f64) -> Plan {
    let Some(now_g) = series.value_at(now) else {
        return Plan {
            start: now,
            now_g: None,
            start_g: None,
            reason: "the series has no value now; starting now".into(),
        };
    };
    let latest = now + max_wait;
    let later = series
        .points()
        .iter()
        .copied()
        .filter(|&(t, _)| t > now && t <= latest);
    let candidates: Vec<(SystemTime, f64)> = std::iter::once((now, now_g)).chain(later).collect();
    let (start, start_g, reason) = match candidates.iter().find(|&&(_, g)| g <= limit) {
        Some(&(t, g)) => (t, g, format!("first at or below {limit:.0} gCO₂/kWh")),
        None => {
            let &(t, g) = candidates
                .iter()
                .reduce(|best, c| if c.1 < best.1 { c } else { best })
                .unwrap_or(&(now, now_g));
            let why =
                format!("never at or below {limit:.0} gCO₂/kWh within --max-wait; the lowest");
            (t, g, why)
        }
    };
    Plan {
        start,
        now_g: Some(now_g),
        start_g: Some(start_g),
        reason,
    }
}

/// Interrupted by a signal while waiting.
#[derive(Debug, PartialEq, Eq)]
pub struct Interrupted;

/// Waits as the policy says; `log` gets each line worth telling the user.
pub fn wait_for_green(
    outlook: Outlook,
    policy: &GreenPolicy,
    clock: &mut dyn Clock,
    log: &mut dyn FnMut(&str),
) -> Result<GreenDecision, Interrupted> {
    let began = clock.now();
    let mut decision = match outlook {
        Outlook::Forecast(series) => {
            let plan = plan_on_series(series, began, policy);
            log(&announce(&plan, policy, began));
            sleep_until(clock, plan.start, log)?;
            GreenDecision {
                start_at: rfc3339(plan.start),
                ..decision_of(&plan, policy)
            }
        }
        Outlook::Live(poll) => wait_live(poll, policy, clock, log)?,
        Outlook::Constant(g) => {
            let decision = format!(
                "{g:.0} gCO₂/kWh is a fixed value or the region's table value; waiting would not change it, starting now"
            );
            log(&decision);
            GreenDecision {
                decision,
                limit_g_per_kwh: policy.limit(),
                now_g_per_kwh: Some(g),
                start_g_per_kwh: Some(g),
                ..GreenDecision::default()
            }
        }
    };
    let now = clock.now();
    decision.waited_s = now.duration_since(began).unwrap_or_default().as_secs_f64();
    if decision.start_at.is_empty() {
        decision.start_at = rfc3339(now);
    }
    Ok(decision)
}

fn announce(plan: &Plan, policy: &GreenPolicy, now: SystemTime) -> String {
    let g = |v: Option<f64>| v.map_or("unknown".to_string(), |g| format!("{g:.0} gCO₂/kWh"));
    let wait = plan.start.duration_since(now).unwrap_or_default();
    let saving = saving_pct(plan.now_g, plan.start_g);
    let over = policy
        .expected_duration
        .map(|d| format!(" (average over {})", humantime::format_duration(d)))
        .unwrap_or_default();
    if wait.is_zero() {
        return format!("starting now at {}{over}: {}", g(plan.now_g), plan.reason);
    }
    format!(
        "waiting {} until {} ({}): {}{over} then instead of {} now; expected saving {saving:.1} %",
        humantime::format_duration(Duration::from_secs(wait.as_secs())),
        humantime::format_rfc3339_seconds(plan.start),
        plan.reason,
        g(plan.start_g),
        g(plan.now_g),
    )
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

fn decision_of(plan: &Plan, policy: &GreenPolicy) -> GreenDecision {
    GreenDecision {
        decision: plan.reason.clone(),
        waited_s: 0.0,
        limit_g_per_kwh: policy.limit(),
        now_g_per_kwh: plan.now_g,
        start_g_per_kwh: plan.start_g,
        expected_saving_pct: saving_pct(plan.now_g, plan.start_g),
        start_at: String::new(),
    }
}

fn saving_pct(now: Option<f64>, start: Option<f64>) -> f64 {
    match (now, start) {
        (Some(now), Some(start)) if now > 0.0 => (now - start) / now * 100.0,
        _ => 0.0,
    }
}

/// Sleeps to `until`, saying every `LOG_EVERY` how long is left.
fn sleep_until(
    clock: &mut dyn Clock,
    until: SystemTime,
    log: &mut dyn FnMut(&str),
) -> Result<(), Interrupted> {
    loop {
        let Ok(left) = until.duration_since(clock.now()) else {
            return Ok(());
        };
        if left.is_zero() {
            return Ok(());
        }
        if !clock.sleep(left.min(LOG_EVERY)) {
            return Err(Interrupted);
        }
        if let Ok(left) = until.duration_since(clock.now())
            && !left.is_zero()
        {
            let left = Duration::from_secs(left.as_secs());
            log(&format!(
                "still waiting: {} left",
                humantime::format_duration(left)
            ));
        }
    }
}

/// Polls a live provider until the value is at or below the limit or `max_wait`
/// has passed.
fn wait_live(
    poll: &mut dyn FnMut(SystemTime) -> Result<f64, String>,
    policy: &GreenPolicy,
    clock: &mut dyn Clock,
    log: &mut dyn FnMut(&str),
) -> Result<GreenDecision, Interrupted> {
    let began = clock.now();
    let first = poll(began).ok();
    let Some(limit) = policy.limit() else {
        log("urgency high: starting now");
        return Ok(live_decision(
            "urgency high: starting now".into(),
            None,
            first,
            first,
        ));
    };
    if policy.expected_duration.is_some() {
        log(
            "a live provider has no forecast: waiting on the current value (--expected-duration needs a series)",
        );
    }
    let deadline = began + policy.max_wait;
    let mut value = first;
    loop {
        let now = clock.now();
        match value {
            Some(g) if g <= limit => {
                let why = format!("{g:.0} gCO₂/kWh, at or below {limit:.0}: starting");
                log(&why);
                return Ok(live_decision(why, Some(limit), first, Some(g)));
            }
            Some(g) => log(&format!(
                "{g:.0} gCO₂/kWh now, waiting for {limit:.0} or less"
            )),
            None => log("the live provider did not answer; waiting"),
        }
        let left = deadline.duration_since(now).unwrap_or_default();
        if left.is_zero() {
            break;
        }
        if !clock.sleep(left.min(POLL_EVERY)) {
            return Err(Interrupted);
        }
        value = poll(clock.now())
            .map_err(|e| log(&format!("live provider: {e}")))
            .ok();
    }
    let why = "--max-wait reached: starting".to_string();
    log(&why);
    Ok(live_decision(why, Some(limit), first, value))
}

fn live_decision(
    why: String,
    limit: Option<f64>,
    now: Option<f64>,
    start: Option<f64>,
) -> GreenDecision {
    GreenDecision {
        decision: why,
        waited_s: 0.0,
        limit_g_per_kwh: limit,
        now_g_per_kwh: now,
        start_g_per_kwh: start,
        expected_saving_pct: saving_pct(now, start),
        start_at: String::new(),
    }
}

#[cfg(test)]
#[path = "green_tests.rs"]
mod tests;
