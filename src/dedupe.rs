//! Deduplication (SPEC 3): one response per respondent, then one per `response_id`.
//!
//! Streaming and compact: each accepted response is offered as it is validated (a chunk's
//! worth at a time), and only the current winner of each respondent is held, in a 40-byte
//! record (plus its `response_id` bytes in an arena and 4 bytes of hash table), so memory
//! grows with respondents, not with records or file sizes. Scores are not held here: see
//! [`crate::score::Tally`].
//!
//! The winner of a respondent is the maximum of (submitted_at, response_id bytewise, earlier
//! position): a total order, so the result does not depend on the order responses are offered
//! in. Input order is `(file index, line)`: files are read in bytewise order of relative path
//! and lines increase within a file.

use std::sync::Mutex;

use rayon::prelude::*;

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

/// The compact record of a respondent's current winner: what the order of SPEC 3 needs
/// (respondent, `submitted_at`, `response_id`, position) and nothing else; scores are summed
/// as records are read (see [`crate::score::Tally`]).
#[derive(Debug, Clone, Copy)]
struct Stored {
    key: [u64; 2],
    secs: i64,
    nanos: u32,
    rid_offset: u32,
    line: u32,
    file: u16,
    rid_len: u16,
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

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.blocks.iter().flatten()
    }
}

/// Records a shard can hold: a table slot keeps the record index in 24 bits.
const MAX_PER_SHARD: usize = (1 << 24) - 2;

/// Open-addressing table of record indices keyed by a 128-bit hash held in the records. A slot
/// holds `(index + 1) << 8 | tag`, the tag being 8 more bits of the key: a probe that meets
/// another respondent's slot is almost always told apart without reading its record (a cache
/// miss), which is what dominated inserting 5 million respondents.
struct Table {
    slots: Vec<u32>, // 0 is empty
    len: usize,
}

fn tag_of(key: &[u64; 2]) -> u32 {
    (key[0] >> 56) as u32
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
        let tag = tag_of(key);
        let mut i = (key[0] as usize) & mask;
        loop {
            let s = self.slots[i];
            if s == 0 || (s & 0xff == tag && records.get(((s >> 8) - 1) as usize).key == *key) {
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
                let mut i = (records.get(((s >> 8) - 1) as usize).key[0] as usize) & mask;
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

/// More respondents than deduplication can hold (about a billion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

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

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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

    fn push(&mut self, offer: &Offer, rid: &[u8]) -> Result<(), Full> {
        let key = split_key(offer.respondent);
        if self.table.len * 10 >= self.table.slots.len() * 7 {
            self.table.grow(&self.records);
        }
        let slot = self.table.find(&key, &self.records);
        let existing = self.table.slots[slot];
        if existing != 0 {
            let index = (existing >> 8) - 1;
            let current = *self.records.get(index as usize);
            if self.beats(offer.submitted_at, rid, offer.position, &current) {
                let old_rid = text(self.rid(&current)).into_boxed_str();
                self.losers.push(Loser { position: position_of(&current), response_id: old_rid, winner: index });
                let stored = self.stored(key, offer, rid);
                self.records.set(index as usize, stored);
            } else {
                let response_id = text(rid).into_boxed_str();
                self.losers.push(Loser { position: offer.position, response_id, winner: index });
            }
            return Ok(());
        }
        if self.records.len() >= MAX_PER_SHARD {
            return Err(Full);
        }
        let stored = self.stored(key, offer, rid);
        self.records.push(stored);
        self.table.slots[slot] = ((self.records.len() as u32) << 8) | tag_of(&key);
        self.table.len += 1;
        Ok(())
    }

    /// Reads the table slot of every offer before any is inserted: the reads miss the cache
    /// independently, so the processor overlaps them, where inserting one by one would wait for
    /// each miss in turn (that wait was most of deduplication's time).
    fn touch(&self, offers: &[Offer]) {
        let mask = self.table.mask();
        let seen = offers.iter().fold(0u32, |acc, o| acc ^ self.table.slots[(o.respondent as u64 as usize) & mask]);
        std::hint::black_box(seen);
    }

    fn stored(&mut self, key: [u64; 2], offer: &Offer, rid: &[u8]) -> Stored {
        Stored {
            key,
            secs: offer.submitted_at.secs,
            nanos: offer.submitted_at.nanos,
            rid_offset: self.rids.push(rid),
            line: offer.position.line as u32,
            file: offer.position.file as u16,
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
                    text(self.rid(self.records.get(l.winner as usize)))
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

/// What deduplication needs of an accepted response.
#[derive(Debug, Clone, Copy)]
struct Offer {
    position: Position,
    respondent: u128,
    submitted_at: Instant,
    rid_start: u32,
    rid_len: u16,
}

/// Accepted responses gathered by a worker (their `response_id`s copied into one buffer) to be
/// offered together: see [`Deduper::push_batch`].
#[derive(Debug, Default)]
pub struct Batch {
    offers: Vec<Offer>,
    rids: Vec<u8>,
}

impl Batch {
    /// Adds a response read at `position`.
    pub fn add(&mut self, position: Position, response: &Response) {
        let rid = response.response_id.as_bytes();
        self.offers.push(Offer {
            position,
            respondent: response.respondent,
            submitted_at: response.submitted_at,
            rid_start: self.rids.len() as u32,
            rid_len: rid.len() as u16,
        });
        self.rids.extend_from_slice(rid);
    }
}

/// Streaming deduplicator, sharded by respondent so that validation workers push in parallel.
pub struct Deduper {
    shards: Vec<Padded<Mutex<Shard>>>,
}

/// A shard's lock on a cache line of its own: two workers taking neighbouring shards' locks
/// would otherwise pass one line back and forth between cores on every record.
#[repr(align(128))]
struct Padded<T>(T);

impl Default for Deduper {
    fn default() -> Self {
        Deduper::with_capacity(0)
    }
}

fn shard_of(key: u128) -> usize {
    ((key >> 64) as usize) & (SHARDS - 1)
}

/// Entries of `(response_id hash, record)` sorted at a time while looking for repeated
/// `response_id`s (8 bytes each): up to 8 M kept records are checked in one pass (64 MiB at
/// most, 40 MiB at 5 M respondents, less than the respondent tables just freed held); more are
/// checked in several passes over a slice of the hash space each, so memory stays bounded.
const RID_PASS_ENTRIES: usize = 1 << 23;

impl Deduper {
    /// An empty deduplicator.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty deduplicator expecting about `respondents` respondents.
    pub fn with_capacity(respondents: usize) -> Self {
        let shard = || Padded(Mutex::new(Shard::with_capacity(respondents / SHARDS)));
        Deduper { shards: (0..SHARDS).map(|_| shard()).collect() }
    }

    /// Offers a response that passed validation. `position.file` must fit 16 bits and
    /// `position.line` 32 bits (checked by the caller).
    pub fn push(&self, position: Position, response: &Response) -> Result<(), Full> {
        let mut batch = Batch::default();
        batch.add(position, response);
        self.push_batch(&mut batch)
    }

    /// Offers a batch of responses (emptying it), taking each shard's lock once.
    pub fn push_batch(&self, batch: &mut Batch) -> Result<(), Full> {
        batch.offers.sort_unstable_by_key(|o| shard_of(o.respondent));
        let mut result = Ok(());
        for run in batch.offers.chunk_by(|a, b| shard_of(a.respondent) == shard_of(b.respondent)) {
            let mut shard = self.shards[shard_of(run[0].respondent)].0.lock().unwrap_or_else(|p| p.into_inner());
            shard.touch(run);
            for offer in run {
                let rid = &batch.rids[offer.rid_start as usize..offer.rid_start as usize + offer.rid_len as usize];
                result = result.and(shard.push(offer, rid));
            }
        }
        batch.offers.clear();
        batch.rids.clear();
        result
    }

    /// Settles resubmissions, then repeated `response_id`s among the kept.
    pub fn finish(self) -> Deduped {
        self.finish_in_passes(RID_PASS_ENTRIES)
    }

    fn finish_in_passes(self, pass_entries: usize) -> Deduped {
        let mut shards: Vec<Shard> =
            self.shards.into_iter().map(|m| m.0.into_inner().unwrap_or_else(|p| p.into_inner())).collect();
        let mut rejected: Vec<DedupRejection> = shards.par_iter_mut().flat_map_iter(|s| s.superseded()).collect();
        for s in &mut shards {
            s.table = Table::with_capacity(0);
        }
        let shards: Vec<ShardStore> =
            shards.into_iter().map(|s| ShardStore { records: s.records, rids: s.rids }).collect();
        let (dropped, duplicates) = repeated_response_ids(&shards, pass_entries);
        rejected.extend(duplicates);
        rejected.par_sort_unstable_by_key(|r| r.position);
        Deduped { kept: Kept { shards, dropped }, rejected }
    }
}

/// Among kept records, the first of each `response_id` in input order stays; the others are
/// `duplicate_response_id`. Records are hashed by `response_id` in passes (a slice of the hash
/// space each), sorted by hash, and only records sharing a hash are compared byte for byte.
/// Returns the global ids of the records dropped (sorted) and their rejections.
fn repeated_response_ids(shards: &[ShardStore], pass_entries: usize) -> (Vec<u32>, Vec<DedupRejection>) {
    let total: usize = shards.iter().map(|s| s.records.len()).sum();
    let passes = total.div_ceil(pass_entries).max(1) as u64;
    let mut dropped = Vec::new();
    let mut rejections = Vec::new();
    let record = |id: u32| {
        let (shard, index) = split_id(id);
        (&shards[shard], shards[shard].records.get(index))
    };
    for pass in 0..passes {
        // One entry per record of this pass: 32 bits of the id's hash above the record's id.
        let mut hashed: Vec<u64> = shards
            .par_iter()
            .enumerate()
            .flat_map_iter(|(shard, store)| {
                store.records.iter().enumerate().filter_map(move |(index, s)| {
                    let hash = xxhash_rust::xxh3::xxh3_64(store.rid(s));
                    ((hash & 0xffff_ffff) % passes == pass)
                        .then(|| ((hash >> 32) << 32) | u64::from(global_id(shard, index)))
                })
            })
            .collect();
        hashed.par_sort_unstable();
        for run in hashed.chunk_by(|a, b| a >> 32 == b >> 32).filter(|run| run.len() > 1) {
            // The same hash: compare the ids themselves, first in input order first.
            let mut ids: Vec<u32> = run.iter().map(|entry| *entry as u32).collect();
            ids.sort_by_key(|id| {
                let (store, s) = record(*id);
                (store.rid(s), position_of(s))
            });
            for same in ids.chunk_by(|a, b| {
                let ((sa, a), (sb, b)) = (record(*a), record(*b));
                sa.rid(a) == sb.rid(b)
            }) {
                let kept = position_of(record(same[0]).1);
                for &id in &same[1..] {
                    let (store, s) = record(id);
                    let rid = text(store.rid(s));
                    dropped.push(id);
                    rejections.push(DedupRejection {
                        position: position_of(s),
                        reason: Reason::DuplicateResponseId,
                        detail: format!("response_id {rid} already accepted (file #{} line {})", kept.file, kept.line),
                        response_id: rid,
                    });
                }
            }
        }
    }
    dropped.sort_unstable();
    (dropped, rejections)
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

/// The kept responses' identities (their scores were summed as they were read).
pub struct Kept {
    shards: Vec<ShardStore>,
    /// Winners of their respondent dropped as `duplicate_response_id` (global ids, sorted).
    dropped: Vec<u32>,
}

impl Kept {
    /// Number of accepted responses.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.records.len()).sum::<usize>() - self.dropped.len()
    }

    /// True when nothing was accepted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every accepted response's position and `response_id`, in input order.
    pub fn in_input_order(&self) -> Vec<(Position, String)> {
        let mut all = Vec::with_capacity(self.len());
        for (shard, store) in self.shards.iter().enumerate() {
            for (index, s) in store.records.iter().enumerate() {
                if self.dropped.binary_search(&global_id(shard, index)).is_err() {
                    all.push((position_of(s), text(store.rid(s))));
                }
            }
        }
        all.sort();
        all
    }
}

/// Result of deduplication.
pub struct Deduped {
    /// The accepted responses.
    pub kept: Kept,
    /// Rejections, in input order.
    pub rejected: Vec<DedupRejection>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(rid: &str, key: u128, secs: i64) -> Response<'static> {
        Response {
            response_id: rid.to_string().into(),
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
            d.push(Position { file: 0, line: i as u64 + 2 }, &response(rid, *key, *secs)).unwrap();
        }
        let out = d.finish();
        (
            out.kept.in_input_order().into_iter().map(|(_, rid)| rid).collect(),
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
        d.push(Position { file: 0, line: 2 }, &response("same", 1, 100)).unwrap();
        d.push(Position { file: 1, line: 2 }, &response("same", 1, 100)).unwrap();
        let out = d.finish();
        assert_eq!(out.kept.len(), 1);
        assert_eq!(out.kept.in_input_order()[0].0.file, 0);
        assert_eq!(out.rejected[0].position.file, 1);
        assert_eq!(out.rejected[0].reason, Reason::Superseded);
    }

    #[test]
    fn full_tie_keeps_first_even_when_offered_late() {
        let d = Deduper::new();
        d.push(Position { file: 1, line: 2 }, &response("same", 1, 100)).unwrap();
        d.push(Position { file: 0, line: 9 }, &response("same", 1, 100)).unwrap();
        let out = d.finish();
        assert_eq!(out.kept.in_input_order()[0].0, Position { file: 0, line: 9 });
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
            d.push(Position { file: 0, line: i as u64 }, &response(&format!("r{i}"), i * 7919, 1)).unwrap();
        }
        for i in 0..50_000u128 {
            d.push(Position { file: 1, line: i as u64 }, &response(&format!("s{i}"), i * 7919, 2)).unwrap();
        }
        let out = d.finish();
        assert_eq!(out.kept.len(), 50_000);
        assert_eq!(out.rejected.len(), 50_000);
        assert!(out.rejected.iter().all(|r| r.position.file == 0 && r.reason == Reason::Superseded));
    }

    #[test]
    fn repeated_ids_are_found_across_hash_passes() {
        // More kept records than one pass holds, with repeated ids spread over the hash space.
        let d = Deduper::new();
        let n = 5000u128;
        for i in 0..n {
            let rid = format!("r{}", i % (n - 300));
            d.push(Position { file: 0, line: i as u64 }, &response(&rid, i, 1)).unwrap();
        }
        let out = d.finish_in_passes(1000);
        assert_eq!(out.kept.len() as u128, n - 300);
        assert_eq!(out.rejected.len(), 300);
        assert!(out.rejected.iter().all(|r| r.reason == Reason::DuplicateResponseId));
        assert_eq!(out.rejected[0].position.line as u128, n - 300);
        assert!(out.rejected[0].detail.ends_with("(file #0 line 0)"), "{}", out.rejected[0].detail);
    }

    #[test]
    fn a_probe_past_other_respondents_finds_the_right_one() {
        // Keys equal in the bits that place them in the table and in the tag.
        let d = Deduper::new();
        let keys: Vec<u128> = (0..50u128).map(|i| (i << 100) | 0xAB00_0000_0000_0007).collect();
        for (i, k) in keys.iter().enumerate() {
            d.push(Position { file: 0, line: i as u64 }, &response(&format!("a{i}"), *k, 1)).unwrap();
        }
        for (i, k) in keys.iter().enumerate() {
            d.push(Position { file: 1, line: i as u64 }, &response(&format!("b{i}"), *k, 2)).unwrap();
        }
        let out = d.finish();
        let kept: Vec<String> = out.kept.in_input_order().into_iter().map(|(_, r)| r).collect();
        assert_eq!(kept, (0..50).map(|i| format!("b{i}")).collect::<Vec<_>>());
        assert_eq!(out.rejected.len(), 50);
    }
}
