//! The BerAKHLAK catalogue: seven core values, three behaviours each (SE MenPANRB 20/2021).
//!
//! Everything that iterates over values or behaviours uses the order defined here, which is
//! also the column order of the output tables and the row order of `behaviour_scores`.

/// Number of core values.
pub const VALUE_COUNT: usize = 7;
/// Number of behaviours (three per value).
pub const BEHAVIOUR_COUNT: usize = 21;

/// Value codes, in the spec's column order.
pub const VALUE_CODES: [&str; VALUE_COUNT] = ["bp", "ak", "ko", "ha", "lo", "ad", "kl"];

/// Value names, for documentation and display.
pub const VALUE_NAMES: [&str; VALUE_COUNT] =
    ["Berorientasi Pelayanan", "Akuntabel", "Kompeten", "Harmonis", "Loyal", "Adaptif", "Kolaboratif"];

/// Behaviour codes in catalogue order: behaviour `b` belongs to value `b / 3`.
pub const BEHAVIOUR_CODES: [&str; BEHAVIOUR_COUNT] = [
    "BP1", "BP2", "BP3", "AK1", "AK2", "AK3", "KO1", "KO2", "KO3", "HA1", "HA2", "HA3", "LO1", "LO2", "LO3", "AD1",
    "AD2", "AD3", "KL1", "KL2", "KL3",
];

/// The value a behaviour (by catalogue index) belongs to.
pub const fn value_of_behaviour(behaviour: usize) -> usize {
    behaviour / 3
}

/// Catalogue index of a behaviour code, which must already be upper-case.
pub fn behaviour_index(code: &str) -> Option<usize> {
    BEHAVIOUR_CODES.iter().position(|c| *c == code)
}

/// Health category of an index, applied to the index rounded to one decimal (SPEC 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    /// Sehat: 75.0 – 100.
    A,
    /// Cukup Sehat: 50.0 – 74.9.
    B,
    /// Tidak Sehat: 25.0 – 49.9.
    C,
    /// Sangat Tidak Sehat: 0 – 24.9.
    D,
}

impl Category {
    /// Category of an index on the 0–100 scale.
    pub fn of_index(index: f64) -> Category {
        let rounded = round_to(index, 1);
        if rounded >= 75.0 {
            Category::A
        } else if rounded >= 50.0 {
            Category::B
        } else if rounded >= 25.0 {
            Category::C
        } else {
            Category::D
        }
    }

    /// The letter stored in the tables.
    pub fn letter(self) -> &'static str {
        match self {
            Category::A => "A",
            Category::B => "B",
            Category::C => "C",
            Category::D => "D",
        }
    }

    /// The label of the official reports.
    pub fn label(self) -> &'static str {
        match self {
            Category::A => "Sehat",
            Category::B => "Cukup Sehat",
            Category::C => "Tidak Sehat",
            Category::D => "Sangat Tidak Sehat",
        }
    }
}

/// Rounds exactly as the spec prescribes, so every implementation agrees:
/// `(x * 10^k).round() / 10^k` in binary64, half away from zero.
pub fn round_to(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviours_map_to_their_values() {
        for (b, code) in BEHAVIOUR_CODES.iter().enumerate() {
            let value = VALUE_CODES[value_of_behaviour(b)];
            assert_eq!(code[..2].to_lowercase(), value, "{code}");
        }
        assert_eq!(behaviour_index("AD2"), Some(16));
        assert_eq!(behaviour_index("ad2"), None);
    }

    #[test]
    fn categories_of_published_figures() {
        // SPEC 9: a ministry 2022 (58.5 overall B, Adaptif 43.5 C), national 2022, Kota Pasuruan.
        assert_eq!(Category::of_index(58.5), Category::B);
        assert_eq!(Category::of_index(43.5), Category::C);
        assert_eq!(Category::of_index(60.9), Category::B);
        assert_eq!(Category::of_index(38.9), Category::C);
        assert_eq!(Category::of_index(39.8), Category::C);
        assert_eq!(Category::of_index(74.1), Category::B);
    }

    #[test]
    fn category_boundaries_use_one_decimal_rounding() {
        assert_eq!(Category::of_index(74.95), Category::A);
        assert_eq!(Category::of_index(74.94999), Category::B);
        assert_eq!(Category::of_index(49.95), Category::B);
        assert_eq!(Category::of_index(24.95), Category::C);
        assert_eq!(Category::of_index(24.9), Category::D);
        assert_eq!(Category::of_index(0.0), Category::D);
        assert_eq!(Category::of_index(100.0), Category::A);
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(round_to(0.125, 2), 0.13);
        assert_eq!(round_to(2.5, 0), 3.0);
        assert_eq!(round_to(-2.5, 0), -3.0);
        assert_eq!(round_to(61.149999, 1), 61.1);
    }
}
