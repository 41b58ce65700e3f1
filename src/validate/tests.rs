//! Validation cases, one per rule of SPEC 3, named after what they check.

use std::path::Path;

use super::*;
use crate::config::{Config, ConfigFile, PathOverrides};
use crate::ingest::csv::CsvSplitter;

const HEADER: &str = "response_id,respondent_key,submitted_at,survey_year,institution_code,work_district_code,work_province_code,duration_seconds,current_culture";

struct Fixture {
    master: Master,
    regions: Regions,
    rules: SurveyRules,
}

fn fixture(instrument: &str) -> Fixture {
    let regions = Regions::load(Path::new("config/reference/regions.csv")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.csv");
    std::fs::write(
        &path,
        "institution_code,institution_name,institution_type,province_code,district_code,headcount\n\
         KAB-KUDUS,Kudus,kabupaten,33,3319,100\nKEMENKEU,Keuangan,kementerian,31,,1000\n",
    )
    .unwrap();
    let master = Master::load(&path, &regions).unwrap();
    let file: ConfigFile = toml::from_str(&format!("[survey]\ninstrument = \"{instrument}\"\n")).unwrap();
    let cfg = Config::from_file(file, Path::new("t"), String::new(), 2024, &PathOverrides::default()).unwrap();
    Fixture { master, regions, rules: cfg.survey }
}

fn run_csv(fx: &Fixture, header: &str, line: &str) -> Result<Response<'static>, Rejection> {
    let text = format!("{header}\n{line}\n");
    let (mut splitter, head) = CsvSplitter::open(text.as_bytes()).unwrap().unwrap();
    let mut columns = [None; FIELD_COUNT];
    for i in 0..head.len() {
        if let Some(slot) = fields::slot_of(&String::from_utf8_lossy(head.field(i))) {
            columns[slot].get_or_insert(i);
        }
    }
    let layout = Layout::Csv { columns: Box::new(columns), width: head.len() };
    let mut rec = RawRecord::default();
    assert!(splitter.read_record(&mut rec).unwrap());
    let ctx = Context::new(2024, &fx.master, &fx.regions, &fx.rules);
    validate(&rec, &layout, &ctx).map(Response::into_owned)
}

fn votes(line: &str) -> Result<Response<'static>, Rejection> {
    run_csv(&fixture("votes"), HEADER, line)
}

fn json(fx: &Fixture, line: &[u8]) -> Result<Response<'static>, Rejection> {
    let rec = RawRecord { line: 1, raw: line.to_vec(), ..Default::default() };
    let ctx = Context::new(2024, &fx.master, &fx.regions, &fx.rules);
    validate(&rec, &Layout::Jsonl, &ctx).map(Response::into_owned)
}

fn reason(result: Result<Response<'_>, Rejection>) -> (Reason, String) {
    match result {
        Err(r) => (r.reason, r.detail),
        Ok(resp) => panic!("expected a rejection, got {resp:?}"),
    }
}

const GOOD: &str = "r1,key1,2024-09-02T08:15:00+07:00,2024,kab-kudus,33.19,33,300,BP1|ak2| X01 ";

#[test]
fn good_record_is_accepted_and_scored() {
    let r = votes(GOOD).unwrap();
    assert_eq!(&*r.response_id, "r1");
    assert_eq!(r.institution, 0);
    assert_eq!(r.submitted_at.secs, 1_725_239_700);
    let mut expected = [0u8; 21];
    expected[0] = 1; // BP1
    expected[4] = 1; // AK2
    assert_eq!(r.answers, expected);
    assert_eq!(value_numerators(&r.answers, Instrument::Votes), [1, 1, 0, 0, 0, 0, 0]);
}

#[test]
fn wrong_field_count_is_malformed() {
    assert_eq!(reason(votes("r1,key1,2024")).0, Reason::MalformedRow);
}

#[test]
fn broken_quoting_is_malformed() {
    assert_eq!(reason(votes(&GOOD.replace("key1", "ke\"y1"))).0, Reason::MalformedRow);
}

#[test]
fn malformed_takes_precedence_over_encoding() {
    let fx = fixture("votes");
    let rec = RawRecord {
        line: 2,
        raw: b"a\xff,b".to_vec(),
        values: b"a\xffb".to_vec(),
        ends: vec![2, 3],
        fault: None,
        in_raw: false,
    };
    let mut columns = [None; FIELD_COUNT];
    columns[0] = Some(0);
    let ctx = Context::new(2024, &fx.master, &fx.regions, &fx.rules);
    let r = validate(&rec, &Layout::Csv { columns: Box::new(columns), width: 3 }, &ctx);
    assert_eq!(reason(r).0, Reason::MalformedRow);
}

#[test]
fn non_utf8_is_invalid_encoding() {
    let fx = fixture("votes");
    let mut line = GOOD.as_bytes().to_vec();
    line[1] = 0xff;
    let text = [HEADER.as_bytes(), b"\n", &line, b"\n"].concat();
    let (mut splitter, head) = CsvSplitter::open(&text[..]).unwrap().unwrap();
    let mut columns = [None; FIELD_COUNT];
    for i in 0..head.len() {
        columns[fields::slot_of(&String::from_utf8_lossy(head.field(i))).unwrap()] = Some(i);
    }
    let mut rec = RawRecord::default();
    splitter.read_record(&mut rec).unwrap();
    let ctx = Context::new(2024, &fx.master, &fx.regions, &fx.rules);
    assert_eq!(
        reason(validate(&rec, &Layout::Csv { columns: Box::new(columns), width: head.len() }, &ctx)).0,
        Reason::InvalidEncoding
    );
    // In JSON Lines too, and before the JSON is parsed.
    assert_eq!(reason(json(&fx, b"{\"response_id\": \"\xff\"")).0, Reason::InvalidEncoding);
}

#[test]
fn blank_required_field_is_missing_and_named() {
    let (r, detail) = reason(votes("r1,  ,2024-09-02 08:15:00,2024,KAB-KUDUS,3319,,,BP1"));
    assert_eq!(r, Reason::MissingField);
    assert!(detail.contains("respondent_key"), "{detail}");
    let (r, detail) = reason(votes("r1,k,2024-09-02 08:15:00,2024,KAB-KUDUS,3319,,,  "));
    assert_eq!(r, Reason::MissingField);
    assert!(detail.contains("current_culture"), "{detail}");
}

#[test]
fn missing_comes_before_invalid_whatever_the_field_order() {
    // survey_year is invalid, but current_culture (later in field order) is missing.
    assert_eq!(reason(votes("r1,k,2024-09-02 08:15:00,2024.0,KAB-KUDUS,3319,,,")).0, Reason::MissingField);
}

#[test]
fn invalid_values_name_their_field() {
    let cases = [
        (GOOD.replace("r1", &"x".repeat(65)), "response_id"),
        (GOOD.replace("key1", &"k".repeat(129)), "respondent_key"),
        (GOOD.replace("2024-09-02T08:15:00+07:00", "02/09/2024 08:15"), "submitted_at"),
        (GOOD.replace("2024-09-02T08:15:00+07:00", "2024-09-02T08:15:00"), "submitted_at"),
        (GOOD.replace("2024-09-02T08:15:00+07:00", "2024-02-30 08:15:00"), "submitted_at"),
        (GOOD.replace(",2024,", ",2024.0,"), "survey_year"),
        (GOOD.replace(",2024,", ",0x7E8,"), "survey_year"),
        (GOOD.replace("33.19", "33-19"), "work_district_code"),
        (GOOD.replace(",33,", ",3,"), "work_province_code"),
        (GOOD.replace(",300,", ",-5,"), "duration_seconds"),
        (GOOD.replace(",300,", ",12.5,"), "duration_seconds"),
    ];
    for (line, field) in cases {
        let (r, detail) = reason(votes(&line));
        assert_eq!(r, Reason::InvalidValue, "{line}");
        assert!(detail.starts_with(field), "{field}: {detail}");
    }
}

#[test]
fn exactly_64_and_128_characters_are_allowed() {
    let line = GOOD.replace("r1", &"é".repeat(64)).replace("key1", &"ķ".repeat(128));
    assert!(votes(&line).is_ok());
}

#[test]
fn references_checked_in_order() {
    assert_eq!(reason(votes(&GOOD.replace(",2024,", ",2023,"))).0, Reason::YearMismatch);
    assert_eq!(reason(votes(&GOOD.replace("kab-kudus", "KAB-NOWHERE"))).0, Reason::UnknownInstitution);
    assert_eq!(reason(votes(&GOOD.replace("33.19", "3399"))).0, Reason::UnknownRegion);
    assert_eq!(reason(votes(&GOOD.replace("33.19", "3300"))).0, Reason::UnknownRegion);
    assert_eq!(reason(votes(&GOOD.replace(",33,", ",34,"))).0, Reason::RegionMismatch);
    // year mismatch outranks an unknown institution.
    assert_eq!(reason(votes(&GOOD.replace(",2024,", ",2023,").replace("kab-kudus", "NOPE"))).0, Reason::YearMismatch);
}

#[test]
fn picks_rules() {
    for picks in ["BP1|BP1", "BP1|ZZ9", "BP1||AK1", "BP1|AK1|KO1|HA1|LO1|AD1|KL1|BP2|AK2|KO2|HA2"] {
        assert_eq!(reason(votes(&GOOD.replace("BP1|ak2| X01 ", picks))).0, Reason::InvalidPicks, "{picks}");
    }
    // Ten picks are allowed; distractors only score nothing.
    let ten = "BP1|AK1|KO1|HA1|LO1|AD1|KL1|BP2|AK2|X24";
    assert!(votes(&GOOD.replace("BP1|ak2| X01 ", ten)).is_ok());
    let only_distractor = votes(&GOOD.replace("BP1|ak2| X01 ", "x05")).unwrap();
    assert_eq!(only_distractor.answers, [0; 21]);
}

#[test]
fn speeder_below_threshold_only() {
    assert_eq!(reason(votes(&GOOD.replace(",300,", ",59,"))).0, Reason::Speeder);
    assert!(votes(&GOOD.replace(",300,", ",60,")).is_ok());
    assert!(votes(&GOOD.replace(",300,", ",,")).is_ok());
    // invalid picks outrank speeding.
    assert_eq!(reason(votes(&GOOD.replace(",300,", ",5,").replace("X01", "BP1"))).0, Reason::InvalidPicks);
}

#[test]
fn json_lines_values_strings_and_numbers() {
    let fx = fixture("votes");
    let ok = json(
        &fx,
        br#"{"response_id": 123, "respondent_key": "k", "submitted_at": "2024-09-02T01:15:00Z", "survey_year": 2024, "institution_code": " kemenkeu ", "WORK_DISTRICT_CODE": 3319, "current_culture": ["ad1", "KL3"]}"#,
    )
    .unwrap();
    assert_eq!(&*ok.response_id, "123");
    assert_eq!(ok.answers[15], 1);
    assert_eq!(ok.answers[20], 1);
    let base = r#""response_id": "r", "respondent_key": "k", "submitted_at": "2024-09-02 08:15:00", "institution_code": "KEMENKEU", "work_district_code": "3319""#;
    let case = |extra: &str| json(&fx, format!("{{{base}, {extra}}}").as_bytes());
    assert_eq!(reason(case(r#""survey_year": 2024.0, "current_culture": "BP1""#)).0, Reason::InvalidValue);
    assert_eq!(reason(case(r#""survey_year": true, "current_culture": "BP1""#)).0, Reason::InvalidValue);
    assert_eq!(reason(case(r#""survey_year": 2024, "current_culture": []"#)).0, Reason::InvalidPicks);
    assert_eq!(reason(case(r#""survey_year": 2024, "current_culture": ["BP1", 3]"#)).0, Reason::InvalidValue);
    assert_eq!(reason(case(r#""survey_year": 2024, "current_culture": null"#)).0, Reason::MissingField);
    assert_eq!(reason(case(r#""survey_year": 2024, "current_culture": " "#)).0, Reason::MalformedRow);
    assert_eq!(reason(json(&fx, b"[1, 2]")).0, Reason::MalformedRow);
    assert_eq!(reason(json(&fx, b"\"text\"")).0, Reason::MalformedRow);
}

#[test]
fn likert_scores_and_straightliners() {
    let fx = fixture("likert");
    let items: Vec<&str> = BEHAVIOUR_CODES.to_vec();
    let header = format!(
        "response_id,respondent_key,submitted_at,survey_year,institution_code,work_district_code,{}",
        items.join(",")
    );
    let answers = |vals: &[u8]| vals.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",");
    let prefix = "r1,k1,2024-09-02 08:15:00,2024,KEMENKEU,3171";
    let mut vals = [3u8; 21];
    vals[0] = 5;
    vals[20] = 1;
    let r = run_csv(&fx, &header, &format!("{prefix},{}", answers(&vals))).unwrap();
    assert_eq!(r.answers[0], 4);
    assert_eq!(r.answers[20], 0);
    assert_eq!(r.answers[5], 2);
    assert_eq!(value_numerators(&r.answers, Instrument::Likert)[0], 4 + 2 + 2);
    assert_eq!(reason(run_csv(&fx, &header, &format!("{prefix},{}", answers(&[4; 21])))).0, Reason::Straightliner);
    vals[3] = 6;
    let (r, detail) = reason(run_csv(&fx, &header, &format!("{prefix},{}", answers(&vals))));
    assert_eq!(r, Reason::InvalidValue);
    assert!(detail.starts_with("AK1"), "{detail}");
}

#[test]
fn timestamps_parse_all_allowed_forms() {
    let wib = 7 * 3600;
    let base = parse_timestamp("2024-09-02T01:15:00Z", wib).unwrap();
    assert_eq!(parse_timestamp("2024-09-02T08:15:00+07:00", wib), Some(base));
    assert_eq!(parse_timestamp("2024-09-02 08:15:00", wib), Some(base));
    assert_eq!(parse_timestamp("2024-09-02t01:15:00z", wib), Some(base));
    let frac = parse_timestamp("2024-09-02T01:15:00.123456789Z", wib).unwrap();
    assert_eq!((frac.secs, frac.nanos), (base.secs, 123_456_789));
    assert!(parse_timestamp("2024-09-02T01:15:00.5Z", wib).unwrap() > base);
    for bad in [
        "2024-09-02T01:15:00",
        "2024-09-02 08:15",
        "2024-9-02 08:15:00",
        "2024-09-02T25:00:00Z",
        "2024-09-02T01:15:00+0700",
        "2024-09-02T01:15:00.Z",
        "2024-09-02 08:15:00 ",
    ] {
        assert_eq!(parse_timestamp(bad, wib), None, "{bad}");
    }
}
