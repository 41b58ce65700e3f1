//! Deduplication (SPEC 3): one response per respondent, then one per `response_id`.
//!
//! Streaming and compact: each accepted response is offered as it is validated, and only the
//! current winner of each respondent is held, in a 64-byte record (plus its `response_id`
//! bytes in an arena and 4 bytes of hash table), so memory grows with respondents, not with
//! records or file sizes.
//!
//! The winner of a respondent is the maximum of (submitted_at, response_id bytewise, earlier
//! position): a total order, so the result does not depend on the order responses are offered
//! in. Input order is `(file index, line)`: files are read in bytewise order of relative path
//! and lines increase within a file.

use std::sync::Mutex;

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::catalogue::BEHAVIOUR_COUNT;
use crate::validate::{Instant, Reason, Response};

/// Where a record came from; orders records in input order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Index of the file in discovery order.
    pub file: u32,
    /// First physical line of the record.
    pub line: u64,
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

/// Bits per answer in the packed form: answers up to 63 (`likert_max − likert_min ≤ 63`).
pub const ANSWER_BITS: u32 = 6;

/// The compact record of a respondent's current winner.
#[derive(Debug, Clone, Copy)]
struct Stored {
    key: [u64; 2],
    secs: i64,
    answers: [u64; 2],
    nanos: u32,
    rid_offset: u32,
    line: u32,
    file: u16,
    institution: u16,
    district: u16,
    rid_len: u16,
}

fn pack(answers: &[u8; BEHAVIOUR_COUNT]) -> [u64; 2] {
    let mut out = [0u64; 2];
    for (b, a) in answers.iter().enumerate() {
        let bit = b as u32 * ANSWER_BITS;
        out[(bit / 64) as usize] |= u64::from(*a & 0x3f) << (bit % 64);
        // A 6-bit field may straddle the two words.
        if bit % 64 + ANSWER_BITS > 64 {
            out[1] |= u64::from(*a & 0x3f) >> (64 - bit % 64);
        }
    }
    out
}

fn unpack(packed: &[u64; 2]) -> [u8; BEHAVIOUR_COUNT] {
    let mut out = [0u8; BEHAVIOUR_COUNT];
    let wide = u128::from(packed[0]) | (u128::from(packed[1]) << 64);
    for (b, a) in out.iter_mut().enumerate() {
        *a = ((wide >> (b as u32 * ANSWER_BITS)) & 0x3f) as u8;
    }
    out
}

/// Append-only byte arena in fixed blocks (no reallocation spikes).
#[derive(Default)]
struct Arena {
    blocks: Vec<Vec<u8>>,
}

const ARENA_BLOCK: usize = 1 << 16;

impl Arena {
    fn push(&mut self, bytes: &[u8]) -> u32 {
        let fits = self.blocks.last().is_some_and(|b| b.len() + bytes.len() <= ARENA_BLOCK);
        if !fits {
            self.blocks.push(Vec::with_capacity(ARENA_BLOCK));
        }
        let block = self.blocks.len() - 1;
        let last = &mut self.blocks[block];
        let offset = (block * ARENA_BLOCK + last.len()) as u32;
        last.extend_from_slice(bytes);
        offset
    }

    fn get(&self, offset: u32, len: u16) -> &[u8] {
        let (block, at) = (offset as usize / ARENA_BLOCK, offset as usize % ARENA_BLOCK);
        &self.blocks[block][at..at + len as usize]
    }
}

/// Append-only storage in fixed blocks: no reallocation that would double memory at peak.
struct Blocks<T> {
    blocks: Vec<Vec<T>>,
    len: usize,
}

const BLOCK: usize = 1 << 12;

impl<T: Copy> Blocks<T> {
    fn new() -> Self {
        Blocks { blocks: Vec::new(), len: 0 }
    }

    fn push(&mut self, item: T) {
        if self.len.is_multiple_of(BLOCK) {
            self.blocks.push(Vec::with_capacity(BLOCK));
        }
        if let Some(last) = self.blocks.last_mut() {
            last.push(item);
        }
        self.len += 1;
    }

    fn get(&self, i: usize) -> &T {
        &self.blocks[i / BLOCK][i % BLOCK]
    }

    fn set(&mut self, i: usize, item: T) {
        self.blocks[i / BLOCK][i % BLOCK] = item;
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// Open-addressing table of record indices keyed by a 128-bit hash held in the records.
struct Table {
    slots: Vec<u32>, // index + 1; 0 is empty
    len: usize,
}

impl Table {
    fn with_capacity(n: usize) -> Table {
        let size = (n.max(1024) * 10 / 7).next_power_of_two();
        Table { slots: vec![0; size], len: 0 }
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The slot holding `key`, or the empty slot where it would go.
    fn find(&self, key: &[u64; 2], records: &Blocks<Stored>) -> usize {
        let mask = self.mask();
        let mut i = (key[0] as usize) & mask;
        loop {
            let s = self.slots[i];
            if s == 0 || records.get((s - 1) as usize).key == *key {
                return i;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self, records: &Blocks<Stored>) {
        let mut bigger = Table { slots: vec![0; self.slots.len() * 2], len: self.len };
        let mask = bigger.mask();
        for &s in &self.slots {
            if s != 0 {
                let mut i = (records.get((s - 1) as usize).key[0] as usize) & mask;
                while bigger.slots[i] != 0 {
                    i = (i + 1) & mask;
                }
                bigger.slots[i] = s;
            }
        }
        *self = bigger;
    }
}

struct Loser {
    position: Position,
    response_id: Box<str>,
    winner: u32,
}

/// One shard of the deduplicator: the respondents whose key hash falls in it.
struct Shard {
    records: Blocks<Stored>,
    rids: Arena,
    table: Table,
    losers: Vec<Loser>,
}

fn split_key(key: u128) -> [u64; 2] {
    [key as u64, (key >> 64) as u64]
}

fn position_of(s: &Stored) -> Position {
    Position { file: u32::from(s.file), line: u64::from(s.line) }
}

impl Shard {
    fn with_capacity(respondents: usize) -> Self {
        Shard {
            records: Blocks::new(),
            rids: Arena::default(),
            table: Table::with_capacity(respondents),
            losers: Vec::new(),
        }
    }

    fn rid(&self, s: &Stored) -> &[u8] {
        self.rids.get(s.rid_offset, s.rid_len)
    }

    /// True when `challenger` beats the stored winner: later `submitted_at`, then greater
    /// `response_id` bytewise, then earlier in input order.
    fn beats(&self, when: Instant, rid: &[u8], position: Position, current: &Stored) -> bool {
        let theirs = Instant { secs: current.secs, nanos: current.nanos };
        (when, rid, std::cmp::Reverse(position)) > (theirs, self.rid(current), std::cmp::Reverse(position_of(current)))
    }

    fn push(&mut self, position: Position, response: &Response) {
        let key = split_key(response.respondent);
        if self.table.len * 10 >= self.table.slots.len() * 7 {
            self.table.grow(&self.records);
        }
        let slot = self.table.find(&key, &self.records);
        let rid = response.response_id.as_bytes();
        let existing = self.table.slots[slot];
        if existing != 0 {
            let index = existing - 1;
            let current = *self.records.get(index as usize);
            if self.beats(response.submitted_at, rid, position, &current) {
                let old_rid: Box<str> = String::from_utf8_lossy(self.rid(&current)).into();
                self.losers.push(Loser { position: position_of(&current), response_id: old_rid, winner: index });
                let stored = self.stored(key, position, response);
                self.records.set(index as usize, stored);
            } else {
                self.losers.push(Loser { position, response_id: response.response_id.clone(), winner: index });
            }
            return;
        }
        let stored = self.stored(key, position, response);
        self.records.push(stored);
        self.table.slots[slot] = self.records.len() as u32;
        self.table.len += 1;
    }

    fn stored(&mut self, key: [u64; 2], position: Position, response: &Response) -> Stored {
        let rid = response.response_id.as_bytes();
        Stored {
            key,
            secs: response.submitted_at.secs,
            answers: pack(&response.answers),
            nanos: response.submitted_at.nanos,
            rid_offset: self.rids.push(rid),
            line: position.line as u32,
            file: position.file as u16,
            institution: response.institution as u16,
            district: response.district,
            rid_len: rid.len() as u16,
        }
    }

    /// Rejections of the superseded submissions, naming each respondent's winner.
    fn superseded(&mut self) -> Vec<DedupRejection> {
        let losers = std::mem::take(&mut self.losers);
        losers
            .into_iter()
            .map(|l| DedupRejection {
                position: l.position,
                reason: Reason::Superseded,
                response_id: l.response_id.into(),
                detail: format!(
                    "superseded by response_id {} of the same respondent_key",
                    String::from_utf8_lossy(self.rid(self.records.get(l.winner as usize)))
                ),
            })
            .collect()
    }
}

/// Shards: a power of two; the shard of a respondent is taken from the key's second word
/// (the table inside a shard uses the first).
const SHARDS: usize = 64;
/// Bits of a global record id that hold the index within its shard.
const SHARD_SHIFT: u32 = 26;

fn global_id(shard: usize, index: usize) -> u32 {
    ((shard as u32) << SHARD_SHIFT) | index as u32
}

fn split_id(id: u32) -> (usize, usize) {
    ((id >> SHARD_SHIFT) as usize, (id & ((1 << SHARD_SHIFT) - 1)) as usize)
}

/// Streaming deduplicator, sharded by respondent so that validation workers push in parallel.
pub struct Deduper {
    shards: Vec<Mutex<Shard>>,
}

impl Default for Deduper {
    fn default() -> Self {
        Deduper::with_capacity(0)
    }
}

fn shard_of(key: u128) -> usize {
    ((key >> 64) as usize) & (SHARDS - 1)
}

impl Deduper {
    /// An empty deduplicator.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty deduplicator expecting about `respondents` respondents.
    pub fn with_capacity(respondents: usize) -> Self {
        Deduper { shards: (0..SHARDS).map(|_| Mutex::new(Shard::with_capacity(respondents / SHARDS))).collect() }
    }

    /// Offers a response that passed validation. `position.file` must fit 16 bits and
    /// `position.line` 32 bits (checked by the caller).
    pub fn push(&self, position: Position, response: &Response) {
        let mut shard = self.shards[shard_of(response.respondent)].lock().unwrap_or_else(|p| p.into_inner());
        shard.push(position, response);
    }

    /// Offers a batch, taking each shard's lock once.
    pub fn push_all(&self, items: &mut [(Position, Response)]) {
        items.sort_unstable_by_key(|(_, r)| shard_of(r.respondent));
        for run in items.chunk_by(|a, b| shard_of(a.1.respondent) == shard_of(b.1.respondent)) {
            let mut shard = self.shards[shard_of(run[0].1.respondent)].lock().unwrap_or_else(|p| p.into_inner());
            for (position, response) in run {
                shard.push(*position, response);
            }
        }
    }

    /// Settles resubmissions, then repeated `response_id`s among the kept.
    pub fn finish(self) -> Deduped {
        let mut shards: Vec<Shard> =
            self.shards.into_iter().map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner())).collect();
        let mut rejected: Vec<DedupRejection> = shards.par_iter_mut().flat_map_iter(|s| s.superseded()).collect();
        for s in &mut shards {
            s.table = Table::with_capacity(0);
        }
        let shards: Vec<ShardStore> =
            shards.into_iter().map(|s| ShardStore { records: s.records, rids: s.rids }).collect();

        // Among kept records, the first of each response_id in input order stays. Records are
        // bucketed by a hash of their response_id, and buckets are settled in parallel.
        let buckets = SHARDS;
        let per_shard: Vec<Vec<Vec<u32>>> = shards
            .par_iter()
            .enumerate()
            .map(|(shard, store)| {
                let mut out = vec![Vec::new(); buckets];
                for index in 0..store.records.len() {
                    let rid = store.rid(store.records.get(index));
                    let bucket = (xxhash_rust::xxh3::xxh3_64(rid) as usize) & (buckets - 1);
                    out[bucket].push(global_id(shard, index));
                }
                out
            })
            .collect();
        let settled: Vec<(Vec<u32>, Vec<DedupRejection>)> = (0..buckets)
            .into_par_iter()
            .map(|bucket| {
                // Gathered per task, so only the buckets being settled are copied at a time.
                let ids: Vec<u32> = per_shard.iter().flat_map(|b| b[bucket].iter().copied()).collect();
                let record = |id: u32| {
                    let (shard, index) = split_id(id);
                    (&shards[shard], shards[shard].records.get(index))
                };
                let mut first: FxHashMap<&[u8], u32> =
                    FxHashMap::with_capacity_and_hasher(ids.len(), Default::default());
                for &id in &ids {
                    let (store, s) = record(id);
                    let rid = store.rid(s);
                    let entry = first.entry(rid).or_insert(id);
                    if position_of(record(*entry).1) > position_of(s) {
                        *entry = id;
                    }
                }
                let mut keep = Vec::with_capacity(ids.len());
                let mut dups = Vec::new();
                for &id in &ids {
                    let (store, s) = record(id);
                    let rid = store.rid(s);
                    let winner = first.get(rid).copied().unwrap_or(id);
                    if winner == id {
                        keep.push(id);
                    } else {
                        let kept = position_of(record(winner).1);
                        let text = String::from_utf8_lossy(rid).into_owned();
                        dups.push(DedupRejection {
                            position: position_of(s),
                            reason: Reason::DuplicateResponseId,
                            detail: format!(
                                "response_id {text} already accepted (file #{} line {})",
                                kept.file, kept.line
                            ),
                            response_id: text,
                        });
                    }
                }
                (keep, dups)
            })
            .collect();
        drop(per_shard);
        let mut keep = Vec::with_capacity(settled.iter().map(|(k, _)| k.len()).sum());
        for (k, d) in settled {
            keep.extend(k);
            rejected.extend(d);
        }
        rejected.par_sort_unstable_by_key(|r| r.position);
        Deduped { accepted: Accepted { shards, keep }, rejected }
    }
}

/// A shard's records after deduplication.
struct ShardStore {
    records: Blocks<Stored>,
    rids: Arena,
}

impl ShardStore {
    fn rid(&self, s: &Stored) -> &[u8] {
        self.rids.get(s.rid_offset, s.rid_len)
    }
}

/// The accepted responses (in no particular order; see [`Accepted::in_input_order`]).
pub struct Accepted {
    shards: Vec<ShardStore>,
    keep: Vec<u32>,
}

/// What scoring needs of an accepted response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptedResponse {
    /// Index into the master.
    pub institution: u32,
    /// Index into the regions' districts.
    pub district: u16,
    /// Behaviour score numerators.
    pub answers: [u8; BEHAVIOUR_COUNT],
}

impl Accepted {
    fn stored(&self, i: usize) -> (&ShardStore, &Stored) {
        let (shard, index) = split_id(self.keep[i]);
        (&self.shards[shard], self.shards[shard].records.get(index))
    }

    /// Number of accepted responses.
    pub fn len(&self) -> usize {
        self.keep.len()
    }

    /// True when nothing was accepted.
    pub fn is_empty(&self) -> bool {
        self.keep.is_empty()
    }

    /// Institution of the `i`-th accepted response.
    pub fn institution(&self, i: usize) -> u32 {
        u32::from(self.stored(i).1.institution)
    }

    /// The `i`-th accepted response.
    pub fn get(&self, i: usize) -> AcceptedResponse {
        let s = self.stored(i).1;
        AcceptedResponse { institution: u32::from(s.institution), district: s.district, answers: unpack(&s.answers) }
    }

    /// Position and `response_id` of the `i`-th accepted response.
    pub fn identity(&self, i: usize) -> (Position, String) {
        let (store, s) = self.stored(i);
        (position_of(s), String::from_utf8_lossy(store.rid(s)).into_owned())
    }

    /// Every accepted response's position and `response_id`, in input order.
    pub fn in_input_order(&self) -> Vec<(Position, String)> {
        let mut all: Vec<_> = (0..self.len()).map(|i| self.identity(i)).collect();
        all.sort();
        all
    }

    /// Builds a set directly (tests and tools): responses with their positions, no
    /// deduplication.
    pub fn from_responses(items: &[(Position, Response)]) -> Accepted {
        let mut shard = Shard::with_capacity(0);
        let mut records = Blocks::new();
        for (p, r) in items {
            let stored = shard.stored(split_key(r.respondent), *p, r);
            records.push(stored);
        }
        let keep = (0..records.len()).map(|i| global_id(0, i)).collect();
        Accepted { shards: vec![ShardStore { records, rids: shard.rids }], keep }
    }
}

/// Result of deduplication.
pub struct Deduped {
    /// Accepted responses, in input order.
    pub accepted: Accepted,
    /// Rejections, in input order.
    pub rejected: Vec<DedupRejection>,
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let d = Deduper::new();
        for (i, (rid, key, secs)) in records.iter().enumerate() {
            d.push(Position { file: 0, line: i as u64 + 2 }, &response(rid, *key, *secs));
        }
        let out = d.finish();
        (
            out.accepted.in_input_order().into_iter().map(|(_, rid)| rid).collect(),
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
        let d = Deduper::new();
        d.push(Position { file: 0, line: 2 }, &response("same", 1, 100));
        d.push(Position { file: 1, line: 2 }, &response("same", 1, 100));
        let out = d.finish();
        assert_eq!(out.accepted.len(), 1);
        assert_eq!(out.accepted.identity(0).0.file, 0);
        assert_eq!(out.rejected[0].position.file, 1);
        assert_eq!(out.rejected[0].reason, Reason::Superseded);
    }

    #[test]
    fn full_tie_keeps_first_even_when_offered_late() {
        let d = Deduper::new();
        d.push(Position { file: 1, line: 2 }, &response("same", 1, 100));
        d.push(Position { file: 0, line: 9 }, &response("same", 1, 100));
        let out = d.finish();
        assert_eq!(out.accepted.identity(0).0, Position { file: 0, line: 9 });
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

    #[test]
    fn many_respondents_grow_the_table() {
        let d = Deduper::new();
        for i in 0..50_000u128 {
            d.push(Position { file: 0, line: i as u64 }, &response(&format!("r{i}"), i * 7919, 1));
        }
        for i in 0..50_000u128 {
            d.push(Position { file: 1, line: i as u64 }, &response(&format!("s{i}"), i * 7919, 2));
        }
        let out = d.finish();
        assert_eq!(out.accepted.len(), 50_000);
        assert_eq!(out.rejected.len(), 50_000);
        assert!(out.rejected.iter().all(|r| r.position.file == 0 && r.reason == Reason::Superseded));
    }

    #[test]
    fn answers_pack_and_unpack() {
        let mut a = [0u8; 21];
        for (i, v) in a.iter_mut().enumerate() {
            *v = (i as u8 * 7) % 64;
        }
        assert_eq!(unpack(&pack(&a)), a);
        assert_eq!(unpack(&pack(&[63; 21])), [63; 21]);
    }
}
