//! Tests of `generate`: determinism, the master, the national figures, and — through a small
//! independent reading of the dumps that applies SPEC 3 — that every record ends where the
//! summary says a correct pipeline run must put it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Parser;

use super::*;
use crate::catalogue::{behaviour_index, BEHAVIOUR_COUNT};
use crate::ingest::csv::{CsvRecord, CsvSplitter};
use crate::ingest::fields;
use crate::reference::{normalise_district, parse_int, InstitutionType, Master};

fn options(out: &Path, year: i32, respondents: u64) -> GenerateOptions {
    GenerateOptions {
        year,
        out: out.to_path_buf(),
        respondents,
        seed: 7,
        bad_share: 0.005,
        duplicate_share: 0.01,
        files: 4,
        format: DumpFormat::Csv,
        gzip: false,
        delimiter: ",".into(),
        vary_delimiters: false,
        instrument: GenInstrument::Votes,
        regions: PathBuf::from("config/reference/regions.csv"),
        eligible_target: 442,
    }
}

fn regions() -> Regions {
    Regions::load(Path::new("config/reference/regions.csv")).unwrap()
}

fn read_bytes(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap();
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out).unwrap();
        out
    } else {
        raw
    }
}

/// An accepted-or-not record as read back.
struct Candidate {
    key: String,
    id: String,
    millis: i64,
    institution: String,
    x: [f64; VALUE_COUNT],
}

/// What an independent reading of the dumps finds.
#[derive(Default)]
struct Found {
    records: u64,
    reasons: BTreeMap<String, u64>,
    accepted: Vec<(String, [f64; VALUE_COUNT])>,
    /// Superseded records with the same instant as the kept one (response_id decided).
    superseded_same_instant: u64,
}

impl Found {
    fn count(&self, reason: &str) -> u64 {
        self.reasons.get(reason).copied().unwrap_or(0)
    }
}

/// Field values of one record, by slot; `culture_array` when JSON gave an array.
#[derive(Default)]
struct Values {
    slots: Vec<Option<String>>,
    culture_array: Option<Vec<String>>,
}

fn parse_millis(text: &str) -> Option<i64> {
    let t = text.trim();
    if t.contains('T') {
        chrono::DateTime::parse_from_rfc3339(t).ok().map(|d| d.timestamp_millis())
    } else {
        chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S")
            .ok()
            .map(|d| d.and_utc().timestamp_millis() - 7 * 3_600_000)
    }
}

/// SPEC 3, simplified to what the generator can produce; `Err(reason)` or the candidate.
fn judge(v: &Values, year: i32, likert: bool, master: &Master, regions: &Regions) -> Result<Candidate, &'static str> {
    let get = |slot: usize| v.slots[slot].as_deref().map(str::trim).unwrap_or("");
    let instrument = if likert { crate::config::Instrument::Likert } else { crate::config::Instrument::Votes };
    for &slot in fields::required(instrument) {
        let present =
            if slot == fields::CURRENT_CULTURE && v.culture_array.is_some() { true } else { !get(slot).is_empty() };
        if !present {
            return Err("missing_field");
        }
    }
    let id = get(fields::RESPONSE_ID);
    let millis = parse_millis(get(fields::SUBMITTED_AT));
    let survey_year = parse_int(get(fields::SURVEY_YEAR));
    let district = normalise_district(get(fields::WORK_DISTRICT_CODE));
    let duration = match get(fields::DURATION_SECONDS) {
        "" => Some(None),
        d => parse_int(d).filter(|d| *d >= 0).map(Some),
    };
    let mut answers = [0u8; BEHAVIOUR_COUNT];
    let mut likert_ok = true;
    if likert {
        for (b, a) in answers.iter_mut().enumerate() {
            match parse_int(get(fields::LIKERT_FIRST + b)) {
                Some(n) if (1..=5).contains(&n) => *a = n as u8,
                _ => likert_ok = false,
            }
        }
    }
    let (Some(millis), Some(survey_year), Some(district), Some(duration), true, true) =
        (millis, survey_year, district, duration, id.chars().count() <= 64, likert_ok)
    else {
        return Err("invalid_value");
    };
    if survey_year != i64::from(year) {
        return Err("year_mismatch");
    }
    let institution = get(fields::INSTITUTION_CODE).to_uppercase();
    if master.index_of(&institution).is_none() {
        return Err("unknown_institution");
    }
    let Some(d) = regions.district_index(district) else { return Err("unknown_region") };
    let province = &regions.districts[d as usize].province_code;
    let wp = get(fields::WORK_PROVINCE_CODE);
    if !wp.is_empty() && wp != province {
        return Err("region_mismatch");
    }
    let mut x = [0.0; VALUE_COUNT];
    if likert {
        x = model::likert_scores(&answers);
    } else {
        let codes: Vec<String> = match &v.culture_array {
            Some(items) => items.iter().map(|c| c.trim().to_uppercase()).collect(),
            None => get(fields::CURRENT_CULTURE).split('|').map(|c| c.trim().to_uppercase()).collect(),
        };
        let distinct: BTreeSet<&String> = codes.iter().collect();
        if codes.is_empty() || codes.len() > 10 || distinct.len() != codes.len() {
            return Err("invalid_picks");
        }
        for code in &codes {
            if let Some(b) = behaviour_index(code) {
                x[b / 3] = 1.0;
            } else if !model::DISTRACTORS.contains(&code.as_str()) {
                return Err("invalid_picks");
            }
        }
    }
    if duration.is_some_and(|d| d < 60) {
        return Err("speeder");
    }
    if likert && answers.iter().all(|&a| a == answers[0]) {
        return Err("straightliner");
    }
    Ok(Candidate { key: get(fields::RESPONDENT_KEY).to_string(), id: id.to_string(), millis, institution, x })
}

fn csv_values(header: &[Option<usize>], rec: &CsvRecord) -> Values {
    let mut v = Values { slots: vec![None; fields::FIELD_COUNT], culture_array: None };
    for (col, slot) in header.iter().enumerate() {
        if let Some(slot) = slot {
            v.slots[*slot] = Some(String::from_utf8_lossy(rec.field(col)).into_owned());
        }
    }
    v
}

fn json_values(line: &[u8]) -> Result<Values, &'static str> {
    let text = std::str::from_utf8(line).map_err(|_| "invalid_encoding")?;
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| "malformed_row")?;
    let object = value.as_object().ok_or("malformed_row")?;
    let mut v = Values { slots: vec![None; fields::FIELD_COUNT], culture_array: None };
    for (key, value) in object {
        let Some(slot) = fields::slot_of(key) else { continue };
        match value {
            serde_json::Value::String(s) => v.slots[slot] = Some(s.clone()),
            serde_json::Value::Number(n) => v.slots[slot] = Some(n.to_string()),
            serde_json::Value::Array(items) if slot == fields::CURRENT_CULTURE => {
                v.culture_array = Some(items.iter().map(|i| i.as_str().unwrap_or("?").to_string()).collect());
            }
            _ => return Err("malformed_row"),
        }
    }
    Ok(v)
}

/// Reads every dump back and applies validation and deduplication.
fn read_back(summary: &GenerateSummary, year: i32, likert: bool) -> Found {
    let regions = regions();
    let master = Master::load(&summary.master, &regions).unwrap();
    let mut found = Found::default();
    let mut candidates: Vec<Candidate> = Vec::new();
    let reject = |found: &mut Found, reason: &str| *found.reasons.entry(reason.to_string()).or_insert(0) += 1;
    let mut dumps = summary.dumps.clone();
    dumps.sort();
    assert_eq!(dumps, summary.dumps, "dumps are listed in reading order");
    for path in &dumps {
        let bytes = read_bytes(path);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.contains(".csv") {
            let (mut splitter, header) = CsvSplitter::open(&bytes[..]).unwrap().unwrap();
            let slots: Vec<Option<usize>> =
                (0..header.len()).map(|i| fields::slot_of(&String::from_utf8_lossy(header.field(i)))).collect();
            let mut rec = CsvRecord::default();
            while splitter.read_record(&mut rec).unwrap() {
                found.records += 1;
                if rec.fault.is_some() || rec.len() != header.len() {
                    reject(&mut found, "malformed_row");
                } else if std::str::from_utf8(&rec.raw).is_err() {
                    reject(&mut found, "invalid_encoding");
                } else {
                    match judge(&csv_values(&slots, &rec), year, likert, &master, &regions) {
                        Ok(c) => candidates.push(c),
                        Err(reason) => reject(&mut found, reason),
                    }
                }
            }
        } else {
            for line in bytes.split(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.iter().all(|b| b.is_ascii_whitespace()) {
                    continue;
                }
                found.records += 1;
                match json_values(line).and_then(|v| judge(&v, year, likert, &master, &regions)) {
                    Ok(c) => candidates.push(c),
                    Err(reason) => reject(&mut found, reason),
                }
            }
        }
    }
    // Deduplication: latest submitted_at, then greatest response_id, then first.
    let mut best: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, c) in candidates.iter().enumerate() {
        match best.get(c.key.as_str()) {
            Some(&j) => {
                let other = &candidates[j];
                if (c.millis, c.id.as_bytes()) > (other.millis, other.id.as_bytes()) {
                    best.insert(&c.key, i);
                }
            }
            None => {
                best.insert(&c.key, i);
            }
        }
    }
    let kept: HashSet<usize> = best.values().copied().collect();
    let mut ids = HashSet::new();
    for (i, c) in candidates.iter().enumerate() {
        if !kept.contains(&i) {
            reject(&mut found, "superseded");
            if candidates[best[c.key.as_str()]].millis == c.millis {
                found.superseded_same_instant += 1;
            }
        } else if !ids.insert(c.id.clone()) {
            reject(&mut found, "duplicate_response_id");
        } else {
            found.accepted.push((c.institution.clone(), c.x));
        }
    }
    found
}

fn shares(found: &Found) -> [f64; VALUE_COUNT] {
    let mut s = [0.0; VALUE_COUNT];
    for (_, x) in &found.accepted {
        for v in 0..VALUE_COUNT {
            s[v] += x[v];
        }
    }
    s.map(|t| 100.0 * t / found.accepted.len() as f64)
}

fn assert_order(s: &[f64; VALUE_COUNT]) {
    let min = s.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(s[5], min, "Adaptif lowest: {s:?}");
    assert_eq!(s[1], max, "Akuntabel highest: {s:?}");
}

fn all_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for sub in ["", "raw"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                out.insert(
                    format!("{sub}/{}", entry.file_name().to_string_lossy()),
                    std::fs::read(entry.path()).unwrap(),
                );
            }
        }
    }
    out
}

#[test]
fn same_options_give_the_same_bytes() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut opts = options(a.path(), 2024, 3000);
    opts.format = DumpFormat::Mixed;
    opts.gzip = true;
    opts.vary_delimiters = true;
    opts.files = 5;
    let first = run(&opts).unwrap();
    opts.out = b.path().to_path_buf();
    let second = run(&opts).unwrap();
    assert_eq!(first.records_written, second.records_written);
    let (fa, fb) = (all_files(a.path()), all_files(b.path()));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    assert_eq!(fa.len(), 1 + 5 + 1, "{:?}", fa.keys());
    for (name, bytes) in &fa {
        assert!(bytes == &fb[name], "{name} differs between runs");
    }
    // Another seed gives other data.
    opts.seed = 8;
    let c = tempfile::tempdir().unwrap();
    opts.out = c.path().to_path_buf();
    run(&opts).unwrap();
    assert_ne!(all_files(c.path())["raw/part-0000.csv.gz"], fa["raw/part-0000.csv.gz"]);
}

#[test]
fn master_loads_and_codes_are_stable_across_years() {
    let regions = regions();
    let mut masters = Vec::new();
    for year in [2023, 2024] {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = options(dir.path(), year, 2000);
        opts.files = 1;
        let summary = run(&opts).unwrap();
        let master = Master::load(&summary.master, &regions).unwrap();
        assert_eq!(master.len(), 632);
        assert_eq!(summary.institutions, 632);
        let count = |k: InstitutionType| master.institutions.iter().filter(|i| i.kind == k).count();
        assert_eq!(count(InstitutionType::Kementerian), 34);
        assert_eq!(count(InstitutionType::Lembaga), 46);
        assert_eq!(count(InstitutionType::Provinsi), 38);
        assert_eq!(count(InstitutionType::Kabupaten) + count(InstitutionType::Kota), 514);
        for i in &master.institutions {
            if matches!(i.kind, InstitutionType::Kementerian | InstitutionType::Lembaga) {
                assert_eq!(i.province_code, "31");
            }
        }
        let kudus = master.index_of("KAB-3319").unwrap() as usize;
        assert_eq!(master.institutions[kudus].name, "Pemerintah Kabupaten Kudus");
        let pasuruan = master.index_of("KOTA-3575").unwrap() as usize;
        assert_eq!(master.institutions[pasuruan].kind, InstitutionType::Kota);
        assert!(master.index_of("KEMENKEU").is_some() && master.index_of("BKN").is_some());
        masters.push(master);
    }
    let codes = |m: &Master| m.institutions.iter().map(|i| i.code.clone()).collect::<Vec<_>>();
    assert_eq!(codes(&masters[0]), codes(&masters[1]));
    let drift: Vec<f64> = masters[0]
        .institutions
        .iter()
        .zip(&masters[1].institutions)
        .map(|(a, b)| b.headcount as f64 / a.headcount as f64)
        .collect();
    assert!(drift.iter().any(|d| *d != 1.0), "headcounts drift a little");
    let big: Vec<f64> =
        masters[0].institutions.iter().zip(&drift).filter(|(i, _)| i.headcount >= 100).map(|(_, d)| *d).collect();
    assert!(big.iter().all(|d| (0.85..1.15).contains(d)), "{big:?}");
}

#[test]
fn realistic_headcounts_are_national_sized() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), 2024, 2000);
    opts.eligible_target = 0;
    opts.files = 1;
    let summary = run(&opts).unwrap();
    let master = Master::load(&summary.master, &regions()).unwrap();
    assert!((3_000_000..6_000_000).contains(&summary.headcount_total), "{}", summary.headcount_total);
    for i in &master.institutions {
        match i.kind {
            InstitutionType::Kementerian | InstitutionType::Lembaga => {
                assert!((800..=100_000).contains(&i.headcount), "{} {}", i.code, i.headcount)
            }
            _ => assert!((300..=17_000).contains(&i.headcount), "{} {}", i.code, i.headcount),
        }
    }
    assert_eq!(summary.headcount_scale, 1.0);
}

#[test]
fn national_value_shares_land_near_the_published_ones() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), 2022, 20_000);
    let summary = run(&opts).unwrap();
    let found = read_back(&summary, 2022, false);
    assert_eq!(found.accepted.len() as u64, summary.respondents);
    let s = shares(&found);
    for v in 0..VALUE_COUNT {
        assert!((s[v] - PUBLISHED_2022[v]).abs() < 3.0, "{}: {:.1} vs {}", VALUE_CODES[v], s[v], PUBLISHED_2022[v]);
        assert!((s[v] - summary.expected.respondent_mean.values[v]).abs() < 1e-9);
        let inst_mean = summary.expected.inst_mean.values[v];
        assert!((inst_mean - PUBLISHED_2022[v]).abs() < 4.0, "{}: {inst_mean:.1}", VALUE_CODES[v]);
    }
    assert_order(&s);
    assert_order(&summary.expected.inst_mean.values);
    assert_order(&summary.expected.weighted.values);
    let overall = s.iter().sum::<f64>() / 7.0;
    assert!((overall - 61.0).abs() < 2.0, "{overall}");
    assert!((summary.expected.inst_mean.overall - 60.9).abs() < 2.5, "{}", summary.report());
}

#[test]
fn likert_answers_keep_the_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), 2025, 8000);
    opts.instrument = GenInstrument::Likert;
    opts.format = DumpFormat::Jsonl;
    opts.files = 2;
    let summary = run(&opts).unwrap();
    let found = read_back(&summary, 2025, true);
    assert_eq!(found.accepted.len() as u64, summary.respondents);
    let s = shares(&found);
    assert_order(&s);
    let targets = model::year_targets(2025);
    for v in 0..VALUE_COUNT {
        assert!((s[v] - 100.0 * targets[v]).abs() < 3.0, "{}: {:.1}", VALUE_CODES[v], s[v]);
    }
    assert!(found.count("straightliner") > 0);
}

#[test]
fn every_record_ends_where_the_summary_says() {
    for (likert, format) in [(false, DumpFormat::Mixed), (true, DumpFormat::Mixed), (false, DumpFormat::Csv)] {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = options(dir.path(), 2024, 5000);
        opts.bad_share = 0.03;
        opts.duplicate_share = 0.03;
        opts.format = format;
        opts.vary_delimiters = true;
        opts.gzip = likert;
        if likert {
            opts.instrument = GenInstrument::Likert;
        }
        let summary = run(&opts).unwrap();
        let found = read_back(&summary, 2024, likert);
        assert_eq!(found.records, summary.records_written);
        assert_eq!(found.accepted.len() as u64, summary.respondents, "{:?}", found.reasons);
        assert_eq!(found.count("superseded"), summary.resubmissions);
        assert!(found.superseded_same_instant >= 3, "{}", found.superseded_same_instant);
        assert_eq!(found.count("duplicate_response_id"), summary.duplicate_response_ids);
        for (reason, n) in &summary.bad_by_kind {
            assert_eq!(found.count(reason), *n, "{reason}: {:?}", found.reasons);
        }
        let bad: u64 = summary.bad_by_kind.values().sum();
        assert_eq!(bad, summary.bad_records);
        let total = found.accepted.len() as u64 + found.reasons.values().sum::<u64>();
        assert_eq!(total, found.records);
    }
}

#[test]
fn bad_and_duplicate_shares_are_as_requested() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), 2024, 20_000);
    let summary = run(&opts).unwrap();
    let bad_share = summary.bad_records as f64 / summary.records_written as f64;
    assert!((bad_share - 0.005).abs() < 0.0005, "{bad_share}");
    let resubmitters = summary.resubmissions as f64 / 1.1;
    assert!((resubmitters / 20_000.0 - 0.01).abs() < 0.001, "{}", summary.resubmissions);
    assert!((1..=40).contains(&summary.duplicate_response_ids));
    assert_eq!(
        summary.records_written,
        summary.respondents + summary.resubmissions + summary.duplicate_response_ids + summary.bad_records
    );
    let speeders = summary.bad_by_kind["speeder"] as f64 / summary.bad_records as f64;
    assert!((0.2..0.5).contains(&speeders), "{speeders}");
}

const SPEC_REASONS: [&str; 11] = [
    "malformed_row",
    "invalid_encoding",
    "missing_field",
    "invalid_value",
    "year_mismatch",
    "unknown_institution",
    "unknown_region",
    "region_mismatch",
    "invalid_picks",
    "speeder",
    "straightliner",
];

#[test]
fn every_reason_code_is_present_from_2000_respondents() {
    for likert in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = options(dir.path(), 2024, 2000);
        opts.bad_share = 0.01; // 2000 respondents → 21 bad records: one full cycle
        opts.format = DumpFormat::Mixed;
        if likert {
            opts.instrument = GenInstrument::Likert;
        }
        let summary = run(&opts).unwrap();
        let found = read_back(&summary, 2024, likert);
        for reason in SPEC_REASONS {
            let applies = match reason {
                "invalid_picks" => !likert,
                "straightliner" => likert,
                _ => true,
            };
            if applies {
                assert!(found.count(reason) >= 1, "{reason} missing (likert {likert}): {:?}", found.reasons);
                assert_eq!(found.count(reason), summary.bad_by_kind[reason]);
            }
        }
        assert!(found.count("superseded") >= 1 && found.count("duplicate_response_id") >= 1);
    }
}

#[test]
fn every_defect_variant_and_its_marker_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), 2024, 10_000);
    opts.bad_share = 0.03;
    opts.format = DumpFormat::Mixed;
    let summary = run(&opts).unwrap();
    for defect in [
        "csv_field_count",
        "json_syntax",
        "csv_broken_quote",
        "json_not_object",
        "byte_0xff",
        "empty_respondent_key",
        "blank_answer",
        "survey_year_decimal",
        "bad_submitted_at",
        "bad_district_format",
        "negative_duration",
        "response_id_too_long",
        "other_survey_year",
        "unknown_institution_code",
        "unknown_district",
        "province_mismatch",
        "too_many_picks",
        "repeated_pick",
        "unknown_pick",
        "json_empty_array",
        "speeder",
    ] {
        assert!(summary.bad_by_defect.get(defect).copied().unwrap_or(0) > 0, "{defect}: {:?}", summary.bad_by_defect);
    }
    let mut text = Vec::new();
    for path in &summary.dumps {
        text.extend(read_bytes(path));
    }
    let has = |needle: &[u8]| text.windows(needle.len()).any(|w| w == needle);
    for marker in [&b"\xFF"[..], b"2024.0", b"RESPONSE-ID-TOO-LONG-", b"\"current_culture\":[]", b"Laki\"laki"] {
        assert!(has(marker), "{}", String::from_utf8_lossy(marker));
    }
    assert!(DEFUNCT_MARKERS.iter().any(|m| has(m.as_bytes())));
}

const DEFUNCT_MARKERS: [&str; 6] = institutions::DEFUNCT_CODES;

#[test]
fn csv_files_have_the_quirks_of_real_exports() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), 2024, 20_000);
    opts.vary_delimiters = true;
    let summary = run(&opts).unwrap();
    let files: Vec<Vec<u8>> = summary.dumps.iter().map(|p| read_bytes(p)).collect();
    let names: Vec<String> =
        summary.dumps.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["part-0000.csv", "part-0001.csv", "part-0002.csv", "part-0003.csv"]);
    let header = |f: &Vec<u8>| f.split(|&b| b == b'\n').next().unwrap().to_vec();
    assert!(files.iter().filter(|f| f.starts_with(b"\xEF\xBB\xBF")).count() == 1, "one BOM");
    assert!(files.iter().any(|f| f.windows(2).any(|w| w == b"\r\n")), "CRLF");
    assert!(files.iter().any(|f| !f.windows(2).any(|w| w == b"\r\n")), "LF");
    assert!(header(&files[0]).starts_with(b"response_id,respondent_key,submitted_at"));
    assert!(!header(&files[1]).starts_with(b"response_id;respondent_key"), "reordered header");
    assert!(header(&files[1]).contains(&b';'));
    assert!(header(&files[2]).contains(&b'\t'));
    let all: Vec<u8> = files.concat();
    let has = |needle: &[u8]| all.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"\"L\n(laki-laki)\"") || has(b"\"L\r\n(laki-laki)\""), "quoted field spanning lines");
    assert!(has(b";\n") || has(b"\n\n") || has(b"\n   \n") || has(b"\r\n\r\n"), "blank lines");
    assert!(has(b" Ahli Muda\""), "quoted field with the delimiter");
    assert!(has(b".19,") || has(b".19;") || has(b".19\t"), "dotted district codes");
    assert!(has(b"+07:00") && has(b"Z,") && has(b"2024-08") && has(b"2024-10"));
    // The README is written and ignored by runs.
    assert!(summary.ignored[0].ends_with("raw/README.txt"));
}

#[test]
fn eligibility_is_targeted_for_small_samples() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), 2024, 20_000);
    let summary = run(&opts).unwrap();
    let e = &summary.expected;
    let share = e.eligible_institutions as f64 / 632.0;
    assert!((0.60..=0.75).contains(&share), "{}", summary.report());
    assert!(e.headcount_exceeded >= 2, "{}", summary.report());
    assert!(e.suppressed_institutions >= 5, "{}", summary.report());
    assert!(e.empty_institutions >= 3, "{}", summary.report());
    assert!(summary.headcount_scale < 1.0);
    // The same respondents per institution are read back.
    let found = read_back(&summary, 2024, false);
    let regions = regions();
    let master = Master::load(&summary.master, &regions).unwrap();
    let mut n = vec![0i64; master.len()];
    for (code, _) in &found.accepted {
        n[master.index_of(code).unwrap() as usize] += 1;
    }
    let eligible =
        master.institutions.iter().zip(&n).filter(|(i, n)| **n > 0 && **n >= min_required(i.headcount)).count();
    assert_eq!(eligible, e.eligible_institutions);
}

#[test]
fn stale_dumps_are_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), 2024, 500);
    opts.files = 6;
    run(&opts).unwrap();
    std::fs::write(dir.path().join("raw/keep-me.csv"), "x\n").unwrap();
    opts.files = 2;
    opts.gzip = true;
    let summary = run(&opts).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("raw"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["README.txt", "keep-me.csv", "part-0000.csv.gz", "part-0001.csv.gz"]);
    assert_eq!(summary.dumps.len(), 2);
    assert!(is_generated_dump("part-0003.jsonl.gz.partial"));
    assert!(!is_generated_dump("part-3.csv"));
}

#[test]
fn more_files_than_records_still_writes_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), 2024, 3);
    opts.files = 8;
    opts.format = DumpFormat::Jsonl;
    let summary = run(&opts).unwrap();
    assert_eq!(summary.dumps.len(), 8);
    let found = read_back(&summary, 2024, false);
    assert_eq!(found.accepted.len(), 3);
}

#[test]
fn options_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let usage = |o: GenerateOptions| matches!(run(&o), Err(Error::Usage(_)));
    let base = options(dir.path(), 2024, 100);
    assert!(usage(GenerateOptions { delimiter: "|".into(), ..base.clone() }));
    assert!(usage(GenerateOptions { files: 0, ..base.clone() }));
    assert!(usage(GenerateOptions { respondents: 0, ..base.clone() }));
    assert!(usage(GenerateOptions { bad_share: 1.5, ..base.clone() }));
    assert!(usage(GenerateOptions { year: 20240, ..base.clone() }));
    assert!(matches!(run(&GenerateOptions { regions: dir.path().join("nope.csv"), ..base }), Err(Error::Io { .. })));
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    generate: GenerateOptions,
}

#[test]
fn flags_parse_with_their_defaults() {
    let cli = Cli::try_parse_from(["x", "--year", "2024", "--out", "data"]).unwrap();
    let g = cli.generate;
    assert_eq!((g.year, g.respondents, g.seed, g.files), (2024, 20_000, 1, 4));
    assert_eq!(
        (g.format, g.instrument, g.gzip, g.eligible_target),
        (DumpFormat::Csv, GenInstrument::Votes, false, 442)
    );
    assert_eq!(g.delimiter, ",");
    let cli = Cli::try_parse_from([
        "x",
        "--year",
        "2025",
        "--out",
        "d",
        "--format",
        "mixed",
        "--instrument",
        "likert",
        "--gzip",
        "--delimiter",
        "tab",
        "--vary-delimiters",
        "--bad-share",
        "0.02",
        "--eligible-target",
        "0",
    ])
    .unwrap();
    assert_eq!(cli.generate.format, DumpFormat::Mixed);
    assert_eq!(cli.generate.instrument, GenInstrument::Likert);
    assert!(cli.generate.gzip && cli.generate.vary_delimiters);
    assert_eq!(cli.generate.eligible_target, 0);
}

/// Manual check of size and speed (release build):
/// `GEN_RESPONDENTS=5000000 cargo test --release --lib generate::tests::manual_large -- --ignored --nocapture`
#[test]
#[ignore = "manual benchmark; writes to $GEN_OUT or a temporary directory"]
fn manual_large() {
    let respondents = std::env::var("GEN_RESPONDENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let out = std::env::var("GEN_OUT").map(PathBuf::from).unwrap_or_else(|_| dir.path().to_path_buf());
    let year = std::env::var("GEN_YEAR").ok().and_then(|s| s.parse().ok()).unwrap_or(2024);
    let mut opts = options(&out, year, respondents);
    opts.seed = std::env::var("GEN_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
    opts.gzip = std::env::var("GEN_GZIP").is_ok();
    opts.format = if std::env::var("GEN_MIXED").is_ok() { DumpFormat::Mixed } else { DumpFormat::Csv };
    opts.eligible_target = std::env::var("GEN_ELIGIBLE").ok().and_then(|s| s.parse().ok()).unwrap_or(442);
    let started = std::time::Instant::now();
    let summary = run(&opts).unwrap();
    let bytes: u64 = summary.dumps.iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
    println!("{}", summary.report());
    println!("{} records, {} bytes in {:.2?}", summary.records_written, bytes, started.elapsed());
}
