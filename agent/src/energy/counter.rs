//! Energy-counter wraparound: the one place a delta between two raw counter readings
//! is computed, for RAPL powercap zones and perf `power` counters alike.

/// Why a delta between two counter readings could not be computed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CounterError {
    /// The counter went down and its range is unknown, so the wrap cannot be undone.
    #[error("counter went backwards ({prev_uj} -> {now_uj} uJ) and its range is unknown")]
    BackwardsWithoutRange { prev_uj: u64, now_uj: u64 },
    /// The previous value lies outside the range the counter claims to have.
    #[error("counter value {prev_uj} uJ exceeds its range {max_range_uj} uJ")]
    PrevAboveRange { prev_uj: u64, max_range_uj: u64 },
}

/// Energy between two readings of a counter that wraps at `max_range_uj`.
///
/// - `now_uj >= prev_uj`: `now_uj - prev_uj`.
/// - `now_uj < prev_uj` with a range: the counter wrapped once, and the delta is
///   `(max_range_uj - prev_uj) + now_uj`. This is the convention node_exporter and
///   Kepler use with `max_energy_range_uj`; strictly the counter runs over
///   `0..=max_range_uj`, so it undercounts one µJ per wrap, which is below the
///   counter's resolution. A `prev_uj` above `max_range_uj` is an error.
/// - `now_uj < prev_uj` without a range: [`CounterError::BackwardsWithoutRange`]; the
///   caller reports it in the domain's note and counts 0 for that interval.
///
/// Two wraps between readings cannot be told apart from one: poll faster than the
/// counter's wrap period (a typical 262 kJ RAPL range lasts about 22 minutes at 200 W).
pub fn counter_delta_uj(
    prev_uj: u64,
    now_uj: u64,
    max_range_uj: Option<u64>,
) -> Result<u64, CounterError> {
    if now_uj >= prev_uj {
        return Ok(now_uj - prev_uj);
    }
    let Some(max_range_uj) = max_range_uj else {
        return Err(CounterError::BackwardsWithoutRange { prev_uj, now_uj });
    };
    if prev_uj > max_range_uj {
        return Err(CounterError::PrevAboveRange {
            prev_uj,
            max_range_uj,
        });
    }
    // No overflow: now_uj < prev_uj <= max_range_uj, so the sum is below max_range_uj.
    Ok((max_range_uj - prev_uj) + now_uj)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// prev, now, range, wanted delta.
    type DeltaCase = (u64, u64, Option<u64>, Result<u64, CounterError>);

    #[test]
    fn deltas_and_wraps() {
        const RAPL_MAX_UJ: u64 = 262_143_328_850;
        let cases: &[DeltaCase] = &[
            (0, 0, None, Ok(0)),
            (5, 5, Some(10), Ok(0)),
            (1_000, 1_500, None, Ok(500)),
            (1_000, 1_500, Some(RAPL_MAX_UJ), Ok(500)),
            (262_143_000_000, 1_000, Some(RAPL_MAX_UJ), Ok(329_850)),
            (RAPL_MAX_UJ, 0, Some(RAPL_MAX_UJ), Ok(0)),
            (RAPL_MAX_UJ, 7, Some(RAPL_MAX_UJ), Ok(7)),
            (1, 0, Some(RAPL_MAX_UJ), Ok(RAPL_MAX_UJ - 1)),
            // The range only matters for a wrap; a forward step beyond it still counts.
            (10, 20, Some(15), Ok(10)),
            (0, u64::MAX, None, Ok(u64::MAX)),
            (u64::MAX, u64::MAX, None, Ok(0)),
            (u64::MAX, 0, Some(u64::MAX), Ok(0)),
            (u64::MAX, u64::MAX - 1, Some(u64::MAX), Ok(u64::MAX - 1)),
            (1, 0, Some(u64::MAX), Ok(u64::MAX - 1)),
            (
                2_000,
                1_000,
                None,
                Err(CounterError::BackwardsWithoutRange {
                    prev_uj: 2_000,
                    now_uj: 1_000,
                }),
            ),
            (
                u64::MAX,
                0,
                None,
                Err(CounterError::BackwardsWithoutRange {
                    prev_uj: u64::MAX,
                    now_uj: 0,
                }),
            ),
            (
                300,
                100,
                Some(200),
                Err(CounterError::PrevAboveRange {
                    prev_uj: 300,
                    max_range_uj: 200,
                }),
            ),
            (
                u64::MAX,
                1,
                Some(0),
                Err(CounterError::PrevAboveRange {
                    prev_uj: u64::MAX,
                    max_range_uj: 0,
                }),
            ),
        ];
        for (prev_uj, now_uj, max_range_uj, want) in cases {
            assert_eq!(
                counter_delta_uj(*prev_uj, *now_uj, *max_range_uj),
                *want,
                "prev {prev_uj} now {now_uj} max {max_range_uj:?}"
            );
        }
    }

    #[test]
    fn errors_say_what_happened() {
        let backwards = counter_delta_uj(2, 1, None).unwrap_err().to_string();
        assert_eq!(
            backwards,
            "counter went backwards (2 -> 1 uJ) and its range is unknown"
        );
        let above = counter_delta_uj(3, 1, Some(2)).unwrap_err().to_string();
        assert_eq!(above, "counter value 3 uJ exceeds its range 2 uJ");
    }
}
