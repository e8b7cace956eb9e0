//! Checking a region code: the table's row for it, or an error that names the code
//! and the closest codes the table knows, so a typo is caught instead of silently
//! pricing everything at the world average.
use std::cmp::Reverse;

use super::table::{self, TableEntry, normalise_code};

/// How many suggestions an unknown code gets.
const SUGGESTIONS: usize = 3;

/// A region code that is in no table.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("unknown region {code:?} (closest known: {})", closest.join(", "))]
pub struct UnknownRegion {
    pub code: String,
    /// Canonical codes, closest first.
    pub closest: Vec<&'static str>,
}

/// The table's row for `code` (any spelling `table::lookup` accepts).
pub fn resolve_region(code: &str) -> Result<&'static TableEntry, UnknownRegion> {
    table::lookup(code).ok_or_else(|| UnknownRegion {
        code: code.to_string(),
        closest: closest_codes(code, SUGGESTIONS),
    })
}

/// The `count` rows whose code or alias is the fewest edits away from `code`
/// (case, spaces and `_` ignored); for `aws:…`-style codes, rows of that provider.
pub fn closest_codes(code: &str, count: usize) -> Vec<&'static str> {
    let key = normalise_code(code);
    let provider = key.split_once(':').map(|(p, _)| format!("{p}:"));
    let same_provider = |entry: &TableEntry| {
        provider
            .as_ref()
            .is_none_or(|p| normalise_code(entry.code).starts_with(p.as_str()))
    };
    let candidates: Vec<&TableEntry> = if table::entries().iter().any(same_provider) {
        table::entries()
            .iter()
            .filter(|e| same_provider(e))
            .collect()
    } else {
        table::entries().iter().collect()
    };
    // Fewest edits first; of equals, the longest common start (`US-CAL` → `US-CA`
    // before `US-AL`), then table order.
    let mut scored: Vec<(usize, Reverse<usize>, usize, &'static str)> = candidates
        .into_iter()
        .enumerate()
        .map(|(order, entry)| {
            let (distance, prefix) = std::iter::once(entry.code)
                .chain(entry.aliases())
                .map(|name| {
                    let name = normalise_code(name);
                    (
                        edit_distance(&key, &name),
                        Reverse(common_prefix(&key, &name)),
                    )
                })
                .min()
                .unwrap_or((usize::MAX, Reverse(0)));
            (distance, prefix, order, entry.code)
        })
        .collect();
    scored.sort_unstable();
    scored.into_iter().take(count).map(|(.., c)| c).collect()
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_table() {
        for (a, b, d) in [
            ("", "", 0),
            ("FRA", "FRA", 0),
            ("FRA", "FR", 1),
            ("FRNACE", "FRANCE", 2),
            ("kitten", "sitting", 3),
            ("", "abc", 3),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} {b}");
        }
    }

    #[test]
    fn unknown_codes_name_the_closest() {
        let cases: &[(&str, &[&str])] = &[
            ("Frnace", &["FRA"]),
            ("US-CAL", &["US-CA"]),
            ("aws:us-east-9", &["aws:us-east-1", "aws:us-east-2"]),
            ("azure:west-europe", &["azure:westeurope"]),
            ("gcp:europe-west99", &["gcp:europe-west9"]),
        ];
        for &(code, first) in cases {
            let err = resolve_region(code).unwrap_err();
            assert_eq!(err.code, code);
            assert_eq!(err.closest.len(), SUGGESTIONS, "{code}");
            assert_eq!(&err.closest[..first.len()], first, "{code}: {err}");
        }
        let err = resolve_region("XX-NOPE").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unknown region \"XX-NOPE\" (closest known: "),
            "{err}"
        );
        assert_eq!(resolve_region("fr").map(|e| e.code), Ok("FRA"));
    }
}
