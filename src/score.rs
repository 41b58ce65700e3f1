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
use crate::validate::{value_numerators, Response};

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
        self.apply(answers, instrument, |acc, v| *acc += v);
    }

    /// Takes out a respondent added before (one that deduplication later rejected).
    pub fn remove(&mut self, answers: &[u8; BEHAVIOUR_COUNT], instrument: Instrument) {
        self.apply(answers, instrument, |acc, v| *acc -= v);
    }

    fn apply(&mut self, answers: &[u8; BEHAVIOUR_COUNT], instrument: Instrument, op: impl Fn(&mut u64, u64)) {
        let x = value_numerators(answers, instrument);
        let s: u64 = x.iter().map(|v| u64::from(*v)).sum();
        op(&mut self.n, 1);
        op(&mut self.overall, s);
        op(&mut self.overall_sq, s * s);
        for (acc, v) in self.values.iter_mut().zip(x) {
            op(acc, u64::from(v));
        }
        for (acc, a) in self.behaviours.iter_mut().zip(answers) {
            op(acc, u64::from(*a));
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

/// Running sums per (institution, work district) cell. Responses are added as soon as they
/// pass validation (each reading thread keeps its own tally) and taken out again when
/// deduplication rejects them; integer sums make the result exact and independent of the
/// order and the thread count.
///
/// A response is first added to the cell's 32-bit counters (128 bytes, two cache lines), which
/// are flushed into the exact 64-bit [`Sums`] before they could overflow (see [`flush_every`]):
/// a worker touches tens of thousands of cells, and 248-byte sums per cell did not stay in
/// cache.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Cell key → index into `cells`.
    index: FxHashMap<u32, u32>,
    cells: Vec<Narrow>,
    sums: Vec<(u32, Sums)>,
}

/// 32-bit sums of the responses added to a cell since its last flush.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(64))]
struct Narrow {
    n: u32,
    overall: u32,
    overall_sq: u32,
    values: [u32; VALUE_COUNT],
    behaviours: [u32; BEHAVIOUR_COUNT],
}

/// Responses a cell's 32-bit counters take before a flush: the largest overall numerator is 7
/// (votes) or 21 × 255 (likert: an answer numerator is a `u8`, the config allows ranges up to
/// 255), and the sum of its squares must fit.
fn flush_every(instrument: Instrument) -> u32 {
    let max_overall: u32 = match instrument {
        Instrument::Votes => VALUE_COUNT as u32,
        Instrument::Likert => BEHAVIOUR_COUNT as u32 * u32::from(u8::MAX),
    };
    u32::MAX / (max_overall * max_overall)
}

impl Narrow {
    fn add(&mut self, answers: &[u8; BEHAVIOUR_COUNT], instrument: Instrument) {
        let x = value_numerators(answers, instrument);
        let s: u32 = x.iter().sum();
        self.n += 1;
        self.overall += s;
        self.overall_sq += s * s;
        for (acc, v) in self.values.iter_mut().zip(x) {
            *acc += v;
        }
        for (acc, a) in self.behaviours.iter_mut().zip(answers) {
            *acc += u32::from(*a);
        }
    }

    /// Moves the counts into `sums`.
    fn flush_into(&mut self, sums: &mut Sums) {
        sums.n += u64::from(self.n);
        sums.overall += u64::from(self.overall);
        sums.overall_sq += u64::from(self.overall_sq);
        for (acc, v) in sums.values.iter_mut().zip(self.values) {
            *acc += u64::from(v);
        }
        for (acc, b) in sums.behaviours.iter_mut().zip(self.behaviours) {
            *acc += u64::from(b);
        }
        *self = Narrow::default();
    }
}

fn cell_key(institution: u32, district: u16) -> u32 {
    (institution << 16) | u32::from(district)
}

impl Tally {
    fn cell(&mut self, key: u32) -> usize {
        let next = self.cells.len() as u32;
        let at = *self.index.entry(key).or_insert(next);
        if at == next {
            self.cells.push(Narrow::default());
            self.sums.push((key, Sums::default()));
        }
        at as usize
    }

    /// The exact sums of cell `at`, with its pending counts flushed in.
    fn flushed(&mut self, at: usize) -> &mut Sums {
        let sums = &mut self.sums[at].1;
        self.cells[at].flush_into(sums);
        sums
    }

    /// Adds an accepted response.
    pub fn add(&mut self, response: &Response, instrument: Instrument) {
        let at = self.cell(cell_key(response.institution, response.district));
        let cell = &mut self.cells[at];
        cell.add(&response.answers, instrument);
        if cell.n >= flush_every(instrument) {
            self.flushed(at);
        }
    }

    /// Takes out a response added before.
    pub fn remove(&mut self, response: &Response, instrument: Instrument) {
        let at = self.cell(cell_key(response.institution, response.district));
        self.flushed(at).remove(&response.answers, instrument);
    }

    /// Adds another tally.
    pub fn merge(&mut self, other: Tally) {
        for (key, sums) in other.into_sums() {
            let at = self.cell(key);
            self.flushed(at).merge(&sums);
        }
    }

    /// Every cell's exact sums.
    fn into_sums(mut self) -> Vec<(u32, Sums)> {
        for at in 0..self.cells.len() {
            self.flushed(at);
        }
        self.sums
    }

    /// One entry per institution of the master (empty for institutions without respondents).
    pub fn into_institutions(self, institutions: usize) -> Vec<InstitutionSums> {
        let mut out = vec![InstitutionSums::default(); institutions];
        let mut cells: Vec<(u32, Sums)> = self.into_sums().into_iter().filter(|(_, sums)| sums.n > 0).collect();
        cells.sort_unstable_by_key(|(key, _)| *key);
        for (key, sums) in cells {
            let inst = &mut out[(key >> 16) as usize];
            inst.cells.push(((key & 0xffff) as u16, sums));
            inst.total.merge(&sums);
        }
        out
    }
}

/// Sums a set of accepted responses (tests and tools; the pipeline tallies as it reads).
pub fn score(responses: &[Response], institutions: usize, instrument: Instrument) -> Vec<InstitutionSums> {
    let tally = responses
        .par_iter()
        .fold(Tally::default, |mut tally, r| {
            tally.add(r, instrument);
            tally
        })
        .reduce(Tally::default, |mut a, b| {
            a.merge(b);
            a
        });
    tally.into_institutions(institutions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::Instant;

    fn kept(institution: u32, district: u16, picks: &[usize]) -> Response<'static> {
        let mut answers = [0u8; 21];
        for p in picks {
            answers[*p] = 1;
        }
        Response {
            response_id: "r".to_string().into(),
            respondent: 0,
            submitted_at: Instant { secs: 0, nanos: 0 },
            institution,
            district,
            answers,
        }
    }

    #[test]
    fn votes_numerators_per_cell() {
        // BP1+BP2 count once for bp; AD3 for ad.
        let acc = [kept(1, 5, &[0, 1, 17]), kept(1, 3, &[3]), kept(1, 5, &[])];
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
    fn removing_a_response_undoes_adding_it() {
        let (a, b) = (kept(2, 7, &[0, 4, 20]), kept(2, 9, &[3]));
        let mut tally = Tally::default();
        tally.add(&a, Instrument::Votes);
        tally.add(&b, Instrument::Votes);
        tally.remove(&b, Instrument::Votes);
        let got = tally.into_institutions(3);
        assert_eq!(got, score(&[a], 3, Instrument::Votes));
        // The emptied cell is gone, not kept with n = 0.
        assert_eq!(got[2].cells.len(), 1);
    }

    #[test]
    fn counts_past_a_flush_stay_exact() {
        // Cross several flushes of one cell, with answers up to the largest a config allows
        // (a 0..255 scale), and compare with sums added one by one in 64 bits. Every squared
        // overall numerator near its maximum would overflow 32 bits within ~150 responses.
        let n = 5 * flush_every(Instrument::Likert) as usize + 17;
        for top in [63u8, 100, 255] {
            let mut tally = Tally::default();
            let mut direct = Sums::default();
            for i in 0..n {
                let mut r = kept(0, 1, &[]);
                r.answers = std::array::from_fn(|b| top - ((i * 7 + b * 13) % 3) as u8);
                tally.add(&r, Instrument::Likert);
                direct.add(&r.answers, Instrument::Likert);
            }
            let got = tally.into_institutions(1);
            assert_eq!(got[0].total, direct, "answers up to {top}");
            assert_eq!(got[0].total.n, n as u64);
        }
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
        let acc = items;
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
