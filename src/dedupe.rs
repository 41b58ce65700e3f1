//! Deduplication (SPEC 3): one response per respondent, then one per `response_id`.
//!
//! Streaming: each accepted response is offered as it is validated, and only the current
//! winner of each respondent is held, so memory grows with respondents, not with records.
//! Input order is `(file index, line)`: files are read in bytewise order of relative path
//! and lines increase within a file.

use std::collections::HashMap;

use crate::validate::{Reason, Response};

/// Where a record came from; orders records in input order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Index of the file in discovery order.
    pub file: u32,
    /// First physical line of the record.
    pub line: u64,
}

/// An accepted response with its position.
#[derive(Debug, Clone)]
pub struct Kept {
    /// Where it was read.
    pub position: Position,
    /// The response.
    pub response: Response,
}

/// A record rejected by deduplication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupRejection {
    /// Where it was read.
    pub position: Position,
    /// `superseded` or `duplicate_response_id`.
    pub reason: Reason,
    /// Its `response_id`.
    pub response_id: String,
    /// Names the response that was kept instead.
    pub detail: String,
}

/// Result of deduplication.
#[derive(Debug, Default)]
pub struct Deduped {
    /// Accepted responses, in input order.
    pub accepted: Vec<Kept>,
    /// Rejections, in input order.
    pub rejected: Vec<DedupRejection>,
}

struct Loser {
    position: Position,
    response_id: Box<str>,
    slot: u32,
}

/// Streaming deduplicator.
#[derive(Default)]
pub struct Deduper {
    winners: Vec<Kept>,
    slots: HashMap<u128, u32>,
    losers: Vec<Loser>,
}

/// True when `challenger` (later in input order) replaces `current`: later `submitted_at`,
/// then greater `response_id` bytewise; a full tie keeps the first in input order.
fn supersedes(challenger: &Response, current: &Response) -> bool {
    (challenger.submitted_at, challenger.response_id.as_bytes())
        > (current.submitted_at, current.response_id.as_bytes())
}

impl Deduper {
    /// An empty deduplicator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of respondents seen so far.
    pub fn respondents(&self) -> usize {
        self.winners.len()
    }

    /// Offers a response that passed validation; responses must come in input order.
    pub fn push(&mut self, position: Position, response: Response) {
        match self.slots.get(&response.respondent) {
            None => {
                self.slots.insert(response.respondent, self.winners.len() as u32);
                self.winners.push(Kept { position, response });
            }
            Some(&slot) => {
                let current = &mut self.winners[slot as usize];
                if supersedes(&response, &current.response) {
                    let old = std::mem::replace(current, Kept { position, response });
                    self.losers.push(Loser { position: old.position, response_id: old.response.response_id, slot });
                } else {
                    self.losers.push(Loser { position, response_id: response.response_id, slot });
                }
            }
        }
    }

    /// Settles resubmissions, then repeated `response_id`s among the kept.
    pub fn finish(self) -> Deduped {
        let Deduper { winners, losers, .. } = self;
        let mut rejected: Vec<DedupRejection> = losers
            .into_iter()
            .map(|l| DedupRejection {
                position: l.position,
                reason: Reason::Superseded,
                response_id: l.response_id.into(),
                detail: format!(
                    "superseded by response_id {} of the same respondent_key",
                    winners[l.slot as usize].response.response_id
                ),
            })
            .collect();
        let mut kept = winners;
        kept.sort_unstable_by_key(|k| k.position);
        let mut first_seen: HashMap<&str, Position> = HashMap::with_capacity(kept.len());
        let mut duplicate = vec![false; kept.len()];
        for (i, k) in kept.iter().enumerate() {
            if let Some(first) = first_seen.get(&*k.response.response_id) {
                duplicate[i] = true;
                rejected.push(DedupRejection {
                    position: k.position,
                    reason: Reason::DuplicateResponseId,
                    response_id: k.response.response_id.to_string(),
                    detail: format!(
                        "response_id {} already accepted (file #{} line {})",
                        k.response.response_id, first.file, first.line
                    ),
                });
            } else {
                first_seen.insert(&k.response.response_id, k.position);
            }
        }
        drop(first_seen);
        let accepted = kept.into_iter().zip(duplicate).filter(|(_, d)| !d).map(|(k, _)| k).collect();
        rejected.sort_unstable_by_key(|r| r.position);
        Deduped { accepted, rejected }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::Instant;

    fn response(rid: &str, key: u128, secs: i64) -> Response {
        Response {
            response_id: rid.into(),
            respondent: key,
            submitted_at: Instant { secs, nanos: 0 },
            institution: 0,
            district: 0,
            answers: [0; 21],
        }
    }

    fn run(records: &[(&str, u128, i64)]) -> (Vec<String>, Vec<(String, Reason, String)>) {
        let mut d = Deduper::new();
        for (i, (rid, key, secs)) in records.iter().enumerate() {
            d.push(Position { file: 0, line: i as u64 + 2 }, response(rid, *key, *secs));
        }
        let out = d.finish();
        (
            out.accepted.iter().map(|k| k.response.response_id.to_string()).collect(),
            out.rejected.iter().map(|r| (r.response_id.clone(), r.reason, r.detail.clone())).collect(),
        )
    }

    #[test]
    fn latest_submission_wins() {
        let (acc, rej) = run(&[("a", 1, 100), ("b", 1, 300), ("c", 1, 200)]);
        assert_eq!(acc, ["b"]);
        assert_eq!(rej.len(), 2);
        assert!(rej.iter().all(|(_, r, d)| *r == Reason::Superseded && d.contains(" b ")));
        assert_eq!(rej[0].0, "a");
        assert_eq!(rej[1].0, "c");
    }

    #[test]
    fn timestamp_tie_goes_to_greatest_response_id() {
        let (acc, _) = run(&[("b", 1, 100), ("c", 1, 100), ("a", 1, 100)]);
        assert_eq!(acc, ["c"]);
    }

    #[test]
    fn full_tie_keeps_first_in_input_order() {
        let mut d = Deduper::new();
        d.push(Position { file: 0, line: 2 }, response("same", 1, 100));
        d.push(Position { file: 1, line: 2 }, response("same", 1, 100));
        let out = d.finish();
        assert_eq!(out.accepted.len(), 1);
        assert_eq!(out.accepted[0].position.file, 0);
        assert_eq!(out.rejected[0].position.file, 1);
        assert_eq!(out.rejected[0].reason, Reason::Superseded);
    }

    #[test]
    fn repeated_response_id_keeps_first_kept_in_input_order() {
        let (acc, rej) = run(&[("x", 1, 100), ("y", 2, 100), ("x", 3, 100)]);
        assert_eq!(acc, ["x", "y"]);
        assert_eq!(rej.len(), 1);
        assert_eq!(rej[0].1, Reason::DuplicateResponseId);
    }

    #[test]
    fn duplicate_check_runs_after_resubmissions_settle() {
        // Respondent 1's early "x" is superseded by "z", so respondent 2's later "x" is
        // unique among kept records and stays.
        let (acc, rej) = run(&[("x", 1, 100), ("x", 2, 100), ("z", 1, 200)]);
        assert_eq!(acc, ["x", "z"]);
        assert_eq!(rej.len(), 1);
        assert_eq!(rej[0].1, Reason::Superseded);
    }

    #[test]
    fn accepted_stay_in_input_order_when_winner_arrives_late() {
        let (acc, _) = run(&[("a1", 1, 100), ("b", 2, 100), ("a2", 1, 200)]);
        assert_eq!(acc, ["b", "a2"]);
    }
}
