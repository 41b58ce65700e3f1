//! Successful runs: counts per reason, the records invariant, table contents, year on year,
//! idempotency and thread-count independence.

use super::*;

/// The 2024 dataset: good records for five institutions and one record of every defect.
pub fn dataset(p: &Project) {
    let mut main = vec![HEADER.to_string()];
    main.extend(good("keu", "KEMENKEU", "3171", 30));
    main.extend(good("keu-kudus", "kemenkeu", "33.19", 15)); // case and dotted code normalised
    main.extend(good("kudus", "KAB-KUDUS", "3319", 38));
    main.extend(good("pas", "KOTA-PASURUAN", "3575", 20));
    main.extend(good("prov", "PROV-JATENG", "3321", 12));
    main.extend(good("tiny", "KAB-TINY", "3321", 5));
    // One of each defect, in this order (line numbers follow).
    main.push("bad-1,x,y".into()); // malformed_row: field count
    main.push(rec("bad-2", "k\"q", "2024-09-02T08:15:00+07:00", "KAB-KUDUS", "3319", "BP1")); // malformed: quote
    main.push(rec("", "k-missing", "2024-09-02T08:15:00+07:00", "KAB-KUDUS", "3319", "BP1")); // missing_field
    main.push(
        rec("bad-4", "k4", "2024-09-02T08:15:00+07:00", "KAB-KUDUS", "3319", "BP1").replace(",2024,", ",2024.0,"),
    ); // invalid_value
    main.push(rec("bad-5", "k5", "2024-09-02T08:15:00+07:00", "KAB-KUDUS", "3319", "BP1").replace(",2024,", ",2023,")); // year_mismatch
    main.push(rec("bad-6", "k6", "2024-09-02T08:15:00+07:00", "KAB-NOWHERE", "3319", "BP1")); // unknown_institution
    main.push(rec("bad-7", "k7", "2024-09-02T08:15:00+07:00", "KAB-KUDUS", "3399", "BP1")); // unknown_region
    main.push(
        rec("bad-8", "k8", "2024-09-02T08:15:00+07:00", "KAB-KUDUS", "3319", "BP1").replace("3319,,", "3319,34,"),
    ); // region_mismatch
    main.push(rec("bad-9", "k9", "2024-09-02T08:15:00+07:00", "KAB-KUDUS", "3319", "BP1|BP1")); // invalid_picks
    main.push(rec("bad-10", "k10", "2024-09-02T08:15:00+07:00", "KAB-KUDUS", "3319", "BP1").replace(",300,", ",10,")); // speeder
    main.push(String::new()); // blank line: not a record
    let mut text = main.join("\r\n").into_bytes();
    text.extend_from_slice(b"\r\nbad-11,k11,2024-09-02T08:15:00+07:00,2024,KAB-KUDUS,3319,,300,BP1\xff\r\n"); // invalid_encoding
    p.write("raw/2024/a-main.csv", text);

    // A later file: a resubmission (supersedes kudus-0) and a duplicate response id.
    let later = [
        r#"{"response_id": "kudus-0-again", "respondent_key": "kudus-key-0", "submitted_at": "2024-10-30 09:00:00", "survey_year": 2024, "institution_code": "KAB-KUDUS", "work_district_code": "3319", "current_culture": ["AD1", "AD2"]}"#,
        r#"{"response_id": "pas-3", "respondent_key": "another-person", "submitted_at": "2024-10-30 09:00:00", "survey_year": 2024, "institution_code": "KOTA-PASURUAN", "work_district_code": "3575", "current_culture": "BP1"}"#,
        "",
    ];
    p.write("raw/2024/b-later.jsonl", later.join("\n"));
    p.write("raw/2024/notes.txt", "not a dump");
}

fn reason_counts(batch: &RecordBatch) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in strings(batch, "reason") {
        *out.entry(r.unwrap()).or_default() += 1;
    }
    out
}

#[test]
fn every_defect_is_quarantined_with_its_reason() {
    let p = Project::new();
    dataset(&p);
    let out = p.aggregate(2024, &[]);
    assert_exit(&out, 0);
    let q = &p.read("quarantine/year=2024/part-00000.parquet")[0];
    let counts = reason_counts(q);
    let expected: BTreeMap<String, usize> = [
        ("malformed_row", 2),
        ("invalid_encoding", 1),
        ("missing_field", 1),
        ("invalid_value", 1),
        ("year_mismatch", 1),
        ("unknown_institution", 1),
        ("unknown_region", 1),
        ("region_mismatch", 1),
        ("invalid_picks", 1),
        ("speeder", 1),
        ("superseded", 1),
        ("duplicate_response_id", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(counts, expected);

    // Sorted by file then line; line numbers are physical lines (header = 1).
    let files = strings(q, "source_file");
    let lines = ints(q, "line_number");
    let keys: Vec<(String, i64)> = files.iter().zip(&lines).map(|(f, l)| (f.clone().unwrap(), l.unwrap())).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    let malformed = strings(q, "reason").iter().position(|r| r.as_deref() == Some("malformed_row")).unwrap();
    assert_eq!(keys[malformed], ("a-main.csv".to_string(), 2 + 120));
    let superseded = strings(q, "reason").iter().position(|r| r.as_deref() == Some("superseded")).unwrap();
    assert_eq!(keys[superseded], ("a-main.csv".to_string(), 2 + 45)); // kudus-0
    assert!(strings(q, "detail")[superseded].as_ref().unwrap().contains("kudus-0-again"));
    assert!(strings(q, "raw")[superseded].as_ref().unwrap().starts_with("kudus-0,kudus-key-0,"));
    let dup = strings(q, "reason").iter().position(|r| r.as_deref() == Some("duplicate_response_id")).unwrap();
    assert_eq!(keys[dup], ("b-later.jsonl".to_string(), 2));
    let enc = strings(q, "reason").iter().position(|r| r.as_deref() == Some("invalid_encoding")).unwrap();
    assert!(strings(q, "raw")[enc].as_ref().unwrap().ends_with("BP1\u{fffd}"), "CRLF dropped, bad byte replaced");
    assert_eq!(strings(q, "response_id")[malformed], None, "malformed rows have no response_id");
    assert_eq!(strings(q, "response_id")[superseded].as_deref(), Some("kudus-0"));

    // The manifest proves records_read = accepted + quarantined per file.
    let m = p.manifest(2024);
    let inputs = m["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 2);
    for f in inputs {
        let read = f["records_read"].as_u64().unwrap();
        assert_eq!(read, f["accepted"].as_u64().unwrap() + f["quarantined"].as_u64().unwrap());
        let by_reason: u64 =
            f["quarantined_by_reason"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(by_reason, f["quarantined"].as_u64().unwrap());
        assert_eq!(f["sha256"].as_str().unwrap().len(), 64);
    }
    assert_eq!(inputs[0]["records_read"], 120 + 11);
    assert_eq!(inputs[1]["records_read"], 2);
    assert_eq!(m["totals"]["accepted"], 120);
    assert_eq!(m["totals"]["quarantined"], 13);
    assert_eq!(m["ignored_files"][0], "notes.txt");
    assert_eq!(m["tables"]["institution_index"]["rows"], 5);
}

#[test]
fn institution_table_contents() {
    let p = Project::new();
    dataset(&p);
    assert_exit(&p.aggregate(2024, &[]), 0);
    let t = &p.read("warehouse/institution_index/year=2024/part-00000.parquet")[0];
    let codes: Vec<String> = strings(t, "institution_code").into_iter().map(Option::unwrap).collect();
    assert_eq!(codes, ["KAB-KUDUS", "KAB-TINY", "KEMENKEU", "KOTA-PASURUAN", "PROV-JATENG"]);
    assert_eq!(ints(t, "n_respondents"), [Some(38), Some(5), Some(45), Some(20), Some(12)].map(|x| x));
    assert_eq!(ints(t, "min_required"), [Some(37), Some(5), Some(53), Some(33), Some(223)]);
    // KEMENKEU: 45 < 53 → not eligible.
    assert_eq!(bools(t, "eligible"), [Some(true), Some(true), Some(false), Some(false), Some(false)]);
    assert_eq!(bools(t, "suppressed"), [Some(false), Some(true), Some(false), Some(false), Some(false)]);
    let idx = floats(t, "index_overall");
    assert!(idx[1].is_none(), "suppressed row has no index");
    assert!(idx[3].is_some(), "ineligible rows keep their index");
    assert_eq!(strings(t, "category")[1], None);
    assert_eq!(ints(t, "rank_national"), [Some(1), None, None, None, None]);
    assert_eq!(strings(t, "district_code")[2], None);
    assert_eq!(strings(t, "district_name")[0].as_deref(), Some("Kabupaten Kudus"));
    assert_eq!(strings(t, "province_name")[0].as_deref(), Some("Jawa Tengah"));
    // Kudus: resubmission kept (AD1|AD2), so its picks changed; the index is a mean of 0/1s.
    let resp = floats(t, "response_rate");
    assert!((resp[0].unwrap() - 38.0 / 40.0).abs() < 1e-15);
    // Metadata.
    let file = std::fs::File::open(p.path("warehouse/institution_index/year=2024/part-00000.parquet")).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
    use parquet::file::reader::FileReader;
    let kv = reader.metadata().file_metadata().key_value_metadata().unwrap();
    let keys: Vec<&str> = kv.iter().map(|k| k.key.as_str()).collect();
    for key in ["berakhlak.run_id", "berakhlak.version", "berakhlak.config_sha256"] {
        assert!(keys.contains(&key), "{key} missing: {keys:?}");
    }
}

#[test]
fn domain_tables_partitions_and_behaviours() {
    let p = Project::new();
    dataset(&p);
    assert_exit(&p.aggregate(2024, &[]), 0);
    // Eligible: Kudus (3319) and the tiny regency (3321): districts 3319, 3321; provinces 33.
    let d = &p.read("warehouse/district_index/year=2024/province_code=33/part-00000.parquet")[0];
    assert_eq!(strings(d, "district_code"), [Some("3319".into()), Some("3321".into())]);
    assert!(d.column_by_name("province_code").is_none(), "partition column only in the path");
    assert_eq!(ints(d, "n_respondents"), [Some(38), Some(5)]);
    assert_eq!(bools(d, "suppressed"), [Some(false), Some(true)]);
    assert!(floats(d, "index_overall")[1].is_none());
    assert_eq!(ints(d, "rank_in_province"), [Some(1), None]);
    assert!(!p.path("warehouse/district_index/year=2024/province_code=31").exists());
    let n = &p.read("warehouse/national_index/year=2024/part-00000.parquet")[0];
    assert_eq!(strings(n, "country_code"), [Some("ID".into())]);
    assert_eq!(ints(n, "n_respondents"), [Some(43)]);
    assert_eq!(ints(n, "n_institutions"), [Some(2)]);
    assert_eq!(ints(n, "n_institutions_seated"), [Some(1)], "the tiny regency is suppressed");
    let pop = floats(n, "population_estimate")[0].unwrap();
    assert!((pop - 45.0).abs() < 1e-9, "Σw = 40 + 5, got {pop}");
    let kudus_index =
        floats(&p.read("warehouse/institution_index/year=2024/part-00000.parquet")[0], "index_overall")[0];
    assert_eq!(floats(n, "inst_mean_overall")[0], kudus_index);
    for (level, units) in [("institution", 5), ("district", 2), ("province", 1), ("national", 1)] {
        let b = &p.read(&format!("warehouse/behaviour_scores/year=2024/level={level}/part-00000.parquet"))[0];
        assert_eq!(b.num_rows(), 21 * units, "{level}");
        assert!(b.column_by_name("level").is_none());
        assert_eq!(strings(b, "behaviour_code")[0].as_deref(), Some("BP1"));
        assert_eq!(strings(b, "value_code")[20].as_deref(), Some("kl"));
    }
    for table in ["institution_index", "district_index", "province_index", "national_index", "behaviour_scores"] {
        assert!(p.path(&format!("warehouse/{table}/year=2024/_SUCCESS")).exists(), "{table}");
    }
}

#[test]
fn quarantine_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let p = Project::new();
    dataset(&p);
    assert_exit(&p.aggregate(2024, &[]), 0);
    let mode = |rel: &str| std::fs::metadata(p.path(rel)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("quarantine"), 0o700);
    assert_eq!(mode("quarantine/year=2024"), 0o700);
    assert_eq!(mode("quarantine/year=2024/part-00000.parquet"), 0o600);
}

fn all_tables(p: &Project, year: i32) -> BTreeMap<String, Vec<RecordBatch>> {
    p.snapshot("warehouse")
        .keys()
        .filter(|k| k.ends_with(".parquet") && k.contains(&format!("year={year}")))
        .map(|k| (k.clone(), p.read(&format!("warehouse/{k}"))))
        .collect()
}

#[test]
fn rerun_gives_identical_data_whatever_the_threads() {
    let p = Project::new();
    dataset(&p);
    assert_exit(&p.aggregate(2024, &[]), 0);
    let first = all_tables(&p, 2024);
    let run_1 = p.manifest(2024)["run_id"].clone();
    assert_exit(&p.aggregate(2024, &["--threads", "1"]), 0);
    let second = all_tables(&p, 2024);
    assert_eq!(first.keys().collect::<Vec<_>>(), second.keys().collect::<Vec<_>>());
    assert_eq!(first, second);
    assert_ne!(run_1, p.manifest(2024)["run_id"]);
}

#[test]
fn year_on_year_from_the_previous_published_year() {
    let p = Project::new();
    let mut y2023 = vec![HEADER.to_string()];
    y2023.extend(
        good("k23", "KAB-KUDUS", "3319", 40)
            .into_iter()
            .map(|r| r.replace(",2024,", ",2023,").replace("BP1|AK1", "BP1|AK1|KO1|HA1")),
    );
    p.write("raw/2023/a.csv", y2023.join("\n"));
    assert_exit(&p.aggregate(2023, &[]), 0);
    dataset(&p);
    assert_exit(&p.aggregate(2024, &[]), 0);
    let prev = &p.read("warehouse/institution_index/year=2023/part-00000.parquet")[0];
    let cur = &p.read("warehouse/institution_index/year=2024/part-00000.parquet")[0];
    let before = floats(prev, "index_overall")[0].unwrap();
    let now = floats(cur, "index_overall")[0].unwrap();
    assert_eq!(floats(cur, "prev_index_overall")[0], Some(before));
    assert_eq!(floats(cur, "delta_index_overall")[0], Some(now - before));
    // No 2023 row value for the tiny regency (suppressed in 2023: n = 0) and no current value.
    assert_eq!(floats(cur, "delta_index_overall")[1], None);
    let d = &p.read("warehouse/district_index/year=2024/province_code=33/part-00000.parquet")[0];
    assert!(floats(d, "prev_index_overall")[0].is_some());
    assert!(floats(d, "prev_inst_mean_overall")[0].is_some());
    let n = &p.read("warehouse/national_index/year=2024/part-00000.parquet")[0];
    assert!(floats(n, "delta_inst_mean_overall")[0].is_some());
    // The 2023 partition is untouched by the 2024 run.
    assert_eq!(p.read("warehouse/institution_index/year=2023/part-00000.parquet")[0], *prev);
}

#[test]
fn validate_publishes_nothing() {
    let p = Project::new();
    dataset(&p);
    let out = p.run(&["validate", "--year", "2024", "--config", "config.toml"]);
    assert_exit(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("records read"), "{stdout}");
    assert!(stdout.contains("superseded"), "{stdout}");
    assert!(!p.path("warehouse").exists());
    assert!(!p.path("quarantine").exists());
}

#[test]
fn likert_straightliners_and_scores() {
    let p = Project::new();
    p.config("[survey]\ninstrument = \"likert\"\n[estimation]\nmin_floor = 2\nsuppression_min_n = 2\n[publish]\nmax_quarantine_ratio = 0.5\n");
    let items = "BP1,BP2,BP3,AK1,AK2,AK3,KO1,KO2,KO3,HA1,HA2,HA3,LO1,LO2,LO3,AD1,AD2,AD3,KL1,KL2,KL3";
    let mut lines = vec![format!(
        "response_id;respondent_key;submitted_at;survey_year;institution_code;work_district_code;{}",
        items.replace(',', ";")
    )];
    let answers = |first: u8, rest: u8| {
        let mut v = vec![rest.to_string(); 21];
        v[0] = first.to_string();
        v.join(";")
    };
    lines.push(format!("r1;k1;2024-09-02 08:00:00;2024;KAB-TINY;3321;{}", answers(5, 3)));
    lines.push(format!("r2;k2;2024-09-02 08:00:00;2024;KAB-TINY;3321;{}", answers(1, 3)));
    lines.push(format!("r3;k3;2024-09-02 08:00:00;2024;KAB-TINY;3321;{}", answers(4, 4))); // straightliner
    p.write("raw/2024/likert.csv", lines.join("\n"));
    assert_exit(&p.aggregate(2024, &[]), 0);
    let q = &p.read("quarantine/year=2024/part-00000.parquet")[0];
    assert_eq!(strings(q, "reason"), [Some("straightliner".into())]);
    let t = &p.read("warehouse/institution_index/year=2024/part-00000.parquet")[0];
    // Mean answer 3 everywhere (BP1: (5+1)/2 = 3) → 50.
    let idx = floats(t, "index_overall")[1].unwrap();
    assert!((idx - 50.0).abs() < 1e-12, "{idx}");
    let b = &p.read("warehouse/behaviour_scores/year=2024/level=institution/part-00000.parquet")[0];
    let scores = floats(b, "score");
    assert_eq!(scores[21], Some(50.0)); // KAB-TINY BP1: mean (4 + 0)/2 / 4
}
