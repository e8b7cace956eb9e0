//! Everyday equivalents of a mass of CO₂, to make grams readable: car kilometres,
//! smartphone charges, flight hours and tree-years.
//!
//! Seed figures (docs/carbon.md): a car emits 120 g/km, a smartphone charge 8 g, a
//! flight 90 kg per passenger-hour, and a tree absorbs 21 kg a year.
use serde::{Deserialize, Serialize};

pub const CAR_G_PER_KM: f64 = 120.0;
pub const SMARTPHONE_CHARGE_G: f64 = 8.0;
pub const FLIGHT_G_PER_HOUR: f64 = 90_000.0;
pub const TREE_ABSORBS_G_PER_YEAR: f64 = 21_000.0;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Equivalents {
    pub car_km: f64,
    pub smartphone_charges: f64,
    pub flight_hours: f64,
    /// Years one tree needs to absorb the CO₂.
    pub tree_years: f64,
}

impl Equivalents {
    pub fn from_grams(gco2: f64) -> Equivalents {
        Equivalents {
            car_km: gco2 / CAR_G_PER_KM,
            smartphone_charges: gco2 / SMARTPHONE_CHARGE_G,
            flight_hours: gco2 / FLIGHT_G_PER_HOUR,
            tree_years: gco2 / TREE_ABSORBS_G_PER_YEAR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_grams_table() {
        // (grams, car km, phone charges, flight hours, tree-years), by hand.
        let cases = [
            (0.0, 0.0, 0.0, 0.0, 0.0),
            (
                8.0,
                0.066_666_666_666_666_67,
                1.0,
                0.000_088_888_888_888_888_89,
                0.000_380_952_380_952_381,
            ),
            (
                120.0,
                1.0,
                15.0,
                0.001_333_333_333_333_333_3,
                0.005_714_285_714_285_714,
            ),
            (
                1_000.0,
                8.333_333_333_333_334,
                125.0,
                0.011_111_111_111_111_11,
                0.047_619_047_619_047_62,
            ),
            (21_000.0, 175.0, 2_625.0, 0.233_333_333_333_333_33, 1.0),
            (90_000.0, 750.0, 11_250.0, 1.0, 4.285_714_285_714_286),
        ];
        for (g, car_km, phone, flight_h, tree_y) in cases {
            let e = Equivalents::from_grams(g);
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1.0);
            assert!(close(e.car_km, car_km), "{g} g: car {}", e.car_km);
            assert!(
                close(e.smartphone_charges, phone),
                "{g} g: phone {}",
                e.smartphone_charges
            );
            assert!(
                close(e.flight_hours, flight_h),
                "{g} g: flight {}",
                e.flight_hours
            );
            assert!(close(e.tree_years, tree_y), "{g} g: tree {}", e.tree_years);
        }
    }
}
