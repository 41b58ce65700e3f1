//! Estimation (SPEC 5): institution indices, domain (district, province, national) indices
//! with design weights and Taylor-linearised standard errors, headline means, ranks and
//! year-on-year deltas.
//!
//! **Invariant:** pure. Everything here is computed from integer sums ([`crate::score`]),
//! the master and the previous year's published values; nothing touches the filesystem, and
//! floating-point sums run in a fixed order (master order), so results are reproducible.

mod domain;
mod institution;
mod rank;

use std::collections::HashMap;

pub use domain::{estimate_domains, DomainEstimate, DomainLevel, Domains, InstMean};
pub use institution::{estimate_institutions, min_required, InstitutionEstimate};
pub use rank::competition_ranks;

use crate::catalogue::{Category, BEHAVIOUR_COUNT, VALUE_COUNT};

/// The estimation parameters of `[estimation]`.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Slovin margin of error.
    pub margin_of_error: f64,
    /// Minimum required respondents floor.
    pub min_floor: i64,
    /// Suppression threshold on respondents.
    pub suppression_min_n: i64,
}

/// The published indices of a unit (all on the 0–100 scale).
#[derive(Debug, Clone, PartialEq)]
pub struct Indices {
    /// `index_<v>` in value order.
    pub values: [f64; VALUE_COUNT],
    /// `index_overall`.
    pub overall: f64,
    /// Behaviour scores in catalogue order.
    pub behaviours: [f64; BEHAVIOUR_COUNT],
    /// `se_overall`, `None` when it cannot be estimated.
    pub se: Option<f64>,
}

impl Indices {
    /// `(ci95_low, ci95_high)`: index ∓ 1.96·se, clipped to [0, 100].
    pub fn ci95(&self) -> Option<(f64, f64)> {
        self.se.map(|se| ((self.overall - 1.96 * se).max(0.0), (self.overall + 1.96 * se).min(100.0)))
    }

    /// `category`.
    pub fn category(&self) -> Category {
        Category::of_index(self.overall)
    }

    /// `category_<v>`.
    pub fn value_categories(&self) -> [Category; VALUE_COUNT] {
        self.values.map(Category::of_index)
    }
}

/// A previous value and the change from it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct YearOnYear {
    /// The previous year's published value.
    pub prev: Option<f64>,
    /// current − previous, when both exist.
    pub delta: Option<f64>,
}

impl YearOnYear {
    /// Joins a current value with the previous one.
    pub fn new(prev: Option<f64>, current: Option<f64>) -> YearOnYear {
        let delta = match (prev, current) {
            (Some(p), Some(c)) => Some(c - p),
            _ => None,
        };
        YearOnYear { prev, delta }
    }
}

/// The previous year's published values, by unit code.
#[derive(Debug, Clone, Default)]
pub struct Previous {
    /// `institution_index.index_overall` by institution code.
    pub institutions: HashMap<String, Option<f64>>,
    /// `(index_overall, inst_mean_overall)` by district code.
    pub districts: HashMap<String, (Option<f64>, Option<f64>)>,
    /// `(index_overall, inst_mean_overall)` by province code.
    pub provinces: HashMap<String, (Option<f64>, Option<f64>)>,
    /// `(index_overall, inst_mean_overall)` by country code.
    pub national: HashMap<String, (Option<f64>, Option<f64>)>,
}
