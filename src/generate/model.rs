//! The synthetic answer model of `generate`: how likely each value is to be seen, per
//! institution and respondent, calibrated so that national figures land on the published ones.
//!
//! A respondent r of institution h "sees" value v with probability
//! `p = expit(c_v + u_h + u_hv + u_hy + e_r)`, where `u_h` (institution), `u_hv` (institution ×
//! value) are stable across years for a seed, `u_hy` is a small institution × year wobble and
//! `e_r` a respondent effect shared by the seven values (people who see one value tend to see
//! others). `c_v` is solved numerically so that `E[p] = target_v`, the published 2022 national
//! value index (SPEC 9) plus a small year effect; the respondent-level share of value v then
//! estimates `target_v` without bias.
//!
//! - votes: a seen value contributes one to three of its behaviours (the picks), distractors
//!   are added while there is room, never more than `max_picks` (10) codes; x(r,v) = seen.
//! - likert: each of the value's three items is `1 + Binomial(4, p)`, so E[(a−1)/4] = E[p].

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::catalogue::{BEHAVIOUR_CODES, VALUE_COUNT};

/// Published national value indices of 2022 (SPEC 9), bp, ak, ko, ha, lo, ad, kl.
pub const PUBLISHED_2022: [f64; VALUE_COUNT] = [57.9, 74.1, 56.7, 63.8, 65.8, 38.9, 69.4];

/// Standard deviation (logit scale) of the stable institution effect.
pub const SD_INSTITUTION: f64 = 0.30;
/// Standard deviation of the stable institution × value effect.
pub const SD_INSTITUTION_VALUE: f64 = 0.15;
/// Standard deviation of the institution × year wobble.
pub const SD_INSTITUTION_YEAR: f64 = 0.08;
/// Standard deviation of the respondent effect.
pub const SD_RESPONDENT: f64 = 0.55;

/// The most codes a respondent may pick (SPEC 2.3 `max_picks` default).
pub const MAX_PICKS: usize = 10;

/// The distractor codes of the default configuration.
pub const DISTRACTORS: [&str; 24] = [
    "X01", "X02", "X03", "X04", "X05", "X06", "X07", "X08", "X09", "X10", "X11", "X12", "X13", "X14", "X15", "X16",
    "X17", "X18", "X19", "X20", "X21", "X22", "X23", "X24",
];

/// Relative popularity of the three behaviours inside each value (votes).
const BEHAVIOUR_WEIGHTS: [[f64; 3]; VALUE_COUNT] = [
    [0.45, 0.35, 0.20],
    [0.50, 0.25, 0.25],
    [0.30, 0.20, 0.50],
    [0.35, 0.35, 0.30],
    [0.40, 0.35, 0.25],
    [0.40, 0.35, 0.25],
    [0.25, 0.45, 0.30],
];

/// splitmix64 finaliser: a well-mixed 64-bit hash of one word.
pub fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Mixes several words into one seed.
pub fn mix(parts: &[u64]) -> u64 {
    parts.iter().fold(0x5EED_BE2A_4B1A_u64, |acc, &p| splitmix(acc ^ splitmix(p)))
}

/// A ChaCha8 generator for one named stream of the seed.
pub fn stream(parts: &[u64]) -> ChaCha8Rng {
    use rand::SeedableRng;
    ChaCha8Rng::seed_from_u64(mix(parts))
}

/// A standard normal draw (Box–Muller; one of the pair is discarded for simplicity).
pub fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Logistic function.
pub fn expit(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// E[expit(c + sd·Z)], Z standard normal, by quadrature on a fixed grid (deterministic).
fn mean_expit(c: f64, sd: f64) -> f64 {
    const STEPS: i32 = 400;
    let (mut num, mut den) = (0.0, 0.0);
    for i in -STEPS..=STEPS {
        let z = f64::from(i) * 8.0 / f64::from(STEPS);
        let w = (-0.5 * z * z).exp();
        num += w * expit(c + sd * z);
        den += w;
    }
    num / den
}

/// The intercept c with E[expit(c + sd·Z)] = target (bisection).
pub fn calibrate(target: f64, sd: f64) -> f64 {
    let (mut lo, mut hi) = (-20.0, 20.0);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if mean_expit(mid, sd) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// National targets (0–1) of a year: the 2022 figures, a drift of +0.2 points a year (2023 was
/// 61.1 against 60.9), and a small per-value wobble that keeps Adaptif lowest, Akuntabel highest.
pub fn year_targets(year: i32) -> [f64; VALUE_COUNT] {
    let years = f64::from(year - 2022);
    let drift = (0.2 * years).clamp(-1.5, 1.5);
    let mut out = [0.0; VALUE_COUNT];
    for (v, t) in out.iter_mut().enumerate() {
        let wobble = if year == 2022 {
            0.0
        } else {
            let h = mix(&[0xA11E, year as u64, v as u64]);
            ((h >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 1.2
        };
        *t = (PUBLISHED_2022[v] + drift + wobble) / 100.0;
    }
    out
}

/// The calibrated culture model of one survey year.
#[derive(Debug, Clone)]
pub struct CultureModel {
    intercept: [f64; VALUE_COUNT],
}

impl CultureModel {
    /// Calibrates the intercepts for `year`.
    pub fn new(year: i32) -> CultureModel {
        let sd = (SD_INSTITUTION.powi(2)
            + SD_INSTITUTION_VALUE.powi(2)
            + SD_INSTITUTION_YEAR.powi(2)
            + SD_RESPONDENT.powi(2))
        .sqrt();
        let targets = year_targets(year);
        let mut intercept = [0.0; VALUE_COUNT];
        for v in 0..VALUE_COUNT {
            intercept[v] = calibrate(targets[v], sd);
        }
        CultureModel { intercept }
    }

    /// Probability that a respondent sees each value, given the institution's effects (logit
    /// shifts) and a fresh respondent effect.
    pub fn value_probabilities(&self, rng: &mut ChaCha8Rng, institution: &[f64; VALUE_COUNT]) -> [f64; VALUE_COUNT] {
        let e = SD_RESPONDENT * normal(rng);
        let mut p = [0.0; VALUE_COUNT];
        for v in 0..VALUE_COUNT {
            p[v] = expit(self.intercept[v] + institution[v] + e);
        }
        p
    }
}

/// Draws a votes answer: the picked codes (distinct, 1..=10, shuffled) into `picks`, and
/// returns x(r,v) for the seven values.
pub fn draw_votes(rng: &mut ChaCha8Rng, p: &[f64; VALUE_COUNT], picks: &mut Vec<&'static str>) -> [f64; VALUE_COUNT] {
    picks.clear();
    let mut seen = [false; VALUE_COUNT];
    let mut count = [0usize; VALUE_COUNT];
    for v in 0..VALUE_COUNT {
        if rng.random::<f64>() < p[v] {
            seen[v] = true;
            let u: f64 = rng.random();
            count[v] = if u < 0.6 {
                1
            } else if u < 0.9 {
                2
            } else {
                3
            };
        }
    }
    // Cap at MAX_PICKS behaviours: drop extras (never a value's last behaviour).
    let mut total: usize = count.iter().sum();
    while total > MAX_PICKS {
        if let Some(v) = (0..VALUE_COUNT).rev().find(|&v| count[v] > 1) {
            count[v] -= 1;
            total -= 1;
        } else {
            break;
        }
    }
    for v in 0..VALUE_COUNT {
        let mut taken = [false; 3];
        for _ in 0..count[v] {
            let free: f64 = (0..3).filter(|&b| !taken[b]).map(|b| BEHAVIOUR_WEIGHTS[v][b]).sum();
            let mut u = rng.random::<f64>() * free;
            let mut chosen = 2;
            for b in 0..3 {
                if taken[b] {
                    continue;
                }
                chosen = b;
                if u < BEHAVIOUR_WEIGHTS[v][b] {
                    break;
                }
                u -= BEHAVIOUR_WEIGHTS[v][b];
            }
            taken[chosen] = true;
            picks.push(BEHAVIOUR_CODES[3 * v + chosen]);
        }
    }
    // Distractors while there is room; a respondent who saw nothing still picks something.
    let u: f64 = rng.random();
    let mut want = if u < 0.6 {
        0
    } else if u < 0.9 {
        1
    } else {
        2
    };
    if picks.is_empty() {
        want = want.max(1);
    }
    while want > 0 && picks.len() < MAX_PICKS {
        let code = DISTRACTORS[rng.random_range(0..DISTRACTORS.len())];
        if !picks.contains(&code) {
            picks.push(code);
            want -= 1;
        }
    }
    shuffle(rng, picks);
    let mut x = [0.0; VALUE_COUNT];
    for v in 0..VALUE_COUNT {
        x[v] = if seen[v] { 1.0 } else { 0.0 };
    }
    x
}

/// Draws a likert answer (1..=5 per behaviour, catalogue order) and returns x(r,v).
/// All 21 answers equal would be a straightliner: one item is nudged so a good record never is.
pub fn draw_likert(rng: &mut ChaCha8Rng, p: &[f64; VALUE_COUNT], answers: &mut [u8; 21]) -> [f64; VALUE_COUNT] {
    for (b, a) in answers.iter_mut().enumerate() {
        let pv = p[b / 3];
        let mut k = 1u8;
        for _ in 0..4 {
            if rng.random::<f64>() < pv {
                k += 1;
            }
        }
        *a = k;
    }
    if answers.iter().all(|&a| a == answers[0]) {
        let b = rng.random_range(0..21);
        answers[b] = if answers[b] > 1 { answers[b] - 1 } else { 2 };
    }
    likert_scores(answers)
}

/// x(r,v) of likert answers: mean of (a−1)/4 over the value's three items.
pub fn likert_scores(answers: &[u8; 21]) -> [f64; VALUE_COUNT] {
    let mut x = [0.0; VALUE_COUNT];
    for (v, xv) in x.iter_mut().enumerate() {
        let sum: f64 = (0..3).map(|i| f64::from(answers[3 * v + i] - 1) / 4.0).sum();
        *xv = sum / 3.0;
    }
    x
}

/// Fisher–Yates shuffle (kept local so the output does not depend on a crate's algorithm).
pub fn shuffle<T>(rng: &mut ChaCha8Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = rng.random_range(0..=i);
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_hits_targets() {
        for target in [0.389, 0.579, 0.741] {
            let c = calibrate(target, 0.65);
            assert!((mean_expit(c, 0.65) - target).abs() < 1e-9);
        }
    }

    #[test]
    fn year_targets_keep_the_order() {
        for year in 2018..2035 {
            let t = year_targets(year);
            let min = t.iter().cloned().fold(f64::INFINITY, f64::min);
            let max = t.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!(t[5], min, "{year}");
            assert_eq!(t[1], max, "{year}");
        }
        let t = year_targets(2022);
        assert!((t[0] - 0.579).abs() < 1e-12);
    }

    #[test]
    fn votes_are_valid() {
        let mut rng = stream(&[1]);
        let mut picks = Vec::new();
        for _ in 0..5000 {
            let p = [0.95; VALUE_COUNT];
            let x = draw_votes(&mut rng, &p, &mut picks);
            assert!(!picks.is_empty() && picks.len() <= MAX_PICKS);
            let mut sorted = picks.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), picks.len());
            for v in 0..VALUE_COUNT {
                let any = (0..3).any(|i| picks.contains(&BEHAVIOUR_CODES[3 * v + i]));
                assert_eq!(any, x[v] == 1.0);
            }
        }
    }
}
