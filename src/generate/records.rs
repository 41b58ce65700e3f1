//! Synthetic survey records of `generate`: a respondent's good record, the earlier versions of
//! a resubmission, duplicate response ids and the bad records of every SPEC 3 reason code.
//!
//! A record is built as text fields in a reusable [`Rec`]; format-level defects (wrong field
//! count, broken quoting, invalid JSON, a non-UTF-8 byte) are flags the writer acts on.

use std::fmt::Write as _;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use super::institutions::{GenInstitution, Geography, DEFUNCT_CODES};
use super::model::{self, CultureModel, DISTRACTORS};
use crate::catalogue::{BEHAVIOUR_CODES, BEHAVIOUR_COUNT, VALUE_COUNT};
use crate::reference::Regions;

/// Seconds of the WIB offset (+07:00).
const WIB: i64 = 7 * 3600;
/// Length of the survey window in days (1 August to 31 October).
const WINDOW_DAYS: i64 = 92;
/// Resubmitters' final records come at least this long after the window opens.
const RESUBMIT_LEAD: i64 = 14 * 86_400;

/// A format-level defect, applied by the writer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Defect {
    /// A good record.
    #[default]
    None,
    /// CSV: wrong field count; JSONL: invalid JSON (object not closed).
    Structure,
    /// CSV: a quote inside an unquoted field; JSONL: a JSON value that is not an object.
    Quoting,
    /// A raw 0xFF byte in `institution_code` (invalid UTF-8).
    BadByte,
}

/// How a record is written (JSON types, decorations).
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    /// JSONL: integers (year, duration, likert answers) as JSON numbers.
    pub numbers: bool,
    /// JSONL: `current_culture` as an array rather than a `|`-separated string.
    pub culture_array: bool,
    /// JSONL: leave out keys whose value is empty (also required ones).
    pub omit_blank: bool,
    /// CSV: allow harmless decorations (quoted fields, an embedded delimiter, blank lines).
    pub decorate: bool,
}

/// One record as text fields (reused between records).
#[derive(Debug, Clone, Default)]
pub struct Rec {
    /// `response_id`.
    pub response_id: String,
    /// `respondent_key`.
    pub respondent_key: String,
    /// `submitted_at`.
    pub submitted_at: String,
    /// `survey_year`.
    pub survey_year: String,
    /// `institution_code`.
    pub institution_code: String,
    /// `work_district_code`.
    pub work_district_code: String,
    /// `work_province_code` (empty: absent).
    pub work_province_code: String,
    /// `duration_seconds` (empty: absent).
    pub duration_seconds: String,
    /// `gender`.
    pub gender: String,
    /// `age_band`.
    pub age_band: String,
    /// `employment_type`.
    pub employment_type: String,
    /// `position_type`.
    pub position_type: String,
    /// `current_culture`, `|`-separated (votes).
    pub current_culture: String,
    /// Likert answers in catalogue order.
    pub likert: [u8; BEHAVIOUR_COUNT],
    /// Likert: one item written as this text instead of its number.
    pub likert_override: Option<(usize, String)>,
    /// Writing style.
    pub style: Style,
    /// Format-level defect.
    pub defect: Defect,
    /// Instant of `submitted_at`: Unix seconds and milliseconds (not written).
    pub instant: (i64, u16),
}

/// The bad-record variants; each maps to one SPEC 3 reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadKind {
    /// Wrong field count (CSV) / invalid JSON (JSONL).
    Structure,
    /// Broken quoting (CSV) / not an object (JSONL).
    Quoting,
    /// A 0xFF byte.
    BadByte,
    /// Empty `respondent_key` (absent key in some JSON lines).
    EmptyKey,
    /// Blank `current_culture` (votes) or a blank likert item.
    BlankAnswer,
    /// `survey_year` written `2024.0`.
    YearDecimal,
    /// Unparseable `submitted_at`.
    BadTimestamp,
    /// `work_district_code` like `33-19`.
    BadDistrict,
    /// Negative `duration_seconds`.
    NegativeDuration,
    /// `response_id` longer than 64 characters.
    LongResponseId,
    /// A likert answer outside 1..5 or not an integer.
    BadLikert,
    /// `survey_year` of another year.
    YearMismatch,
    /// An institution code not in the master.
    UnknownInstitution,
    /// A well-formed district code not in the regions.
    UnknownRegion,
    /// `work_province_code` not the district's province.
    RegionMismatch,
    /// 11 distinct codes.
    TooManyPicks,
    /// A code picked twice.
    RepeatedPick,
    /// A code outside the catalogue.
    UnknownPick,
    /// No pick at all: JSON `[]` (a repeated code in CSV, which cannot express it).
    EmptyPicks,
    /// Faster than 60 seconds.
    Speeder,
    /// All 21 likert answers equal.
    Straightliner,
}

impl BadKind {
    /// The first cycle of bad records: one per reason code first, then the other variants.
    pub fn cycle(likert: bool) -> &'static [BadKind] {
        use BadKind::*;
        if likert {
            &[
                Structure,
                BadByte,
                EmptyKey,
                YearDecimal,
                YearMismatch,
                UnknownInstitution,
                UnknownRegion,
                RegionMismatch,
                Speeder,
                Straightliner,
                Quoting,
                BlankAnswer,
                BadTimestamp,
                BadDistrict,
                NegativeDuration,
                LongResponseId,
                BadLikert,
            ]
        } else {
            &[
                Structure,
                BadByte,
                EmptyKey,
                YearDecimal,
                YearMismatch,
                UnknownInstitution,
                UnknownRegion,
                RegionMismatch,
                TooManyPicks,
                Speeder,
                Quoting,
                BlankAnswer,
                BadTimestamp,
                BadDistrict,
                NegativeDuration,
                LongResponseId,
                RepeatedPick,
                UnknownPick,
                EmptyPicks,
            ]
        }
    }

    /// The kind of the `index`-th bad record: the cycle first, then speeders (and, for likert,
    /// straightliners) more often than the rest.
    pub fn choose(index: u64, likert: bool, rng: &mut ChaCha8Rng) -> BadKind {
        let cycle = BadKind::cycle(likert);
        if (index as usize) < cycle.len() {
            return cycle[index as usize];
        }
        let u: f64 = rng.random();
        if u < 0.30 {
            BadKind::Speeder
        } else if likert && u < 0.45 {
            BadKind::Straightliner
        } else {
            cycle[rng.random_range(0..cycle.len())]
        }
    }

    /// SPEC 3 reason code.
    pub fn reason(self) -> &'static str {
        use BadKind::*;
        match self {
            Structure | Quoting => "malformed_row",
            BadByte => "invalid_encoding",
            EmptyKey | BlankAnswer => "missing_field",
            YearDecimal | BadTimestamp | BadDistrict | NegativeDuration | LongResponseId | BadLikert => "invalid_value",
            YearMismatch => "year_mismatch",
            UnknownInstitution => "unknown_institution",
            UnknownRegion => "unknown_region",
            RegionMismatch => "region_mismatch",
            TooManyPicks | RepeatedPick | UnknownPick | EmptyPicks => "invalid_picks",
            Speeder => "speeder",
            Straightliner => "straightliner",
        }
    }

    /// Name of the concrete defect written, which depends on the file format.
    pub fn defect_name(self, jsonl: bool) -> &'static str {
        use BadKind::*;
        match (self, jsonl) {
            (Structure, false) => "csv_field_count",
            (Structure, true) => "json_syntax",
            (Quoting, false) => "csv_broken_quote",
            (Quoting, true) => "json_not_object",
            (BadByte, _) => "byte_0xff",
            (EmptyKey, _) => "empty_respondent_key",
            (BlankAnswer, _) => "blank_answer",
            (YearDecimal, _) => "survey_year_decimal",
            (BadTimestamp, _) => "bad_submitted_at",
            (BadDistrict, _) => "bad_district_format",
            (NegativeDuration, _) => "negative_duration",
            (LongResponseId, _) => "response_id_too_long",
            (BadLikert, _) => "likert_out_of_range",
            (YearMismatch, _) => "other_survey_year",
            (UnknownInstitution, _) => "unknown_institution_code",
            (UnknownRegion, _) => "unknown_district",
            (RegionMismatch, _) => "province_mismatch",
            (TooManyPicks, _) => "too_many_picks",
            (RepeatedPick, _) => "repeated_pick",
            (UnknownPick, _) => "unknown_pick",
            (EmptyPicks, false) => "repeated_pick_case",
            (EmptyPicks, true) => "json_empty_array",
            (Speeder, _) => "speeder",
            (Straightliner, _) => "straightliner",
        }
    }
}

/// The record factory of one year.
pub struct Generator<'a> {
    /// The record stream's random generator.
    pub rng: ChaCha8Rng,
    seed: u64,
    year: i32,
    insts: &'a [GenInstitution],
    regions: &'a Regions,
    province_codes: Vec<String>,
    geo: Geography,
    model: CultureModel,
    likert: bool,
    seq: u64,
    window_start: i64,
    picks: Vec<&'static str>,
}

impl<'a> Generator<'a> {
    /// A generator for `year` (window 1 August – 31 October, WIB).
    pub fn new(seed: u64, year: i32, insts: &'a [GenInstitution], regions: &'a Regions, likert: bool) -> Generator<'a> {
        let window_start = days_from_civil(i64::from(year), 8, 1) * 86_400 - WIB;
        Generator {
            rng: model::stream(&[seed, 0x2EC0, year as u64]),
            seed,
            year,
            insts,
            regions,
            province_codes: regions.provinces.keys().cloned().collect(),
            geo: Geography::new(regions, insts),
            model: CultureModel::new(year),
            likert,
            seq: 0,
            window_start,
            picks: Vec::with_capacity(16),
        }
    }

    fn roll(&mut self, p: f64) -> bool {
        self.rng.random::<f64>() < p
    }

    fn next_response_id(&mut self, out: &mut String) {
        self.seq += 1;
        let tag: u32 = self.rng.random_range(0..1 << 24);
        out.clear();
        let _ = write!(out, "BRK{:02}-{:08}-{tag:06X}", self.year.rem_euclid(100), self.seq);
    }

    fn respondent_key(&self, person: u64, out: &mut String) {
        let mut h = Sha256::new();
        h.update(b"nip:");
        h.update(self.seed.to_le_bytes());
        h.update(person.to_le_bytes());
        hex_into(&h.finalize(), out);
    }

    /// Fills `rec` with a good record of person `person` of institution `inst`; returns
    /// x(r,v), the person's value scores. `resubmitter`: the final record of someone who
    /// also submitted earlier, so it comes late enough in the window.
    pub fn person(&mut self, inst: usize, person: u64, resubmitter: bool, rec: &mut Rec) -> [f64; VALUE_COUNT] {
        let institution = &self.insts[inst];
        rec.defect = Defect::None;
        rec.likert_override = None;
        rec.style = Style { numbers: self.roll(0.5), culture_array: self.roll(0.5), omit_blank: false, decorate: true };
        let mut id = std::mem::take(&mut rec.response_id);
        self.next_response_id(&mut id);
        rec.response_id = id;
        self.respondent_key(person, &mut rec.respondent_key);

        let len = WINDOW_DAYS * 86_400;
        let secs = if resubmitter {
            self.window_start + RESUBMIT_LEAD + self.rng.random_range(0..len - RESUBMIT_LEAD)
        } else {
            self.window_start + self.rng.random_range(0..len)
        };
        self.set_instant(rec, secs, None);

        rec.survey_year.clear();
        let _ = write!(rec.survey_year, "{}", self.year);

        rec.institution_code.clear();
        let u: f64 = self.rng.random();
        if u < 0.02 {
            rec.institution_code.push_str(&institution.code.to_lowercase());
        } else if u < 0.03 {
            let _ = write!(rec.institution_code, " {} ", institution.code);
        } else if u < 0.035 {
            let _ = write!(rec.institution_code, " {}", institution.code.to_lowercase());
        } else {
            rec.institution_code.push_str(&institution.code);
        }

        let district = self.geo.work_district(&mut self.rng, institution);
        self.set_district(rec, district);
        rec.work_province_code.clear();
        if self.roll(0.3) {
            rec.work_province_code.push_str(&self.regions.districts[district].province_code);
        }

        rec.duration_seconds.clear();
        if self.roll(0.85) {
            let d = 60 + (5.2 + 0.7 * model::normal(&mut self.rng)).exp().min(7140.0) as i64;
            let _ = write!(rec.duration_seconds, "{d}");
        }

        self.demographics(rec);

        let p = self.model.value_probabilities(&mut self.rng, &institution.effect);
        rec.current_culture.clear();
        if self.likert {
            model::draw_likert(&mut self.rng, &p, &mut rec.likert)
        } else {
            let mut picks = std::mem::take(&mut self.picks);
            let x = model::draw_votes(&mut self.rng, &p, &mut picks);
            let lower = if self.roll(0.03) { self.rng.random_range(0..picks.len()) } else { usize::MAX };
            let spaced = self.roll(0.02);
            for (i, code) in picks.iter().enumerate() {
                if i > 0 {
                    rec.current_culture.push_str(if spaced { " | " } else { "|" });
                }
                if i == lower {
                    rec.current_culture.push_str(&code.to_lowercase());
                } else {
                    rec.current_culture.push_str(code);
                }
            }
            self.picks = picks;
            x
        }
    }

    fn demographics(&mut self, rec: &mut Rec) {
        let pick = |rng: &mut ChaCha8Rng, options: &[(&'static str, f64)]| -> &'static str {
            let mut u: f64 = rng.random();
            for (text, p) in options {
                if u < *p {
                    return text;
                }
                u -= p;
            }
            options[options.len() - 1].0
        };
        rec.gender.clear();
        rec.gender.push_str(pick(
            &mut self.rng,
            &[("L", 0.47), ("P", 0.47), ("", 0.03), ("-", 0.015), ("laki-laki", 0.014), ("L\n(laki-laki)", 0.001)],
        ));
        rec.age_band.clear();
        rec.age_band.push_str(pick(
            &mut self.rng,
            &[
                ("<25", 0.06),
                ("25-34", 0.27),
                ("35-44", 0.30),
                ("45-54", 0.25),
                ("55+", 0.10),
                ("", 0.01),
                ("tidak tahu", 0.01),
            ],
        ));
        rec.employment_type.clear();
        rec.employment_type
            .push_str(pick(&mut self.rng, &[("PNS", 0.75), ("PPPK", 0.22), ("", 0.02), ("honorer", 0.01)]));
        rec.position_type.clear();
        rec.position_type.push_str(pick(
            &mut self.rng,
            &[("Fungsional", 0.48), ("Pelaksana", 0.37), ("Struktural", 0.12), ("", 0.02), ("lainnya", 0.01)],
        ));
    }

    fn set_district(&mut self, rec: &mut Rec, district: usize) {
        let code = &self.regions.districts[district].code;
        rec.work_district_code.clear();
        if self.rng.random::<f64>() < 0.25 {
            let _ = write!(rec.work_district_code, "{}.{}", &code[..2], &code[2..]);
        } else {
            rec.work_district_code.push_str(code);
        }
    }

    /// Sets `submitted_at`: a random one of the accepted forms; `millis` given keeps an
    /// instant exactly (a fractional form when it has milliseconds).
    fn set_instant(&mut self, rec: &mut Rec, secs: i64, millis: Option<u16>) {
        let u: f64 = self.rng.random();
        // 0 naive WIB, 1 +07:00, 2 Z, 3 fractional +07:00, 4 fractional Z.
        let mut form = if u < 0.40 {
            0
        } else if u < 0.75 {
            1
        } else if u < 0.90 {
            2
        } else if u < 0.95 {
            3
        } else {
            4
        };
        let millis = match millis {
            Some(m) => {
                if m != 0 && form < 3 {
                    form = 3 + (form % 2);
                }
                m
            }
            None if form >= 3 => self.rng.random_range(1..1000),
            None => 0,
        };
        rec.instant = (secs, millis);
        format_timestamp(&mut rec.submitted_at, secs, millis, form);
    }

    /// Turns `rec` (a fresh good record of the same institution) into an earlier submission of
    /// `fin`'s person: same key, earlier instant, or the same instant when `identical` (then
    /// the final record gets the greater response id, which decides).
    pub fn earlier_version(&mut self, fin: &mut Rec, rec: &mut Rec, identical: bool, lead: i64) {
        rec.respondent_key.clone_from(&fin.respondent_key);
        if identical {
            let (secs, millis) = fin.instant;
            self.set_instant(rec, secs, Some(millis));
            if rec.response_id > fin.response_id {
                std::mem::swap(&mut rec.response_id, &mut fin.response_id);
            }
        } else {
            let back = self.rng.random_range(lead..RESUBMIT_LEAD);
            self.set_instant(rec, fin.instant.0 - back, None);
        }
    }

    /// A uniformly chosen institution index (bad and duplicate records).
    pub fn any_institution(&mut self) -> usize {
        self.rng.random_range(0..self.insts.len())
    }

    /// Fills `rec` with a bad record of `kind` for file format `jsonl`.
    pub fn bad(&mut self, kind: BadKind, jsonl: bool, person: u64, rec: &mut Rec) {
        let inst = self.any_institution();
        self.person(inst, person, false, rec);
        rec.style.decorate = false;
        match kind {
            BadKind::Structure => rec.defect = Defect::Structure,
            BadKind::Quoting => rec.defect = Defect::Quoting,
            BadKind::BadByte => rec.defect = Defect::BadByte,
            BadKind::EmptyKey => {
                rec.respondent_key.clear();
                rec.style.omit_blank = self.roll(0.5);
            }
            BadKind::BlankAnswer => {
                if self.likert {
                    rec.likert_override = Some((self.rng.random_range(0..BEHAVIOUR_COUNT), " ".into()));
                } else {
                    rec.current_culture.clear();
                    rec.current_culture.push_str("  ");
                    rec.style.culture_array = false;
                }
            }
            BadKind::YearDecimal => {
                rec.survey_year.push_str(".0");
            }
            BadKind::BadTimestamp => {
                let (secs, _) = rec.instant;
                let (y, m, d) = civil_from_days((secs + WIB).div_euclid(86_400));
                rec.submitted_at.clear();
                let _ = match self.rng.random_range(0..3) {
                    0 => write!(rec.submitted_at, "{d:02}/{m:02}/{y} 08:15"),
                    1 => write!(rec.submitted_at, "{y}-13-{d:02} 25:61:00"),
                    _ => write!(rec.submitted_at, "kemarin sore"),
                };
            }
            BadKind::BadDistrict => {
                let code = rec.work_district_code.replace('.', "");
                rec.work_district_code.clear();
                let _ = write!(rec.work_district_code, "{}-{}", &code[..2], &code[2..]);
            }
            BadKind::NegativeDuration => {
                rec.duration_seconds.clear();
                let _ = write!(rec.duration_seconds, "-{}", self.rng.random_range(1..500));
            }
            BadKind::LongResponseId => {
                let tail = rec.response_id.clone();
                rec.response_id.clear();
                let _ = write!(rec.response_id, "RESPONSE-ID-TOO-LONG-{tail}-{:032X}", self.rng.random::<u128>());
            }
            BadKind::BadLikert => {
                let text = ["6", "0", "4.0", "lima"][self.rng.random_range(0..4)];
                rec.likert_override = Some((self.rng.random_range(0..BEHAVIOUR_COUNT), text.into()));
            }
            BadKind::YearMismatch => {
                rec.survey_year.clear();
                let other = if self.roll(0.7) { self.year - 1 } else { self.year + 1 };
                let _ = write!(rec.survey_year, "{other}");
            }
            BadKind::UnknownInstitution => {
                rec.institution_code.clear();
                rec.institution_code.push_str(DEFUNCT_CODES[self.rng.random_range(0..DEFUNCT_CODES.len())]);
            }
            BadKind::UnknownRegion => {
                let province = self.insts[inst].province_code.clone();
                rec.work_district_code = self.unknown_district(&province);
                rec.work_province_code.clear();
            }
            BadKind::RegionMismatch => {
                let own = self
                    .regions
                    .district_index_of(&rec.work_district_code)
                    .map(|d| self.regions.districts[d as usize].province_code.clone())
                    .unwrap_or_default();
                let others: Vec<&String> = self.province_codes.iter().filter(|p| **p != own).collect();
                rec.work_province_code.clear();
                if let Some(p) = others.get(self.rng.random_range(0..others.len().max(1))) {
                    rec.work_province_code.push_str(p);
                }
            }
            BadKind::TooManyPicks => {
                let mut codes: Vec<&str> = BEHAVIOUR_CODES.to_vec();
                model::shuffle(&mut self.rng, &mut codes);
                codes.truncate(model::MAX_PICKS);
                codes.push(DISTRACTORS[self.rng.random_range(0..DISTRACTORS.len())]);
                rec.current_culture = codes.join("|");
            }
            BadKind::RepeatedPick => {
                let code = BEHAVIOUR_CODES[self.rng.random_range(0..BEHAVIOUR_COUNT)];
                rec.current_culture = format!("{code}|KO3|{code}");
                if code == "KO3" {
                    rec.current_culture = "KO3|AD1|KO3".into();
                }
            }
            BadKind::UnknownPick => {
                let unknown = ["BP4", "X25", "AK0", "XYZ"][self.rng.random_range(0..4)];
                rec.current_culture = format!("AK1|{unknown}");
            }
            BadKind::EmptyPicks => {
                if jsonl {
                    rec.current_culture.clear();
                    rec.style.culture_array = true;
                } else {
                    rec.current_culture = " ko1 |KO1".into();
                }
            }
            BadKind::Speeder => {
                rec.duration_seconds.clear();
                let _ = write!(rec.duration_seconds, "{}", self.rng.random_range(4..60));
            }
            BadKind::Straightliner => {
                let a = self.rng.random_range(1..=5);
                rec.likert = [a; BEHAVIOUR_COUNT];
            }
        }
    }

    fn unknown_district(&self, province: &str) -> String {
        for n in (0..100).rev() {
            let code = format!("{province}{n:02}");
            if self.regions.district_index_of(&code).is_none() {
                return code;
            }
        }
        "9999".into()
    }
}

/// Lower-case hex into `out`.
fn hex_into(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.clear();
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date of days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Writes `secs`/`millis` in form 0 `YYYY-MM-DD HH:MM:SS` (WIB), 1 RFC 3339 `+07:00`, 2 `Z`,
/// 3 fractional `+07:00`, 4 fractional `Z`.
pub fn format_timestamp(out: &mut String, secs: i64, millis: u16, form: u8) {
    let utc = form == 2 || form == 4;
    let local = if utc { secs } else { secs + WIB };
    let (y, mo, d) = civil_from_days(local.div_euclid(86_400));
    let sod = local.rem_euclid(86_400);
    let (h, mi, s) = (sod / 3600, (sod / 60) % 60, sod % 60);
    out.clear();
    let sep = if form == 0 { ' ' } else { 'T' };
    let _ = write!(out, "{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}");
    if form >= 3 {
        let _ = write!(out, ".{millis:03}");
    }
    match form {
        0 => {}
        2 | 4 => out.push('Z'),
        _ => out.push_str("+07:00"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        for days in [-1000, 0, 19_000, 19_966, 20_000, 60_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(2024, 9, 2), 19_968);
    }

    #[test]
    fn timestamps_in_every_form_denote_the_same_instant() {
        let secs = days_from_civil(2024, 9, 2) * 86_400 + 8 * 3600 + 15 * 60 - WIB;
        let mut s = String::new();
        let mut seen = Vec::new();
        for form in 0..5 {
            format_timestamp(&mut s, secs, 123, form);
            seen.push(s.clone());
        }
        assert_eq!(
            seen,
            [
                "2024-09-02 08:15:00",
                "2024-09-02T08:15:00+07:00",
                "2024-09-02T01:15:00Z",
                "2024-09-02T08:15:00.123+07:00",
                "2024-09-02T01:15:00.123Z"
            ]
        );
        for text in &seen[1..] {
            let parsed = chrono::DateTime::parse_from_rfc3339(text).unwrap();
            assert_eq!(parsed.timestamp(), secs);
        }
    }
}
