//! Institution estimates (SPEC 5.1).

use super::{Indices, Params, Previous, YearOnYear};
use crate::estimate::rank::competition_ranks;
use crate::reference::Master;
use crate::score::{InstitutionSums, Scale, Sums};

/// One row of `institution_index`, before it becomes columns.
#[derive(Debug, Clone, PartialEq)]
pub struct InstitutionEstimate {
    /// Index into the master.
    pub institution: usize,
    /// Accepted respondents (n).
    pub n: i64,
    /// n / N.
    pub response_rate: f64,
    /// n > N.
    pub headcount_exceeded: bool,
    /// Slovin minimum with floor, capped at N.
    pub min_required: i64,
    /// n ≥ min_required.
    pub eligible: bool,
    /// n < suppression_min_n.
    pub suppressed: bool,
    /// Indices; `None` when suppressed or without respondents.
    pub indices: Option<Indices>,
    /// Rank among eligible institutions.
    pub rank_national: Option<i64>,
    /// Rank among eligible institutions of the same type.
    pub rank_in_type: Option<i64>,
    /// Year on year of `index_overall`.
    pub yoy: YearOnYear,
}

/// `min(N, max(min_floor, ceil(N / (1 + N·e²))))`.
pub fn min_required(headcount: i64, params: &Params) -> i64 {
    let n = headcount as f64;
    let e = params.margin_of_error;
    let slovin = (n / (1.0 + n * (e * e))).ceil() as i64;
    headcount.min(params.min_floor.max(slovin))
}

/// Indices of a set of respondents weighted equally (an institution).
pub(crate) fn unweighted_indices(sums: &Sums, headcount: i64, scale: &Scale) -> Indices {
    let n = sums.n as f64;
    let values = std::array::from_fn(|v| 100.0 * sums.values[v] as f64 / (n * scale.value));
    let behaviours = std::array::from_fn(|b| 100.0 * sums.behaviours[b] as f64 / (n * scale.behaviour));
    let overall = 100.0 * sums.overall as f64 / (n * scale.overall);
    let se = (sums.n >= 2).then(|| {
        let f = (n / headcount as f64).min(1.0);
        let s2 = sums.within_sum_of_squares(scale) / (n - 1.0);
        100.0 * ((1.0 - f) * s2 / n).sqrt()
    });
    Indices { values, overall, behaviours, se }
}

/// Estimates every institution of the master (also those without respondents).
pub fn estimate_institutions(
    master: &Master,
    sums: &[InstitutionSums],
    scale: &Scale,
    params: &Params,
    previous: &Previous,
) -> Vec<InstitutionEstimate> {
    let mut rows: Vec<InstitutionEstimate> = master
        .institutions
        .iter()
        .zip(sums)
        .enumerate()
        .map(|(i, (inst, s))| {
            let n = s.total.n as i64;
            let min_required = min_required(inst.headcount, params);
            let suppressed = n < params.suppression_min_n;
            let indices = (!suppressed && n > 0).then(|| unweighted_indices(&s.total, inst.headcount, scale));
            InstitutionEstimate {
                institution: i,
                n,
                response_rate: n as f64 / inst.headcount as f64,
                headcount_exceeded: n > inst.headcount,
                min_required,
                eligible: n >= min_required,
                suppressed,
                indices,
                rank_national: None,
                rank_in_type: None,
                yoy: YearOnYear::default(),
            }
        })
        .collect();

    let rankable: Vec<Option<f64>> =
        rows.iter().map(|r| if r.eligible { r.indices.as_ref().map(|i| i.overall) } else { None }).collect();
    for (row, rank) in rows.iter_mut().zip(competition_ranks(&rankable)) {
        row.rank_national = rank;
    }
    let mut kinds: Vec<_> = master.institutions.iter().map(|i| i.kind).collect();
    kinds.sort();
    kinds.dedup();
    for kind in kinds {
        let members: Vec<usize> = (0..rows.len()).filter(|&i| master.institutions[i].kind == kind).collect();
        let values: Vec<Option<f64>> = members.iter().map(|&i| rankable[i]).collect();
        for (i, rank) in members.into_iter().zip(competition_ranks(&values)) {
            rows[i].rank_in_type = rank;
        }
    }
    for row in &mut rows {
        let code = &master.institutions[row.institution].code;
        let prev = previous.institutions.get(code).copied().flatten();
        row.yoy = YearOnYear::new(prev, row.indices.as_ref().map(|i| i.overall));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Instrument;

    const PARAMS: Params = Params { margin_of_error: 0.05, min_floor: 30, suppression_min_n: 10 };

    #[test]
    fn slovin_with_floor_and_cap() {
        assert_eq!(min_required(10_000, &PARAMS), 385); // 10000/26 = 384.6
        assert_eq!(min_required(400, &PARAMS), 200);
        assert_eq!(min_required(100, &PARAMS), 80);
        assert_eq!(min_required(31, &PARAMS), 30); // Slovin 29 → floor 30
        assert_eq!(min_required(20, &PARAMS), 20); // capped at N
        assert_eq!(min_required(1, &PARAMS), 1);
    }

    fn votes_sums(scores: &[u32]) -> Sums {
        // A respondent with overall numerator k picks one behaviour of each of k values.
        let mut s = Sums::default();
        for &k in scores {
            let mut a = [0u8; 21];
            for v in 0..k as usize {
                a[3 * v] = 1;
            }
            s.add(&a, Instrument::Votes);
        }
        s
    }

    #[test]
    fn hand_computed_institution() {
        // Three respondents with s = 7/7, 3/7, 2/7 in an institution of N = 10.
        let scale = Scale::of(Instrument::Votes, 1, 5);
        let idx = unweighted_indices(&votes_sums(&[7, 3, 2]), 10, &scale);
        // mean s = 12/21 = 4/7 → 57.142857...
        assert!((idx.overall - 400.0 / 7.0).abs() < 1e-12);
        // bp picked by all three: 100; kl by one: 33.3
        assert_eq!(idx.values[0], 100.0);
        assert!((idx.values[6] - 100.0 / 3.0).abs() < 1e-12);
        // S² = Σ(s−4/7)²/2 = ((3/7)² + (1/7)² + (2/7)²)/2 = 14/98 = 1/7; f = 0.3
        // se = 100·sqrt(0.7 · (1/7) / 3) = 100·sqrt(1/30)
        let se = idx.se.unwrap();
        assert!((se - 100.0 * (1.0f64 / 30.0).sqrt()).abs() < 1e-12, "{se}");
        let (lo, hi) = idx.ci95().unwrap();
        assert!((lo - (400.0 / 7.0 - 1.96 * se)).abs() < 1e-12);
        assert!((hi - (400.0 / 7.0 + 1.96 * se)).abs() < 1e-12);
    }

    #[test]
    fn census_has_zero_se_and_one_respondent_none() {
        let scale = Scale::of(Instrument::Votes, 1, 5);
        assert_eq!(unweighted_indices(&votes_sums(&[7, 3]), 2, &scale).se, Some(0.0));
        assert_eq!(unweighted_indices(&votes_sums(&[7, 3]), 1, &scale).se, Some(0.0));
        assert_eq!(unweighted_indices(&votes_sums(&[5]), 10, &scale).se, None);
    }

    #[test]
    fn ci_is_clipped() {
        let idx = Indices { values: [0.0; 7], overall: 99.0, behaviours: [0.0; 21], se: Some(5.0) };
        assert_eq!(idx.ci95(), Some((89.2, 100.0)));
        let idx = Indices { overall: 1.0, ..idx };
        assert_eq!(idx.ci95().unwrap().0, 0.0);
    }

    #[test]
    fn published_ministry_2022_categories() {
        // SPEC 9: 59.6, 64.1, 58.3, 53.7, 62.7, 43.5, 67.7 → overall 58.5, B; ad C, others B.
        let values = [59.6, 64.1, 58.3, 53.7, 62.7, 43.5, 67.7];
        let overall = values.iter().sum::<f64>() / 7.0;
        assert_eq!(crate::catalogue::round_to(overall, 1), 58.5);
        let idx = Indices { values, overall, behaviours: [0.0; 21], se: None };
        assert_eq!(idx.category().letter(), "B");
        let cats: Vec<&str> = idx.value_categories().iter().map(|c| c.letter()).collect();
        assert_eq!(cats, ["B", "B", "B", "B", "B", "C", "B"]);
    }

    #[test]
    fn published_national_2022_mean_of_values() {
        let values = [57.9, 74.1, 56.7, 63.8, 65.8, 38.9, 69.4];
        let overall = values.iter().sum::<f64>() / 7.0;
        assert_eq!(crate::catalogue::round_to(overall, 1), 60.9);
        let idx = Indices { values, overall, behaviours: [0.0; 21], se: None };
        assert_eq!(idx.category().letter(), "B");
        assert_eq!(idx.value_categories()[5].letter(), "C");
    }
}
