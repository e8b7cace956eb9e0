//! The embedded CPU TDP table (CodeCarbon 3.3.2 package data, MIT; see
//! `agent/data/README.md`) and a deterministic matcher from a `/proc/cpuinfo` model
//! name to one of its rows.
use std::collections::HashSet;
use std::sync::OnceLock;

/// `Name,TDP` (watts per package), one CPU model per line; names with commas are
/// double-quoted.
const TABLE_CSV: &str = include_str!("../../data/cpu_tdp.csv");

/// A table row matched to a CPU model name.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TdpMatch {
    /// The row's `Name` column, exactly as in the table.
    pub name: &'static str,
    /// Thermal design power of one package, in watts.
    pub tdp_w: f64,
}

struct Row {
    name: &'static str,
    tdp_w: f64,
    tokens: Vec<String>,
}

impl Row {
    fn to_match(&self) -> TdpMatch {
        TdpMatch {
            name: self.name,
            tdp_w: self.tdp_w,
        }
    }
}

/// The parsed table, in file order; parsed on first use.
fn table() -> &'static [Row] {
    static TABLE: OnceLock<Vec<Row>> = OnceLock::new();
    TABLE.get_or_init(|| TABLE_CSV.lines().skip(1).filter_map(parse_row).collect())
}

/// One `Name,TDP` line. The TDP never holds a comma, so the last comma splits it.
/// Rows without a positive TDP (a few garbled upstream ones, e.g. `27.29.5`) are skipped.
fn parse_row(line: &'static str) -> Option<Row> {
    let (name, tdp) = line.trim_end_matches('\r').rsplit_once(',')?;
    let name = name
        .strip_prefix('"')
        .and_then(|quoted| quoted.strip_suffix('"'))
        .unwrap_or(name);
    let tdp_w: f64 = tdp.trim().parse().ok()?;
    (tdp_w.is_finite() && tdp_w > 0.0 && !name.is_empty()).then(|| Row {
        name,
        tdp_w,
        tokens: normalise(name),
    })
}

/// Lower-cased tokens of a model name without the words that vary between
/// `/proc/cpuinfo` and the table: `(R)`, `(TM)`, `®`, `™`, `CPU`, `Processor`,
/// `N-Core`, a frequency (`@ 2.50GHz` and everything after the `@`, or `3.20GHz`),
/// parentheses and commas.
pub fn normalise(model_name: &str) -> Vec<String> {
    let lower = model_name.to_lowercase();
    // `split` always yields a first piece, possibly empty.
    let before_at = lower.split('@').next().unwrap_or_default();
    let cleaned = before_at
        .replace("(r)", "")
        .replace("(tm)", "")
        .replace(['®', '™'], "");
    cleaned
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '(' | ')'))
        .filter(|token| !token.is_empty() && !is_noise(token))
        .map(str::to_string)
        .collect()
}

fn is_noise(token: &str) -> bool {
    matches!(token, "cpu" | "processor")
        || token.ends_with("-core")
        || token
            .strip_suffix("ghz")
            .is_some_and(|number| number.parse::<f64>().is_ok())
}

/// A model number (`6248`, `i7-8700`, `5950x`): without one a name is only a vendor
/// or family (`AMD EPYC`) and says nothing about the TDP.
fn has_model_number(tokens: &[String]) -> bool {
    tokens
        .iter()
        .any(|token| token.bytes().any(|b| b.is_ascii_digit()))
}

/// The table row for a `/proc/cpuinfo` model name, or None.
///
/// Both sides are [`normalise`]d. An exact match wins (the first such row); else the
/// row whose tokens all appear in the model's, with the most tokens, the first in
/// table order on a tie. A name without a model number never matches. Rows that name
/// no vendor are all AMD or Arm parts (`FX-8350`, `6276`), so they never match a
/// model that says it is Intel.
pub fn lookup(model_name: &str) -> Option<TdpMatch> {
    let model = normalise(model_name);
    if !has_model_number(&model) {
        return None;
    }
    let rows = table();
    if let Some(row) = rows.iter().find(|row| row.tokens == model) {
        return Some(row.to_match());
    }
    let model_tokens: HashSet<&str> = model.iter().map(String::as_str).collect();
    let model_is_intel = model_tokens.contains("intel");
    let mut best: Option<&Row> = None;
    for row in rows {
        let contained = row
            .tokens
            .iter()
            .all(|token| model_tokens.contains(token.as_str()));
        let vendor_ok = !model_is_intel || row.tokens.iter().any(|t| t == "intel");
        let longer = best.is_none_or(|best| row.tokens.len() > best.tokens.len());
        if contained && vendor_ok && longer && has_model_number(&row.tokens) {
            best = Some(row);
        }
    }
    best.map(Row::to_match)
}

/// The row of the CPU named by the first `model name` of `<procfs>/cpuinfo`, if any.
pub fn lookup_cpuinfo(procfs_root: &std::path::Path) -> Option<TdpMatch> {
    let text = std::fs::read_to_string(procfs_root.join("cpuinfo")).ok()?;
    let (_, name) = text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim() == "model name")?;
    lookup(name.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_usable_table_row_parses() {
        assert_eq!(TABLE_CSV.lines().skip(1).count(), 4918);
        assert_eq!(table().len(), 4913);
        assert!(table().iter().all(|row| !row.tokens.is_empty()));
        // The upstream rows skipped: garbled TDPs and a 0 W part.
        let skipped: Vec<&str> = TABLE_CSV
            .lines()
            .skip(1)
            .filter(|line| parse_row(line).is_none())
            .collect();
        let want = [
            "Intel Celeron 1000A,27.29.5",
            "Intel Celeron 1100A,27.29.5",
            "Intel Celeron 1200,29.32.9",
            "Intel Celeron 1400,33.34.8",
            "Intel Quark Microcontroller D1000,0.0",
        ];
        assert_eq!(skipped, want);
    }

    #[test]
    fn quoted_names_keep_their_commas() {
        let row = table()
            .iter()
            .find(|row| row.name.starts_with("Intel EP80579 Integrated, 1066"))
            .unwrap();
        assert_eq!(row.name, "Intel EP80579 Integrated, 1066 MHz");
        assert_eq!(row.tdp_w, 18.0);
    }

    #[test]
    fn normalises_cpuinfo_names() {
        let cases: &[(&str, &[&str])] = &[
            (
                "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz",
                &["intel", "xeon", "gold", "6248"],
            ),
            ("AMD EPYC 7763 64-Core Processor", &["amd", "epyc", "7763"]),
            (
                "Intel(R) Core(TM)2 Duo CPU E8400",
                &["intel", "core2", "duo", "e8400"],
            ),
            ("AMD FX(tm)-8350 Eight-Core Processor", &["amd", "fx-8350"]),
            ("Intel Core i7 3.20GHz", &["intel", "core", "i7"]),
            ("  AMD   Ryzen®  ", &["amd", "ryzen"]),
            ("", &[]),
        ];
        for (name, want) in cases {
            assert_eq!(normalise(name), *want, "{name:?}");
        }
    }

    #[test]
    fn looks_up_real_model_names() {
        let cases: &[(&str, Option<(&str, f64)>)] = &[
            (
                "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz",
                Some(("Intel Xeon Gold 6248", 150.0)),
            ),
            (
                "AMD EPYC 7763 64-Core Processor",
                Some(("AMD EPYC 7763", 280.0)),
            ),
            (
                "Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz",
                Some(("Intel Core i7-8700", 65.0)),
            ),
            (
                "AMD Ryzen 9 5950X 16-Core Processor",
                Some(("AMD Ryzen 9 5950X", 105.0)),
            ),
            (
                "Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz",
                Some(("Intel Xeon E5-2686 v4", 145.0)),
            ),
            (
                "AMD FX(tm)-8350 Eight-Core Processor",
                Some(("AMD FX-8350", 125.0)),
            ),
            // Contained rather than exact.
            (
                "12th Gen Intel(R) Core(TM) i7-12700K",
                Some(("Intel Core i7-12700K", 190.0)),
            ),
            (
                "AMD Ryzen 7 5800H with Radeon Graphics",
                Some(("AMD Ryzen 7 5800H", 45.0)),
            ),
            // Synthetic: `631` and `AMD Athlon 631` are both contained; the longer wins.
            ("AMD Athlon(tm) 631 X4", Some(("AMD Athlon 631", 100.0))),
            // Two rows normalise alike: the first in the table wins.
            (
                "Intel(R) Core(TM) i5-750s CPU @ 2.40GHz",
                Some(("Intel Core i5-750S", 82.0)),
            ),
            (
                "AMD Ryzen 7 PRO 1700X Eight-Core Processor",
                Some(("AMD Ryzen 7 PRO 1700X", 95.0)),
            ),
            // The vendor-less row `631` is an AMD part.
            ("Intel(R) Pentium(R) 4 CPU 631 @ 3.00GHz", None),
            ("AMD EPYC", None),
            ("AMD EPYC Processor", None),
            ("Intel(R) Xeon(R) CPU", None),
            ("Intel Aubrey Isle", None),
            ("QEMU Virtual CPU version 2.5+", None),
            ("", None),
        ];
        for (name, want) in cases {
            let got = lookup(name).map(|m| (m.name, m.tdp_w));
            assert_eq!(got, *want, "{name:?}");
        }
    }
}
