//! Domain estimates (SPEC 5.2): districts, provinces and the nation, from the respondents of
//! eligible institutions, with design weights w = N_h / n_h (stratified by institution).
//!
//! The standard error is the Taylor linearisation of the ratio estimator with institutions
//! as strata and a finite population correction. Per institution h it needs only the
//! domain's respondent count m, Σs and Σs² within the domain, and n_h:
//! Σ_{r∈h} (z_r − z̄_h)² = (w_h/W)² · [SS_within + m·(c − R)²·(1 − m/n_h)], with c the
//! domain mean of s within h — a sum of non-negative terms, so no cancellation.

use std::collections::BTreeMap;

use super::institution::InstitutionEstimate;
use super::{Indices, Params, Previous, YearOnYear};
use crate::catalogue::{BEHAVIOUR_COUNT, VALUE_COUNT};
use crate::estimate::rank::competition_ranks;
use crate::reference::{Master, Regions};
use crate::score::{InstitutionSums, Scale, Sums};

/// The three domain levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainLevel {
    /// Regency or city of work.
    District,
    /// Province of work.
    Province,
    /// The whole country.
    National,
}

/// Unweighted mean over seated institutions (the official headline figure).
#[derive(Debug, Clone, PartialEq)]
pub struct InstMean {
    /// `inst_mean_<v>`.
    pub values: [f64; VALUE_COUNT],
    /// `inst_mean_overall`.
    pub overall: f64,
}

/// One row of a domain table, before it becomes columns.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainEstimate {
    /// District code, province code, or `ID`.
    pub code: String,
    /// Respondents of eligible institutions working in the domain.
    pub n_respondents: i64,
    /// Eligible institutions with respondents in the domain.
    pub n_institutions: i64,
    /// Σ w.
    pub population_estimate: f64,
    /// n_respondents < suppression_min_n.
    pub suppressed: bool,
    /// Weighted indices; `None` when suppressed.
    pub indices: Option<Indices>,
    /// Eligible, unsuppressed institutions seated in the domain.
    pub n_institutions_seated: i64,
    /// Their unweighted mean; `None` when there is none or the row is suppressed.
    pub inst_mean: Option<InstMean>,
    /// Rank among the level's rows.
    pub rank_national: Option<i64>,
    /// Districts: rank within the province.
    pub rank_in_province: Option<i64>,
    /// Year on year of `index_overall`.
    pub yoy: YearOnYear,
    /// Year on year of `inst_mean_overall`.
    pub inst_mean_yoy: YearOnYear,
}

/// Every domain row, each level sorted by code.
#[derive(Debug, Clone, PartialEq)]
pub struct Domains {
    /// `district_index`.
    pub districts: Vec<DomainEstimate>,
    /// `province_index`.
    pub provinces: Vec<DomainEstimate>,
    /// `national_index` (one row).
    pub national: DomainEstimate,
}

/// An eligible institution's respondents in one domain.
struct Part<'a> {
    sums: Sums,
    /// N_h.
    headcount: f64,
    /// All of h's respondents, n_h.
    total: &'a Sums,
}

fn weighted_indices(parts: &[Part<'_>], scale: &Scale) -> (f64, Indices) {
    let mut w_total = 0.0;
    let mut s_total = 0.0;
    let mut values = [0.0; VALUE_COUNT];
    let mut behaviours = [0.0; BEHAVIOUR_COUNT];
    for p in parts {
        let w = p.headcount / p.total.n as f64;
        w_total += w * p.sums.n as f64;
        s_total += w * p.sums.overall as f64;
        for (acc, x) in values.iter_mut().zip(p.sums.values) {
            *acc += w * x as f64;
        }
        for (acc, y) in behaviours.iter_mut().zip(p.sums.behaviours) {
            *acc += w * y as f64;
        }
    }
    let ratio = s_total / (w_total * scale.overall);
    let mut variance = 0.0;
    for p in parts {
        let n_h = p.total.n as f64;
        if p.total.n < 2 {
            continue; // a lonely unit is taken with certainty: no variance.
        }
        let f = (n_h / p.headcount).min(1.0);
        let m = p.sums.n as f64;
        let a = (p.headcount / n_h) / w_total;
        let c = p.sums.overall as f64 / (m * scale.overall);
        let q = p.sums.within_sum_of_squares(scale) + m * (c - ratio) * (c - ratio) * (1.0 - m / n_h);
        variance += (1.0 - f) * n_h / (n_h - 1.0) * a * a * q;
    }
    let indices = Indices {
        values: values.map(|x| 100.0 * x / (w_total * scale.value)),
        overall: 100.0 * ratio,
        behaviours: behaviours.map(|y| 100.0 * y / (w_total * scale.behaviour)),
        se: Some(100.0 * variance.sqrt()),
    };
    (w_total, indices)
}

fn inst_mean(members: &[&InstitutionEstimate]) -> Option<InstMean> {
    let published: Vec<&Indices> = members.iter().filter_map(|r| r.indices.as_ref()).collect();
    if published.is_empty() {
        return None;
    }
    let k = published.len() as f64;
    Some(InstMean {
        values: std::array::from_fn(|v| published.iter().map(|i| i.values[v]).sum::<f64>() / k),
        overall: published.iter().map(|i| i.overall).sum::<f64>() / k,
    })
}

fn build(
    code: String,
    parts: &[Part<'_>],
    seated: &[&InstitutionEstimate],
    scale: &Scale,
    params: &Params,
    previous: Option<&(Option<f64>, Option<f64>)>,
) -> DomainEstimate {
    let n_respondents: u64 = parts.iter().map(|p| p.sums.n).sum();
    let suppressed = (n_respondents as i64) < params.suppression_min_n;
    let (population_estimate, indices) = if n_respondents > 0 {
        let (w, idx) = weighted_indices(parts, scale);
        (w, Some(idx))
    } else {
        (0.0, None)
    };
    let indices = if suppressed { None } else { indices };
    let seated: Vec<&InstitutionEstimate> =
        seated.iter().copied().filter(|r| r.eligible && !r.suppressed && r.indices.is_some()).collect();
    let inst_mean = if suppressed { None } else { inst_mean(&seated) };
    let (prev_index, prev_mean) = previous.copied().unwrap_or((None, None));
    DomainEstimate {
        code,
        n_respondents: n_respondents as i64,
        n_institutions: parts.iter().filter(|p| p.sums.n > 0).count() as i64,
        population_estimate,
        suppressed,
        yoy: YearOnYear::new(prev_index, indices.as_ref().map(|i| i.overall)),
        inst_mean_yoy: YearOnYear::new(prev_mean, inst_mean.as_ref().map(|m| m.overall)),
        indices,
        n_institutions_seated: seated.len() as i64,
        inst_mean,
        rank_national: None,
        rank_in_province: None,
    }
}

/// Estimates districts, provinces and the nation.
pub fn estimate_domains(
    master: &Master,
    regions: &Regions,
    sums: &[InstitutionSums],
    institutions: &[InstitutionEstimate],
    scale: &Scale,
    params: &Params,
    previous: &Previous,
) -> Domains {
    // Parts per domain, in master order of institutions.
    let mut by_district: BTreeMap<&str, Vec<Part>> = BTreeMap::new();
    let mut by_province: BTreeMap<&str, Vec<Part>> = BTreeMap::new();
    let mut national: Vec<Part> = Vec::new();
    for (h, (inst, s)) in master.institutions.iter().zip(sums).enumerate() {
        if !institutions[h].eligible || s.total.n == 0 {
            continue;
        }
        let headcount = inst.headcount as f64;
        let mut provinces: BTreeMap<&str, Sums> = BTreeMap::new();
        for (d, cell) in &s.cells {
            let district = &regions.districts[*d as usize];
            by_district.entry(district.code.as_str()).or_default().push(Part {
                sums: *cell,
                headcount,
                total: &s.total,
            });
            provinces.entry(district.province_code.as_str()).or_default().merge(cell);
        }
        for (p, cell) in provinces {
            by_province.entry(p).or_default().push(Part { sums: cell, headcount, total: &s.total });
        }
        national.push(Part { sums: s.total, headcount, total: &s.total });
    }

    let seated_in = |pred: &dyn Fn(usize) -> bool| -> Vec<&InstitutionEstimate> {
        institutions.iter().filter(|r| pred(r.institution)).collect()
    };

    let mut districts: Vec<DomainEstimate> = by_district
        .iter()
        .map(|(code, parts)| {
            let seated = seated_in(&|h| master.institutions[h].district_code.as_deref() == Some(*code));
            build(code.to_string(), parts, &seated, scale, params, previous.districts.get(*code))
        })
        .collect();
    let mut provinces: Vec<DomainEstimate> = by_province
        .iter()
        .map(|(code, parts)| {
            let seated = seated_in(&|h| master.institutions[h].province_code == *code);
            build(code.to_string(), parts, &seated, scale, params, previous.provinces.get(*code))
        })
        .collect();
    let all = seated_in(&|_| true);
    let national = build("ID".to_string(), &national, &all, scale, params, previous.national.get("ID"));

    let overall = |rows: &[DomainEstimate]| -> Vec<Option<f64>> {
        rows.iter().map(|r| r.indices.as_ref().map(|i| i.overall)).collect()
    };
    let ranks = competition_ranks(&overall(&districts));
    for (row, rank) in districts.iter_mut().zip(ranks) {
        row.rank_national = rank;
    }
    let ranks = competition_ranks(&overall(&provinces));
    for (row, rank) in provinces.iter_mut().zip(ranks) {
        row.rank_national = rank;
    }
    let mut start = 0;
    while start < districts.len() {
        let province = districts[start].code[..2].to_string();
        let end = start + districts[start..].iter().take_while(|d| d.code.starts_with(&province)).count();
        let ranks = competition_ranks(&overall(&districts[start..end]));
        for (row, rank) in districts[start..end].iter_mut().zip(ranks) {
            row.rank_in_province = rank;
        }
        start = end;
    }
    Domains { districts, provinces, national }
}

#[cfg(test)]
mod tests;
