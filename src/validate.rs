//! Validation: one raw record in, an accepted [`Response`] or a [`Rejection`] out (SPEC 3).
//!
//! **Invariant:** pure and infallible. A bad record is a value, never an `Err`; the checks run
//! in the spec's order of precedence, so a record with several faults gets the first reason
//! that applies, and within one reason the first field in the spec's field order.

use rustc_hash::FxHashMap;
use std::borrow::Cow;

use chrono::{NaiveDate, NaiveTime};
use serde_json::Value;

use crate::catalogue::{value_of_behaviour, BEHAVIOUR_CODES, BEHAVIOUR_COUNT};
use crate::config::{Instrument, SurveyRules};
use crate::ingest::fields::{self, *};
use crate::ingest::{Layout, RawRecord};
use crate::reference::{normalise_district, parse_int, Master, Regions};

/// Why a record was rejected, in order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// Wrong field count, broken quoting, invalid JSON, a JSON value that is not an object.
    MalformedRow,
    /// Not UTF-8.
    InvalidEncoding,
    /// A required field is empty or absent.
    MissingField,
    /// A field is unparseable or out of range.
    InvalidValue,
    /// `survey_year` is not the run's year.
    YearMismatch,
    /// `institution_code` is not in the year's master.
    UnknownInstitution,
    /// `work_district_code` is not a district.
    UnknownRegion,
    /// `work_province_code` is not the district's province.
    RegionMismatch,
    /// No, too many, repeated or unknown picks.
    InvalidPicks,
    /// Faster than `min_duration_seconds`.
    Speeder,
    /// Likert: all 21 answers equal.
    Straightliner,
    /// An earlier submission of a respondent who submitted again.
    Superseded,
    /// A `response_id` already kept.
    DuplicateResponseId,
}

impl Reason {
    /// Every reason, in precedence order.
    pub const ALL: [Reason; 13] = [
        Reason::MalformedRow,
        Reason::InvalidEncoding,
        Reason::MissingField,
        Reason::InvalidValue,
        Reason::YearMismatch,
        Reason::UnknownInstitution,
        Reason::UnknownRegion,
        Reason::RegionMismatch,
        Reason::InvalidPicks,
        Reason::Speeder,
        Reason::Straightliner,
        Reason::Superseded,
        Reason::DuplicateResponseId,
    ];

    /// The code written to the quarantine and the manifest.
    pub fn code(self) -> &'static str {
        match self {
            Reason::MalformedRow => "malformed_row",
            Reason::InvalidEncoding => "invalid_encoding",
            Reason::MissingField => "missing_field",
            Reason::InvalidValue => "invalid_value",
            Reason::YearMismatch => "year_mismatch",
            Reason::UnknownInstitution => "unknown_institution",
            Reason::UnknownRegion => "unknown_region",
            Reason::RegionMismatch => "region_mismatch",
            Reason::InvalidPicks => "invalid_picks",
            Reason::Speeder => "speeder",
            Reason::Straightliner => "straightliner",
            Reason::Superseded => "superseded",
            Reason::DuplicateResponseId => "duplicate_response_id",
        }
    }
}

/// An instant with nanosecond precision, ordered in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    /// Seconds since the Unix epoch, UTC.
    pub secs: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
}

/// An accepted response, reduced to what deduplication and scoring need. It borrows the
/// `response_id` from the record when it can (CSV), so accepting a record allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response<'r> {
    /// Trimmed `response_id`.
    pub response_id: Cow<'r, str>,
    /// 128-bit hash of the trimmed `respondent_key` (see ARCHITECTURE.md on collisions).
    pub respondent: u128,
    /// `submitted_at`.
    pub submitted_at: Instant,
    /// Index into the master.
    pub institution: u32,
    /// Index into the regions' districts (`work_district_code`).
    pub district: u16,
    /// Behaviour score numerators in catalogue order: votes 0/1, likert `answer − likert_min`.
    pub answers: [u8; BEHAVIOUR_COUNT],
}

impl Response<'_> {
    /// The same response, owning its `response_id`.
    pub fn into_owned(self) -> Response<'static> {
        Response { response_id: Cow::Owned(self.response_id.into_owned()), ..self }
    }
}

/// A rejected record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The first reason that applies.
    pub reason: Reason,
    /// Human-readable detail naming the field.
    pub detail: String,
    /// The record's `response_id`, when one could be read.
    pub response_id: Option<String>,
}

/// What validation needs besides the record.
pub struct Context<'a> {
    year: i32,
    master: &'a Master,
    regions: &'a Regions,
    rules: &'a SurveyRules,
    /// Votes catalogue: upper-case code → index (behaviours 0..21 in catalogue order, then
    /// the distractors).
    catalogue: FxHashMap<Vec<u8>, u8>,
    /// The same for codes of at most 7 bytes, keyed by [`short_code`]: one multiply to hash
    /// instead of a byte-string hash, for the several picks of every record.
    short_catalogue: FxHashMap<u64, u8>,
}

/// An ASCII code of at most 7 bytes, upper-cased and packed with its length into one word.
fn short_code(code: &[u8]) -> Option<u64> {
    if code.len() > 7 || !code.is_ascii() {
        return None;
    }
    let packed = code.iter().rev().fold(0u64, |acc, b| (acc << 8) | u64::from(b.to_ascii_uppercase()));
    Some(packed | ((code.len() as u64) << 56))
}

impl<'a> Context<'a> {
    /// Builds the lookups for one run.
    pub fn new(year: i32, master: &'a Master, regions: &'a Regions, rules: &'a SurveyRules) -> Self {
        let catalogue = BEHAVIOUR_CODES
            .iter()
            .map(|c| c.as_bytes().to_vec())
            .chain(rules.distractors.iter().map(|d| d.as_bytes().to_vec()))
            .enumerate()
            .map(|(i, code)| (code, i as u8))
            .collect::<FxHashMap<Vec<u8>, u8>>();
        let short_catalogue = catalogue.iter().filter_map(|(code, i)| Some((short_code(code)?, *i))).collect();
        Context { year, master, regions, rules, catalogue, short_catalogue }
    }
}

/// A field as found in a record, before it is checked.
#[derive(Debug, Clone)]
enum FieldValue<'r> {
    Absent,
    /// Trimmed, non-empty text (a JSON number as its literal text).
    Text(Cow<'r, str>),
    /// A JSON bool, object or array where a scalar belongs.
    NotScalar(&'static str),
    /// A JSON array of picks; `None` for an element that is not a string.
    List(Vec<Option<String>>),
}

type Fields<'r> = [FieldValue<'r>; FIELD_COUNT];

fn reject(reason: Reason, detail: impl Into<String>, response_id: Option<String>) -> Rejection {
    Rejection { reason, detail: detail.into(), response_id }
}

/// Validates one record.
pub fn validate<'r>(rec: &'r RawRecord, layout: &Layout, ctx: &Context) -> Result<Response<'r>, Rejection> {
    match layout {
        Layout::Csv { columns, width } => {
            if let Some(fault) = rec.fault {
                return Err(reject(Reason::MalformedRow, format!("broken quoting: {fault}"), None));
            }
            if rec.len() != *width {
                return Err(reject(Reason::MalformedRow, format!("{} fields, header has {width}", rec.len()), None));
            }
            let Ok(raw) = std::str::from_utf8(&rec.raw) else {
                return Err(reject(Reason::InvalidEncoding, "record is not valid UTF-8", None));
            };
            // Unquoting only drops ASCII bytes (whole characters) from valid UTF-8: the
            // values are valid UTF-8 too.
            let values = if rec.in_raw { raw } else { std::str::from_utf8(&rec.values).unwrap_or("") };
            // The votes instrument reads no likert item: its field array stops before them.
            match ctx.rules.instrument {
                Instrument::Votes => check(&csv_fields::<LIKERT_FIRST>(rec, values, columns), ctx),
                Instrument::Likert => check(&csv_fields::<FIELD_COUNT>(rec, values, columns), ctx),
            }
        }
        Layout::Jsonl => {
            let Ok(text) = std::str::from_utf8(&rec.raw) else {
                return Err(reject(Reason::InvalidEncoding, "line is not valid UTF-8", None));
            };
            if let Some(fault) = rec.fault {
                return Err(reject(Reason::MalformedRow, fault, None));
            }
            let json = match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => map,
                Ok(other) => {
                    return Err(reject(
                        Reason::MalformedRow,
                        format!("JSON value is {}, not an object", json_kind(&other)),
                        None,
                    ))
                }
                Err(e) => return Err(reject(Reason::MalformedRow, format!("invalid JSON: {e}"), None)),
            };
            check(&json_fields(&json), ctx).map(Response::into_owned)
        }
    }
}

/// The first `N` field slots of a CSV record; `values` is the text its field offsets point into.
fn csv_fields<'r, const N: usize>(
    rec: &'r RawRecord,
    values: &'r str,
    columns: &[Option<usize>; FIELD_COUNT],
) -> [FieldValue<'r>; N] {
    let mut fields = [const { FieldValue::Absent }; N];
    for (slot, column) in columns.iter().take(N).enumerate() {
        let Some(i) = *column else { continue };
        // Fields are the record's bytes less ASCII quotes and delimiters, so every field end
        // is a character boundary.
        fields[slot] = match values.get(rec.field_start(i)..rec.ends[i] as usize) {
            Some(text) => text_value(Cow::Borrowed(text)),
            None => text_value(String::from_utf8_lossy(rec.field(i))),
        };
    }
    fields
}

fn text_value(text: Cow<'_, str>) -> FieldValue<'_> {
    let trimmed_len = trim(&text).len();
    if trimmed_len == 0 {
        return FieldValue::Absent;
    }
    if trimmed_len == text.len() {
        return FieldValue::Text(text);
    }
    match text {
        Cow::Borrowed(s) => FieldValue::Text(Cow::Borrowed(s.trim())),
        Cow::Owned(s) => FieldValue::Text(Cow::Owned(s.trim().to_string())),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn json_fields(map: &serde_json::Map<String, Value>) -> Fields<'_> {
    let mut fields: Fields<'_> = std::array::from_fn(|_| FieldValue::Absent);
    let mut set = [false; FIELD_COUNT];
    for (key, value) in map {
        let Some(slot) = fields::slot_of(key) else { continue };
        // Keys equal after trimming and lower-casing: the first in the line wins, as for CSV.
        if set[slot] {
            continue;
        }
        set[slot] = true;
        fields[slot] = match value {
            Value::Null => FieldValue::Absent,
            Value::String(s) => text_value(Cow::Borrowed(s.as_str())),
            Value::Number(n) => FieldValue::Text(Cow::Owned(n.to_string())),
            Value::Array(items) if slot == CURRENT_CULTURE => {
                FieldValue::List(items.iter().map(|i| i.as_str().map(str::to_string)).collect())
            }
            other => FieldValue::NotScalar(json_kind(other)),
        };
    }
    fields
}

/// Checks a record's fields (the slots of [`fields`]; votes records may stop before the likert
/// items, which they never read).
fn check<'r>(fields: &[FieldValue<'r>], ctx: &Context) -> Result<Response<'r>, Rejection> {
    let rules = ctx.rules;
    // Only a rejection needs the response_id as an owned string.
    let rid = || match &fields[RESPONSE_ID] {
        FieldValue::Text(t) => Some(t.to_string()),
        _ => None,
    };
    let invalid =
        |slot: usize, why: String| reject(Reason::InvalidValue, format!("{}: {why}", fields::name(slot)), rid());

    // missing_field
    for &slot in fields::required(rules.instrument) {
        if matches!(fields[slot], FieldValue::Absent) {
            return Err(reject(Reason::MissingField, format!("{} is empty or absent", fields::name(slot)), rid()));
        }
    }

    // invalid_value, in field order.
    let text = |slot: usize| -> Result<Option<&str>, Rejection> {
        match &fields[slot] {
            FieldValue::Absent => Ok(None),
            FieldValue::Text(t) => Ok(Some(t.as_ref())),
            FieldValue::NotScalar(kind) => Err(invalid(slot, format!("{kind} is not a text or number"))),
            FieldValue::List(_) => Err(invalid(slot, "an array is not a text or number".into())),
        }
    };
    let required_text = |slot: usize| -> Result<&str, Rejection> {
        text(slot)?
            .ok_or_else(|| reject(Reason::MissingField, format!("{} is empty or absent", fields::name(slot)), rid()))
    };

    let response_id_text = required_text(RESPONSE_ID)?;
    if let Some(n) = too_many_chars(response_id_text, 64) {
        return Err(invalid(RESPONSE_ID, format!("{n} characters, at most 64 allowed")));
    }
    let respondent_key = required_text(RESPONDENT_KEY)?;
    if let Some(n) = too_many_chars(respondent_key, 128) {
        return Err(invalid(RESPONDENT_KEY, format!("{n} characters, at most 128 allowed")));
    }
    let submitted_text = required_text(SUBMITTED_AT)?;
    let submitted_at =
        parse_timestamp(submitted_text, rules.default_utc_offset.local_minus_utc()).ok_or_else(|| {
            invalid(SUBMITTED_AT, format!("{submitted_text:?} is neither RFC 3339 nor YYYY-MM-DD HH:MM:SS"))
        })?;
    let year_text = required_text(SURVEY_YEAR)?;
    let year = parse_int(year_text).ok_or_else(|| invalid(SURVEY_YEAR, format!("{year_text:?} is not an integer")))?;
    let institution_text = required_text(INSTITUTION_CODE)?;
    let district_text = required_text(WORK_DISTRICT_CODE)?;
    let district_number = normalise_district(district_text).ok_or_else(|| {
        invalid(WORK_DISTRICT_CODE, format!("{district_text:?} is not a district code like 3319 or 33.19"))
    })?;
    let province = match text(WORK_PROVINCE_CODE)? {
        None => None,
        Some(p) if p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()) => Some(p),
        Some(p) => return Err(invalid(WORK_PROVINCE_CODE, format!("{p:?} is not a two-digit province code"))),
    };
    let duration = match text(DURATION_SECONDS)? {
        None => None,
        Some(d) => match parse_int(d) {
            Some(v) if v >= 0 => Some(v),
            Some(_) => return Err(invalid(DURATION_SECONDS, format!("{d} is negative"))),
            None => return Err(invalid(DURATION_SECONDS, format!("{d:?} is not an integer"))),
        },
    };
    let mut answers = [0u8; BEHAVIOUR_COUNT];
    // The votes, as a count and the field they are read from (picked apart after the region
    // checks, which take precedence).
    let picks: Picks = match rules.instrument {
        Instrument::Votes => match &fields[CURRENT_CULTURE] {
            FieldValue::Text(t) => Picks::Text(t),
            FieldValue::List(items) => {
                if items.iter().any(Option::is_none) {
                    return Err(invalid(CURRENT_CULTURE, "an array element is not a string".into()));
                }
                Picks::List(items)
            }
            FieldValue::NotScalar(kind) => {
                return Err(invalid(CURRENT_CULTURE, format!("{kind} is not a list of codes")))
            }
            FieldValue::Absent => Picks::None,
        },
        Instrument::Likert => {
            let range = rules.likert_min..=rules.likert_max;
            for (b, answer) in answers.iter_mut().enumerate() {
                let slot = LIKERT_FIRST + b;
                let t = required_text(slot)?;
                match parse_int(t) {
                    Some(v) if range.contains(&v) => *answer = (v - rules.likert_min) as u8,
                    _ => {
                        return Err(invalid(
                            slot,
                            format!("{t:?} is not an integer in {}..{}", rules.likert_min, rules.likert_max),
                        ))
                    }
                }
            }
            Picks::None
        }
    };

    // year_mismatch, unknown_institution, unknown_region, region_mismatch.
    if year != i64::from(ctx.year) {
        return Err(reject(Reason::YearMismatch, format!("survey_year {year}, run year {}", ctx.year), rid()));
    }
    let mut upper = [0u8; 64];
    let institution_code: Cow<str> = match ascii_upper(institution_text, &mut upper) {
        Some(code) => Cow::Borrowed(code),
        None => Cow::Owned(institution_text.to_uppercase()),
    };
    let institution = ctx.master.index_of(&institution_code).ok_or_else(|| {
        reject(
            Reason::UnknownInstitution,
            format!("institution_code {institution_code} is not in the {} master", ctx.year),
            rid(),
        )
    })?;
    let district = ctx.regions.district_index(district_number).ok_or_else(|| {
        reject(Reason::UnknownRegion, format!("work_district_code {district_number:04} is not a district"), rid())
    })?;
    if let Some(p) = province {
        let actual = &ctx.regions.districts[district as usize].province_code;
        if p != actual {
            return Err(reject(
                Reason::RegionMismatch,
                format!("work_province_code {p}, but district {district_number:04} lies in province {actual}"),
                rid(),
            ));
        }
    }

    // invalid_picks.
    if rules.instrument == Instrument::Votes {
        let count = picks.count();
        if count == 0 {
            return Err(reject(Reason::InvalidPicks, "current_culture: no picks", rid()));
        }
        if count > rules.max_picks {
            return Err(reject(
                Reason::InvalidPicks,
                format!("current_culture: {count} picks, at most {} allowed", rules.max_picks),
                rid(),
            ));
        }
        let mut seen = [0u64; 4];
        let mut take = |pick: &str| -> Result<(), Rejection> {
            let token = trim(pick);
            let index = match short_code(token.as_bytes()) {
                Some(key) => ctx.short_catalogue.get(&key).copied(),
                None => ctx.catalogue.get(token.to_uppercase().as_bytes()).copied(),
            };
            let Some(index) = index else {
                let shown = if token.is_empty() {
                    "an empty code".to_string()
                } else {
                    format!("unknown code {}", token.to_uppercase())
                };
                return Err(reject(Reason::InvalidPicks, format!("current_culture: {shown}"), rid()));
            };
            let (word, bit) = (usize::from(index / 64), index % 64);
            if seen[word] & (1 << bit) != 0 {
                let code = token.to_uppercase();
                return Err(reject(Reason::InvalidPicks, format!("current_culture: {code} picked twice"), rid()));
            }
            seen[word] |= 1 << bit;
            if usize::from(index) < BEHAVIOUR_COUNT {
                answers[usize::from(index)] = 1;
            }
            Ok(())
        };
        match picks {
            Picks::Text(t) => {
                let mut start = 0;
                for (at, b) in t.bytes().enumerate() {
                    if b == b'|' {
                        take(&t[start..at])?;
                        start = at + 1;
                    }
                }
                take(&t[start..])?
            }
            Picks::List(items) => items.iter().flatten().try_for_each(|s| take(s))?,
            Picks::None => {}
        }
    }

    // speeder, straightliner.
    if let Some(d) = duration {
        if d < rules.min_duration_seconds {
            return Err(reject(
                Reason::Speeder,
                format!("duration_seconds {d} < min_duration_seconds {}", rules.min_duration_seconds),
                rid(),
            ));
        }
    }
    if rules.instrument == Instrument::Likert && rules.reject_straightliners && answers.iter().all(|a| *a == answers[0])
    {
        let answer = i64::from(answers[0]) + rules.likert_min;
        return Err(reject(Reason::Straightliner, format!("all 21 answers are {answer}"), rid()));
    }

    let response_id = match &fields[RESPONSE_ID] {
        FieldValue::Text(t) => t.clone(),
        _ => Cow::Owned(response_id_text.to_string()),
    };
    Ok(Response {
        response_id,
        respondent: xxhash_rust::xxh3::xxh3_128(respondent_key.as_bytes()),
        submitted_at,
        institution,
        district,
        answers,
    })
}

/// Where a record's votes are, before they are checked.
enum Picks<'f> {
    /// `|`-separated codes (CSV, or a JSON string).
    Text(&'f str),
    /// A JSON array of strings (every element checked to be a string).
    List(&'f [Option<String>]),
    /// None given.
    None,
}

impl Picks<'_> {
    fn count(&self) -> usize {
        match self {
            // A byte loop: the lists are short, shorter than memchr's set-up pays for.
            Picks::Text(t) => t.bytes().filter(|b| *b == b'|').count() + 1,
            Picks::List(items) => items.len(),
            Picks::None => 0,
        }
    }
}

/// `text.trim()`, skipped when `text` starts and ends with a visible ASCII character (the
/// usual case, and a cheap test).
fn trim(text: &str) -> &str {
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

/// The number of characters of `text` when it has more than `max`.
fn too_many_chars(text: &str, max: usize) -> Option<usize> {
    // A character is at least one byte: short texts need no counting.
    if text.len() <= max {
        return None;
    }
    Some(text.chars().count()).filter(|n| *n > max)
}

/// Upper-cases ASCII `text` into `buffer`; `None` when it is not ASCII or too long (the caller
/// then falls back to the allocating Unicode upper-casing).
fn ascii_upper<'b>(text: &str, buffer: &'b mut [u8; 64]) -> Option<&'b str> {
    let bytes = text.as_bytes();
    if bytes.len() > buffer.len() || !bytes.is_ascii() {
        return None;
    }
    let out = &mut buffer[..bytes.len()];
    out.copy_from_slice(bytes);
    out.make_ascii_uppercase();
    std::str::from_utf8(out).ok()
}

/// Parses RFC 3339 (`T`, `t` or space between date and time; `Z` or `±HH:MM`; optional
/// fraction) or `YYYY-MM-DD HH:MM:SS`, which is read at `default_offset_secs`.
pub fn parse_timestamp(text: &str, default_offset_secs: i32) -> Option<Instant> {
    let b = text.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let s = &b[range];
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(s.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
    };
    if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &b[19..];
    let mut nanos = 0u32;
    if let Some((b'.', frac)) = rest.split_first() {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        for (i, d) in frac[..digits].iter().enumerate().take(9) {
            nanos += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        [] if b[10] == b' ' && b.len() == 19 => default_offset_secs,
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let (h, m) =
                (i32::from(h1 - b'0') * 10 + i32::from(h2 - b'0'), i32::from(m1 - b'0') * 10 + i32::from(m2 - b'0'));
            if h > 23 || m > 59 {
                return None;
            }
            let secs = h * 3600 + m * 60;
            if *sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };
    let time = NaiveTime::from_hms_opt(hour, minute, second)?;
    let local = date.and_time(time).and_utc().timestamp();
    Some(Instant { secs: local - i64::from(offset), nanos })
}

/// Value score numerator of a response: votes 1 if any of the value's behaviours was picked;
/// likert the sum of the value's three answers. See [`crate::score`] for the denominators.
pub fn value_numerators(answers: &[u8; BEHAVIOUR_COUNT], instrument: Instrument) -> [u32; 7] {
    let mut x = [0u32; 7];
    for (b, a) in answers.iter().enumerate() {
        let v = value_of_behaviour(b);
        match instrument {
            Instrument::Votes => x[v] |= u32::from(*a),
            Instrument::Likert => x[v] += u32::from(*a),
        }
    }
    x
}

#[cfg(test)]
mod tests;
