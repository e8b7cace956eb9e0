//! Whether an energy counter can be believed: one interval's reading judged against
//! what a counter of its kind can do (advance, never run backwards outside a wrap,
//! stay below a few times the package's TDP), and each counter's trust over time.
//! Thresholds and their reasons: docs/methodology.md, "Trusting a counter".
use std::time::Duration;

use super::{Domain, DomainEnergy, DomainKind, Provenance, ReadKind};

/// A counter above this many times the package's TDP is not measuring power.
pub const CEILING_TDP_FACTOR: f64 = 4.0;
/// The ceiling never goes below this: turbo on small parts runs at several × TDP.
pub const CEILING_FLOOR_W: f64 = 100.0;
/// TDP assumed for the ceiling when the CPU model is not in the table: above any
/// server part's, so an unknown CPU is never rejected for drawing real power.
pub const UNKNOWN_TDP_W: f64 = 500.0;
/// Below this, a counter that moved at all is not following a live package, DRAM or
/// platform (idle parts draw tenths of a watt; one RAPL unit is 15–61 µJ).
pub const FLOOR_W: f64 = 0.01;
/// Over a shorter interval a counter that did not move says nothing: RAPL counters
/// update about every millisecond, some hypervisors' every few.
pub const MIN_JUDGED: Duration = Duration::from_millis(20);

/// What is wrong with a counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// It did not advance (or advanced by less than [`FLOOR_W`]).
    Frozen,
    /// It went down, and not by a wrap at its range.
    Backwards,
    /// It implies more power than the part can draw.
    Implausible,
    /// It could not be read.
    Unreadable,
}

impl Problem {
    /// One word, for the live view and JSON.
    pub fn label(self) -> &'static str {
        match self {
            Problem::Frozen => "frozen",
            Problem::Backwards => "backwards",
            Problem::Implausible => "implausible",
            Problem::Unreadable => "unreadable",
        }
    }
}

/// One interval of one counter, judged.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Advanced at a plausible rate.
    Good { watts: f64 },
    /// Not to be believed, and why (a sentence without the counter's name).
    Bad { problem: Problem, why: String },
    /// Too short an interval to tell.
    Unjudged,
}

/// The highest believable power per domain kind, in watts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ceilings {
    pub package_w: f64,
    pub dram_w: f64,
    pub psys_w: f64,
}

impl Ceilings {
    /// From one package's TDP (the table's row, `--cpu-tdp-watts`, or None when
    /// unknown) and the number of packages: package and DRAM domains
    /// `max(4 × TDP, 100 W)` each; psys, the whole platform, all packages' worth twice.
    pub fn for_tdp(tdp_w: Option<f64>, packages: usize) -> Ceilings {
        let tdp_w = tdp_w.filter(|w| w.is_finite() && *w > 0.0);
        let package_w = (CEILING_TDP_FACTOR * tdp_w.unwrap_or(UNKNOWN_TDP_W)).max(CEILING_FLOOR_W);
        Ceilings {
            package_w,
            dram_w: package_w,
            psys_w: 2.0 * package_w * packages.max(1) as f64,
        }
    }

    /// The ceiling of a watched kind; None for kinds that are not watched (core and
    /// uncore are parts of a package and may rightly read 0; GPUs have NVML).
    pub fn of(&self, kind: DomainKind) -> Option<f64> {
        match kind {
            DomainKind::Package => Some(self.package_w),
            DomainKind::Dram => Some(self.dram_w),
            DomainKind::Psys => Some(self.psys_w),
            DomainKind::Core | DomainKind::Uncore | DomainKind::Gpu => None,
        }
    }
}

/// Judges one interval's reading of a counter over `elapsed` (the source's own time
/// between reads) against `ceiling_w`.
pub fn judge(reading: &DomainEnergy, elapsed: Duration, ceiling_w: f64) -> Verdict {
    let seconds = elapsed.as_secs_f64();
    let watts = if seconds > 0.0 {
        reading.energy_uj as f64 / 1e6 / seconds
    } else {
        f64::INFINITY
    };
    let bad = |problem, why| Verdict::Bad { problem, why };
    match reading.read {
        ReadKind::Failed => {
            let why = reading.note.clone().unwrap_or_else(|| "read failed".into());
            return bad(Problem::Unreadable, why);
        }
        ReadKind::Backwards { prev_uj, now_uj } => {
            let why = format!("went backwards ({prev_uj} -> {now_uj} uJ) and has no known range");
            return bad(Problem::Backwards, why);
        }
        ReadKind::Wrapped { prev_uj, now_uj } if watts > ceiling_w => {
            let why = format!(
                "went backwards ({prev_uj} -> {now_uj} uJ); read as a wrap that would be \
                 {watts:.0} W in {seconds:.2} s, above the {ceiling_w:.0} W ceiling: not a wrap"
            );
            return bad(Problem::Backwards, why);
        }
        ReadKind::Wrapped { .. } | ReadKind::Counted => {}
    }
    if elapsed < MIN_JUDGED {
        return Verdict::Unjudged;
    }
    if watts > ceiling_w {
        let why = format!(
            "{watts:.0} W over {seconds:.2} s is above the {ceiling_w:.0} W a part like this can draw"
        );
        bad(Problem::Implausible, why)
    } else if reading.energy_uj == 0 {
        bad(
            Problem::Frozen,
            format!("did not advance in {seconds:.2} s"),
        )
    } else if watts < FLOOR_W {
        let why = format!("advanced only {watts:.4} W over {seconds:.2} s");
        bad(Problem::Frozen, why)
    } else {
        Verdict::Good { watts }
    }
}

/// A change of a counter's trust.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// It was trusted and is not any more: its domain switches to the estimate.
    Distrusted,
    /// It counts plausibly again: measured from the next interval.
    Recovered,
}

impl Change {
    pub fn label(self) -> &'static str {
        match self {
            Change::Distrusted => "distrusted",
            Change::Recovered => "recovered",
        }
    }
}

/// One counter's trust now, as every sink sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct CounterTrust {
    pub domain: Domain,
    pub provenance: Provenance,
    /// True when this interval's value is the counter's and is believed.
    pub trusted: bool,
    pub problem: Option<Problem>,
    /// What happened and what greentop does about it, one line.
    pub note: Option<String>,
    /// Set in the interval where the trust changed.
    pub change: Option<Change>,
}

/// The trust of one counter across intervals.
///
/// Trusted → a bad interval distrusts it, and that interval already is not used.
/// Distrusted → a good interval makes it trusted again, but that interval is not
/// used either (after a freeze its delta may hold energy the estimate already
/// covered); the next good one is.
#[derive(Clone, Debug, PartialEq)]
pub struct Watch {
    pub domain: Domain,
    pub provenance: Provenance,
    trusted: bool,
    problem: Option<Problem>,
    why: Option<String>,
}

impl Watch {
    /// A counter as the start-up probe left it.
    pub fn from_probe(domain: Domain, provenance: Provenance, verdict: &Verdict) -> Watch {
        let (trusted, problem, why) = match verdict {
            Verdict::Good { .. } | Verdict::Unjudged => (true, None, None),
            Verdict::Bad { problem, why } => (false, Some(*problem), Some(why.clone())),
        };
        Watch {
            domain,
            provenance,
            trusted,
            problem,
            why,
        }
    }

    pub fn trusted(&self) -> bool {
        self.trusted
    }

    /// Takes one interval's verdict; returns whether this interval's value is usable
    /// and the counter's trust as sinks see it.
    pub fn observe(&mut self, verdict: &Verdict) -> (bool, CounterTrust) {
        let (usable, change) = match (self.trusted, verdict) {
            (true, Verdict::Good { .. } | Verdict::Unjudged) => (true, None),
            (true, Verdict::Bad { problem, why }) => {
                self.distrust(*problem, why);
                (false, Some(Change::Distrusted))
            }
            (false, Verdict::Good { .. }) => {
                self.trusted = true;
                (false, Some(Change::Recovered))
            }
            (false, Verdict::Bad { problem, why }) => {
                self.distrust(*problem, why);
                (false, None)
            }
            (false, Verdict::Unjudged) => (false, None),
        };
        let note = match change {
            Some(Change::Recovered) => Some(format!(
                "{} counts again; measured from the next interval",
                self.describe()
            )),
            _ if !usable => self
                .why
                .as_ref()
                .map(|why| format!("{}: {why}", self.describe())),
            _ => None,
        };
        if change == Some(Change::Recovered) {
            self.problem = None;
            self.why = None;
        }
        let trust = CounterTrust {
            domain: self.domain.clone(),
            provenance: self.provenance,
            trusted: usable,
            problem: if usable { None } else { self.problem },
            note,
            change,
        };
        (usable, trust)
    }

    /// The trust at start-up, before any interval.
    pub fn current(&self) -> CounterTrust {
        CounterTrust {
            domain: self.domain.clone(),
            provenance: self.provenance,
            trusted: self.trusted,
            problem: self.problem,
            note: self
                .why
                .as_ref()
                .map(|why| format!("{}: {why}", self.describe())),
            change: None,
        }
    }

    fn distrust(&mut self, problem: Problem, why: &str) {
        self.trusted = false;
        self.problem = Some(problem);
        self.why = Some(why.to_string());
    }

    /// `intel-rapl:0 (package 0)`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({} {})",
            self.domain.name,
            self.domain.kind.display_name(),
            self.domain.index
        )
    }
}

#[cfg(test)]
#[path = "trust_tests.rs"]
mod tests;
