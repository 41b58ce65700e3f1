//! Competition ranking ("1, 2, 2, 4") on values rounded to two decimals (SPEC 5.3).

use crate::catalogue::round_to;

/// Ranks `values` highest first; `None` entries are not ranked and not counted.
pub fn competition_ranks(values: &[Option<f64>]) -> Vec<Option<i64>> {
    let rounded: Vec<Option<f64>> = values.iter().map(|v| v.map(|x| round_to(x, 2))).collect();
    let mut sorted: Vec<f64> = rounded.iter().flatten().copied().collect();
    sorted.sort_by(|a, b| b.total_cmp(a));
    rounded
        .iter()
        .map(|v| {
            v.map(|x| {
                // Rank = 1 + how many rank strictly higher.
                let higher = sorted.partition_point(|y| *y > x);
                higher as i64 + 1
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_share_a_rank_and_skip() {
        let r = competition_ranks(&[Some(60.0), Some(70.0), Some(60.0), None, Some(50.0)]);
        assert_eq!(r, [Some(2), Some(1), Some(2), None, Some(4)]);
    }

    #[test]
    fn ties_are_decided_on_two_decimals() {
        // 61.104 and 61.096 both round to 61.10.
        let r = competition_ranks(&[Some(61.104), Some(61.096), Some(61.106)]);
        assert_eq!(r, [Some(2), Some(2), Some(1)]);
    }

    #[test]
    fn empty_and_all_null() {
        assert!(competition_ranks(&[]).is_empty());
        assert_eq!(competition_ranks(&[None, None]), [None, None]);
    }
}
