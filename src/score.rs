//! Scoring (SPEC 4): respondents' scores summed per institution and work district.
//!
//! Every score is a ratio of small integers: votes y ∈ {0,1}, x ∈ {0,1}, s = Σx/7; likert
//! y = a'/R, x = Σ_{b∈v} a'/(3R), s = Σ_b a'/(21R) with a' = answer − likert_min and
//! R = likert_max − likert_min. So the pipeline sums integer *numerators* (and the squares
//! of the overall numerator, for variances) per (institution, district) cell. Integer sums
//! are exact and independent of summation order: results do not depend on the thread count,
//! and the estimators divide once at the end, in binary64.

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::catalogue::{BEHAVIOUR_COUNT, VALUE_COUNT};
use crate::config::Instrument;
use crate::dedupe::Accepted;
use crate::validate::value_numerators;

/// The denominators that turn numerators into scores in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    /// Behaviour score denominator.
    pub behaviour: f64,
    /// Value score denominator.
    pub value: f64,
    /// Overall score denominator (7 × value).
    pub overall: f64,
}

impl Scale {
    /// The scale of an instrument.
    pub fn of(instrument: Instrument, likert_min: i64, likert_max: i64) -> Scale {
        let (behaviour, value) = match instrument {
            Instrument::Votes => (1.0, 1.0),
            Instrument::Likert => {
                let range = (likert_max - likert_min) as f64;
                (range, 3.0 * range)
            }
        };
        Scale { behaviour, value, overall: 7.0 * value }
    }
}

/// Integer sums of score numerators over a set of respondents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    /// Respondents.
    pub n: u64,
    /// Σ overall numerator.
    pub overall: u64,
    /// Σ overall numerator².
    pub overall_sq: u64,
    /// Σ value numerators.
    pub values: [u64; VALUE_COUNT],
    /// Σ behaviour numerators.
    pub behaviours: [u64; BEHAVIOUR_COUNT],
}

impl Sums {
    /// Adds one respondent.
    pub fn add(&mut self, answers: &[u8; BEHAVIOUR_COUNT], instrument: Instrument) {
        let x = value_numerators(answers, instrument);
        let s: u64 = x.iter().map(|v| u64::from(*v)).sum();
        self.n += 1;
        self.overall += s;
        self.overall_sq += s * s;
        for (acc, v) in self.values.iter_mut().zip(x) {
            *acc += u64::from(v);
        }
        for (acc, a) in self.behaviours.iter_mut().zip(answers) {
            *acc += u64::from(*a);
        }
    }

    /// Adds another set of sums.
    pub fn merge(&mut self, other: &Sums) {
        self.n += other.n;
        self.overall += other.overall;
        self.overall_sq += other.overall_sq;
        for (a, b) in self.values.iter_mut().zip(other.values) {
            *a += b;
        }
        for (a, b) in self.behaviours.iter_mut().zip(other.behaviours) {
            *a += b;
        }
    }

    /// Σ (s − s̄)² in score units, computed exactly from the integer sums.
    pub fn within_sum_of_squares(&self, scale: &Scale) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let n = i128::from(self.n);
        let a = i128::from(self.overall);
        let b = i128::from(self.overall_sq);
        let numerator = n * b - a * a; // ≥ 0 by Cauchy–Schwarz, exact
        numerator as f64 / (n as f64 * scale.overall * scale.overall)
    }
}

/// An institution's sums, in total and per work district.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstitutionSums {
    /// All accepted respondents of the institution.
    pub total: Sums,
    /// Per work district (index into the regions' districts), sorted by district.
    pub cells: Vec<(u16, Sums)>,
}

/// Sums every institution's respondents per work district. Respondents are scored in
/// parallel (rayon splits the input into ranges, each summed into its own cell map); the
/// integer sums then merge per institution, exactly and in any order.
/// Returns one entry per institution of the master (empty for institutions without respondents).
pub fn score(accepted: &Accepted, institutions: usize, instrument: Instrument) -> Vec<InstitutionSums> {
    // A few ranges per thread: each holds a cell map, so their number bounds the memory.
    let min_len = (accepted.len() / (4 * rayon::current_num_threads())).max(4096);
    let cells: FxHashMap<u32, Sums> = (0..accepted.len())
        .into_par_iter()
        .with_min_len(min_len)
        .fold(FxHashMap::default, |mut cells: FxHashMap<u32, Sums>, i| {
            let r = accepted.get(i);
            cells.entry((r.institution << 16) | u32::from(r.district)).or_default().add(&r.answers, instrument);
            cells
        })
        .reduce(FxHashMap::default, |mut a, b| {
            for (key, sums) in b {
                a.entry(key).or_default().merge(&sums);
            }
            a
        });
    let mut out = vec![InstitutionSums::default(); institutions];
    let mut keys: Vec<u32> = cells.keys().copied().collect();
    keys.sort_unstable();
    for key in keys {
        let sums = cells[&key];
        let inst = &mut out[(key >> 16) as usize];
        inst.cells.push(((key & 0xffff) as u16, sums));
        inst.total.merge(&sums);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedupe::Position;
    use crate::validate::{Instant, Response};

    fn kept(institution: u32, district: u16, picks: &[usize]) -> (Position, Response) {
        let mut answers = [0u8; 21];
        for p in picks {
            answers[*p] = 1;
        }
        let response = Response {
            response_id: "r".into(),
            respondent: 0,
            submitted_at: Instant { secs: 0, nanos: 0 },
            institution,
            district,
            answers,
        };
        (Position { file: 0, line: 0 }, response)
    }

    #[test]
    fn votes_numerators_per_cell() {
        // BP1+BP2 count once for bp; AD3 for ad.
        let acc = Accepted::from_responses(&[kept(1, 5, &[0, 1, 17]), kept(1, 3, &[3]), kept(1, 5, &[])]);
        let sums = score(&acc, 3, Instrument::Votes);
        assert_eq!(sums[0], InstitutionSums::default());
        let s = &sums[1];
        assert_eq!(s.total.n, 3);
        assert_eq!(s.total.overall, 2 + 1);
        assert_eq!(s.total.overall_sq, 4 + 1);
        assert_eq!(s.total.values, [1, 1, 0, 0, 0, 1, 0]);
        assert_eq!(s.total.behaviours[0], 1);
        assert_eq!(s.cells.iter().map(|(d, c)| (*d, c.n)).collect::<Vec<_>>(), [(3, 1), (5, 2)]);
    }

    #[test]
    fn within_sum_of_squares_is_exact() {
        let mut s = Sums::default();
        let scale = Scale::of(Instrument::Votes, 1, 5);
        for picks in [&[0usize][..], &[0, 3, 6], &[]] {
            let mut a = [0u8; 21];
            for p in picks {
                a[*p] = 1;
            }
            s.add(&a, Instrument::Votes);
        }
        // scores 1/7, 3/7, 0: mean 4/21; Σ(s−m)² = (9+25+16)/441 · ... computed directly:
        let xs = [1.0 / 7.0, 3.0 / 7.0, 0.0];
        let m = xs.iter().sum::<f64>() / 3.0;
        let direct: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
        assert!((s.within_sum_of_squares(&scale) - direct).abs() < 1e-15);
    }

    #[test]
    fn likert_scale() {
        let scale = Scale::of(Instrument::Likert, 1, 5);
        assert_eq!((scale.behaviour, scale.value, scale.overall), (4.0, 12.0, 84.0));
    }

    #[test]
    fn result_does_not_depend_on_threads() {
        let items: Vec<_> = (0..500).map(|i| kept(i % 7, (i % 13) as u16, &[(i % 21) as usize])).collect();
        let acc = Accepted::from_responses(&items);
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| score(&acc, 7, Instrument::Votes));
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap()
            .install(|| score(&acc, 7, Instrument::Votes));
        assert_eq!(one, two);
    }
}
