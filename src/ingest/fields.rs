//! The input fields of a survey response (SPEC 2.2), as slots shared by both formats.

use crate::catalogue::{BEHAVIOUR_CODES, BEHAVIOUR_COUNT};
use crate::config::Instrument;

/// `response_id`.
pub const RESPONSE_ID: usize = 0;
/// `respondent_key`.
pub const RESPONDENT_KEY: usize = 1;
/// `submitted_at`.
pub const SUBMITTED_AT: usize = 2;
/// `survey_year`.
pub const SURVEY_YEAR: usize = 3;
/// `institution_code`.
pub const INSTITUTION_CODE: usize = 4;
/// `work_district_code`.
pub const WORK_DISTRICT_CODE: usize = 5;
/// `work_province_code` (optional).
pub const WORK_PROVINCE_CODE: usize = 6;
/// `duration_seconds` (optional).
pub const DURATION_SECONDS: usize = 7;
/// `current_culture` (votes instrument).
pub const CURRENT_CULTURE: usize = 8;
/// First likert item; item `b` (catalogue order) is slot `LIKERT_FIRST + b`.
pub const LIKERT_FIRST: usize = 9;
/// Number of slots.
pub const FIELD_COUNT: usize = LIKERT_FIRST + BEHAVIOUR_COUNT;

const SCALAR_NAMES: [&str; LIKERT_FIRST] = [
    "response_id",
    "respondent_key",
    "submitted_at",
    "survey_year",
    "institution_code",
    "work_district_code",
    "work_province_code",
    "duration_seconds",
    "current_culture",
];

/// The field name of a slot as written in headers and messages (`BP1` for likert items).
pub fn name(slot: usize) -> &'static str {
    if slot < LIKERT_FIRST {
        SCALAR_NAMES[slot]
    } else {
        BEHAVIOUR_CODES[slot - LIKERT_FIRST]
    }
}

/// The slot of a header name or JSON key, matched after trimming, case-insensitively.
/// The optional breakdown fields (gender, age_band, ...) have no slot: no output uses them.
pub fn slot_of(name: &str) -> Option<usize> {
    let name = name.trim();
    if let Some(i) = SCALAR_NAMES.iter().position(|n| n.eq_ignore_ascii_case(name)) {
        return Some(i);
    }
    BEHAVIOUR_CODES.iter().position(|c| c.eq_ignore_ascii_case(name)).map(|b| LIKERT_FIRST + b)
}

const REQUIRED_VOTES: [usize; 7] =
    [RESPONSE_ID, RESPONDENT_KEY, SUBMITTED_AT, SURVEY_YEAR, INSTITUTION_CODE, WORK_DISTRICT_CODE, CURRENT_CULTURE];

const REQUIRED_LIKERT: [usize; 6 + BEHAVIOUR_COUNT] = {
    let mut slots = [0; 6 + BEHAVIOUR_COUNT];
    let head = [RESPONSE_ID, RESPONDENT_KEY, SUBMITTED_AT, SURVEY_YEAR, INSTITUTION_CODE, WORK_DISTRICT_CODE];
    let mut i = 0;
    while i < 6 {
        slots[i] = head[i];
        i += 1;
    }
    while i < 6 + BEHAVIOUR_COUNT {
        slots[i] = LIKERT_FIRST + i - 6;
        i += 1;
    }
    slots
};

/// Slots a record must carry under `instrument`, in the precedence order of checks.
pub fn required(instrument: Instrument) -> &'static [usize] {
    match instrument {
        Instrument::Votes => &REQUIRED_VOTES,
        Instrument::Likert => &REQUIRED_LIKERT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_slots_round_trip() {
        for slot in 0..FIELD_COUNT {
            assert_eq!(slot_of(name(slot)), Some(slot));
        }
        assert_eq!(slot_of("  Response_ID "), Some(RESPONSE_ID));
        assert_eq!(slot_of("kl3"), Some(FIELD_COUNT - 1));
        assert_eq!(slot_of("gender"), None);
    }

    #[test]
    fn likert_requires_all_items() {
        assert_eq!(required(Instrument::Likert).len(), 6 + 21);
        assert!(required(Instrument::Votes).contains(&CURRENT_CULTURE));
    }
}
