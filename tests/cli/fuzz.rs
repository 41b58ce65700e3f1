//! Property tests over arbitrary bytes: the readers never panic, and every record read ends
//! in exactly one place — counted from two independent outputs (the quarantine file's rows
//! and the institutions' respondent counts) against the manifest's records_read.

use proptest::prelude::*;

use super::*;
use berakhlak::config::{Config, PathOverrides};
use berakhlak::pipeline::{run, RunOptions};

/// Bytes that matter to the parsers, plus fragments of valid records.
fn chunk() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::sample::select(vec![
            b",".to_vec(), b";".to_vec(), b"\t".to_vec(), b"\"".to_vec(), b"\n".to_vec(), b"\r\n".to_vec(),
            b"\r".to_vec(), b" ".to_vec(), b"|".to_vec(), b"{".to_vec(), b"}".to_vec(), b":".to_vec(),
            b"[".to_vec(), b"]".to_vec(), vec![0xff], vec![0xc3], vec![0xef, 0xbb, 0xbf], b"\"\"".to_vec(),
        ]),
        "[a-zA-Z0-9 .:+-]{0,12}".prop_map(String::into_bytes),
        Just(rec("r", "k", "2024-09-02T08:15:00+07:00", "KAB-KUDUS", "3319", "BP1|AK1").into_bytes()),
        Just(b"{\"response_id\": \"j\", \"respondent_key\": \"jk\", \"submitted_at\": \"2024-09-02 08:00:00\", \"survey_year\": 2024, \"institution_code\": \"KAB-KUDUS\", \"work_district_code\": \"3319\", \"current_culture\": [\"AD1\"]}".to_vec()),
    ]
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(chunk(), 0..120).prop_map(|parts| parts.concat())
}

fn check(p: &Project, name: &str, content: &[u8]) -> Result<(), TestCaseError> {
    p.write(&format!("raw/2024/{name}"), content);
    p.config("[publish]\nmax_quarantine_ratio = 1.0\n");
    let cfg = Config::load(&p.path("config.toml"), 2024, &PathOverrides::default()).unwrap();
    let opts = RunOptions { publish: true, quiet: true, run_id: "fuzz".into() };
    let report = run(&cfg, &opts).map_err(|e| TestCaseError::fail(format!("run failed: {e}")))?;
    let read = report.totals.records_read;
    let quarantined =
        p.read("quarantine/year=2024/part-00000.parquet").iter().map(|b| b.num_rows() as u64).sum::<u64>();
    let accepted: i64 = p
        .read("warehouse/institution_index/year=2024/part-00000.parquet")
        .iter()
        .flat_map(|b| ints(b, "n_respondents"))
        .flatten()
        .sum();
    prop_assert_eq!(
        read,
        quarantined + accepted as u64,
        "read {} = quarantined {} + accepted {}",
        read,
        quarantined,
        accepted
    );
    let m = p.manifest(2024);
    let f = &m["inputs"][0];
    prop_assert_eq!(
        f["records_read"].as_u64().unwrap(),
        f["accepted"].as_u64().unwrap() + f["quarantined"].as_u64().unwrap()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn csv_reader_accounts_for_every_record(tail in bytes()) {
        let p = Project::new();
        let mut content = format!("{HEADER}\n").into_bytes();
        content.extend_from_slice(&tail);
        check(&p, "fuzz.csv", &content)?;
    }

    #[test]
    fn jsonl_reader_accounts_for_every_record(content in bytes()) {
        let p = Project::new();
        check(&p, "fuzz.jsonl", &content)?;
    }

    #[test]
    fn csv_splitter_never_panics_on_any_bytes(content in prop::collection::vec(any::<u8>(), 0..4000)) {
        let reader = std::io::BufReader::new(&content[..]);
        if let Some((mut s, _header)) = berakhlak::ingest::csv::CsvSplitter::open(reader).unwrap() {
            let mut rec = berakhlak::ingest::RawRecord::default();
            let mut last = 0;
            while s.read_record(&mut rec).unwrap() {
                prop_assert!(rec.line > last, "lines strictly increase");
                last = rec.line;
            }
        }
    }
}
