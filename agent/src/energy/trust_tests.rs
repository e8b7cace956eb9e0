//! The trust checks: judging one reading, and a counter's trust over intervals.
use super::*;

fn reading(uj: u64, read: ReadKind) -> DomainEnergy {
    let domain = Domain {
        kind: DomainKind::Package,
        index: 0,
        name: "intel-rapl:0".to_string(),
    };
    DomainEnergy {
        read,
        ..DomainEnergy::counted(domain, uj, Provenance::RaplPowercap)
    }
}

fn problem(verdict: &Verdict) -> Option<Problem> {
    match verdict {
        Verdict::Bad { problem, .. } => Some(*problem),
        _ => None,
    }
}

#[test]
fn ceilings_follow_the_tdp_with_a_floor() {
    let known = Ceilings::for_tdp(Some(150.0), 2);
    assert_eq!(
        (known.package_w, known.dram_w, known.psys_w),
        (600.0, 600.0, 2400.0)
    );
    assert_eq!(Ceilings::for_tdp(Some(15.0), 1).package_w, 100.0);
    assert_eq!(Ceilings::for_tdp(None, 1).package_w, 2000.0);
    assert_eq!(Ceilings::for_tdp(Some(f64::NAN), 1).package_w, 2000.0);
    assert_eq!(known.of(DomainKind::Core), None);
    assert_eq!(known.of(DomainKind::Psys), Some(2400.0));
}

#[test]
fn judging_one_reading() {
    let half_s = Duration::from_millis(500);
    let wrap = ReadKind::Wrapped {
        prev_uj: 262_143_000_000,
        now_uj: 1_000,
    };
    let not_a_wrap = ReadKind::Wrapped {
        prev_uj: 5_000_000,
        now_uj: 1_000_000,
    };
    // (µJ, read kind, elapsed, wanted problem or None for good, or "unjudged")
    let cases: &[(u64, ReadKind, Duration, Option<Option<Problem>>)] = &[
        (20_000_000, ReadKind::Counted, half_s, Some(None)),
        (0, ReadKind::Counted, half_s, Some(Some(Problem::Frozen))),
        (
            4_000,
            ReadKind::Counted,
            half_s,
            Some(Some(Problem::Frozen)),
        ),
        (6_000, ReadKind::Counted, half_s, Some(None)),
        (
            51_000_000,
            ReadKind::Counted,
            half_s,
            Some(Some(Problem::Implausible)),
        ),
        (50_000_000, ReadKind::Counted, half_s, Some(None)),
        (329_850, wrap, half_s, Some(None)),
        (
            262_139_000_000,
            not_a_wrap,
            half_s,
            Some(Some(Problem::Backwards)),
        ),
        (
            0,
            ReadKind::Backwards {
                prev_uj: 2,
                now_uj: 1,
            },
            half_s,
            Some(Some(Problem::Backwards)),
        ),
        (0, ReadKind::Failed, half_s, Some(Some(Problem::Unreadable))),
        (0, ReadKind::Counted, Duration::from_millis(5), None),
        (
            0,
            ReadKind::Failed,
            Duration::from_millis(5),
            Some(Some(Problem::Unreadable)),
        ),
    ];
    for (uj, read, elapsed, want) in cases {
        let verdict = judge(&reading(*uj, *read), *elapsed, 100.0);
        match want {
            None => assert_eq!(verdict, Verdict::Unjudged, "{uj} {read:?}"),
            Some(want) => assert_eq!(problem(&verdict), *want, "{uj} {read:?}: {verdict:?}"),
        }
    }
    let Verdict::Bad { why, .. } = judge(&reading(262_139_000_000, not_a_wrap), half_s, 100.0)
    else {
        panic!("not a wrap")
    };
    assert_eq!(
        why,
        "went backwards (5000000 -> 1000000 uJ); read as a wrap that would be 524278 W in \
         0.50 s, above the 100 W ceiling: not a wrap"
    );
    let Verdict::Good { watts } = judge(&reading(20_000_000, ReadKind::Counted), half_s, 100.0)
    else {
        panic!("good")
    };
    assert_eq!(watts, 40.0);
}

#[test]
fn a_counter_that_freezes_and_recovers() {
    let good = Verdict::Good { watts: 40.0 };
    let frozen = Verdict::Bad {
        problem: Problem::Frozen,
        why: "did not advance in 0.50 s".into(),
    };
    let mut watch = Watch::from_probe(
        reading(0, ReadKind::Counted).domain,
        Provenance::RaplPowercap,
        &good,
    );
    assert!(watch.trusted());
    // (verdict, usable, change, trusted after)
    let steps = [
        (&good, true, None, true),
        (&frozen, false, Some(Change::Distrusted), false),
        (&frozen, false, None, false),
        (&Verdict::Unjudged, false, None, false),
        (&good, false, Some(Change::Recovered), true),
        (&good, true, None, true),
        (&Verdict::Unjudged, true, None, true),
    ];
    for (step, (verdict, usable, change, after)) in steps.into_iter().enumerate() {
        let (got, trust) = watch.observe(verdict);
        assert_eq!(
            (got, trust.change, watch.trusted()),
            (usable, change, after),
            "step {step}"
        );
        assert_eq!(trust.trusted, usable, "step {step}");
        match (usable, change) {
            (true, _) => assert_eq!((trust.note, trust.problem), (None, None), "step {step}"),
            (false, Some(Change::Recovered)) => assert_eq!(
                trust.note.as_deref(),
                Some("intel-rapl:0 (package 0) counts again; measured from the next interval")
            ),
            (false, _) => {
                assert_eq!(trust.problem, Some(Problem::Frozen));
                assert_eq!(
                    trust.note.as_deref(),
                    Some("intel-rapl:0 (package 0): did not advance in 0.50 s")
                );
            }
        }
    }
}

#[test]
fn a_counter_rejected_at_start_earns_trust_later() {
    let flat = Verdict::Bad {
        problem: Problem::Frozen,
        why: "did not advance in 0.10 s".into(),
    };
    let mut watch = Watch::from_probe(
        reading(0, ReadKind::Counted).domain,
        Provenance::PerfPower,
        &flat,
    );
    let start = watch.current();
    assert!(!start.trusted);
    assert_eq!(start.problem, Some(Problem::Frozen));
    assert!(!watch.observe(&flat).0);
    assert!(!watch.observe(&Verdict::Good { watts: 5.0 }).0);
    assert!(watch.observe(&Verdict::Good { watts: 5.0 }).0);
    assert_eq!(Problem::Backwards.label(), "backwards");
    assert_eq!(Change::Recovered.label(), "recovered");
}
