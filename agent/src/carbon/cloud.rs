//! Cloud regions of AWS and Azure, each mapped to the grid zone of its location
//! (`agent/data/carbon/cloud_region_zones.tsv`, from the providers' published region
//! lists). They resolve to that zone's row of the intensity table; Google Cloud
//! regions are rows of the table themselves (Google publishes a value per region).
use super::table::TableError;

/// The mapping, compiled in.
pub const ZONES_TSV: &str = include_str!("../../data/carbon/cloud_region_zones.tsv");

/// One cloud region and the table code of the grid it draws from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CloudRegion {
    /// `aws:us-east-1`, `azure:westeurope`.
    pub code: &'static str,
    /// The provider's name and place: `AWS US East (N. Virginia)`.
    pub name: &'static str,
    /// A code of the intensity table: `US-VA`, `NLD`, `SE3`…
    pub zone: &'static str,
}

/// Parses the TSV: `#` comments, one header line, then `code name zone`.
pub fn parse(text: &'static str) -> Result<Vec<CloudRegion>, TableError> {
    let error = |line: usize, message: String| TableError {
        file: "cloud_region_zones.tsv",
        line,
        message,
    };
    let rows = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .skip(1);
    let mut regions = Vec::new();
    for (i, line) in rows {
        let fields: Vec<&'static str> = line.split('\t').collect();
        let [code, name, zone] = fields[..] else {
            let got = fields.len();
            return Err(error(
                i + 1,
                format!("expected 3 tab-separated fields, got {got}"),
            ));
        };
        if !(code.starts_with("aws:") || code.starts_with("azure:")) {
            return Err(error(i + 1, format!("{code:?} is not aws:… or azure:…")));
        }
        regions.push(CloudRegion { code, name, zone });
    }
    Ok(regions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carbon::table::{self, normalise_code};
    use std::collections::HashSet;

    /// Every region of the file: found by its code, priced at its zone's value, its
    /// zone a place (not the world, not another cloud region), no code twice.
    #[test]
    fn every_cloud_region_resolves_to_its_zone() {
        let regions = parse(ZONES_TSV).unwrap();
        assert_eq!(
            regions
                .iter()
                .filter(|r| r.code.starts_with("aws:"))
                .count(),
            38
        );
        assert_eq!(
            regions
                .iter()
                .filter(|r| r.code.starts_with("azure:"))
                .count(),
            58
        );
        let mut seen = HashSet::new();
        for region in &regions {
            assert!(
                seen.insert(normalise_code(region.code)),
                "{} twice",
                region.code
            );
            let zone = table::lookup(region.zone).unwrap_or_else(|| {
                panic!("{}: zone {} not in the table", region.code, region.zone)
            });
            assert_eq!(
                zone.code, region.zone,
                "{}: use the canonical code",
                region.code
            );
            assert!(
                zone.zone.is_none() && !zone.code.contains(':'),
                "{}",
                region.code
            );
            assert_ne!(zone.code, table::WORLD_CODE, "{}", region.code);
            let entry = table::lookup(region.code).unwrap_or_else(|| panic!("{}", region.code));
            assert_eq!(entry.code, region.code);
            assert_eq!(entry.name, region.name);
            assert_eq!(entry.zone, Some(region.zone));
            assert_eq!(entry.g_per_kwh, zone.g_per_kwh, "{}", region.code);
            assert_eq!((entry.year, entry.dataset), (zone.year, zone.dataset));
        }
    }

    #[test]
    fn well_known_regions() {
        let cases = [
            ("aws:us-east-1", "US-VA"),
            ("AWS:EU-WEST-3", "FRA"),
            ("aws:eu-north-1", "SE3"),
            ("aws:ap-southeast-2", "AU-NSW"),
            ("aws:ca-central-1", "CA-QC"),
            ("azure:westeurope", "NLD"),
            ("azure:northeurope", "IRL"),
            ("Azure:EastUS", "US-VA"),
            ("azure:westus3", "US-AZ"),
            ("azure:norwaywest", "NO2"),
        ];
        for (code, zone) in cases {
            assert_eq!(
                table::lookup(code).and_then(|e| e.zone),
                Some(zone),
                "{code}"
            );
        }
        for unknown in [
            "aws:us-east-9",
            "azure:",
            "aws:westeurope",
            "oci:us-ashburn-1",
        ] {
            assert_eq!(table::lookup(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn bad_lines_name_the_line() {
        let cases: &[(&'static str, usize)] =
            &[("h\naws:x\tname\n", 2), ("# c\nh\ngcp:x\tname\tFRA\n", 3)];
        for &(text, line) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(
                (err.file, err.line),
                ("cloud_region_zones.tsv", line),
                "{text:?}"
            );
        }
    }
}
