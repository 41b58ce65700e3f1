//! Runs that must stop: the right exit code, a message naming the file/line/key, and the
//! warehouse exactly as it was.

use super::aggregate::dataset;
use super::*;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A project with a published 2024, to prove failed runs leave it untouched.
fn published() -> Project {
    let p = Project::new();
    dataset(&p);
    assert_exit(&p.aggregate(2024, &[]), 0);
    p
}

#[test]
fn missing_required_column_exits_2_naming_file_and_column() {
    let p = published();
    let before = p.snapshot("warehouse");
    let q_before = p.snapshot("quarantine");
    p.write("raw/2024/c-no-district.csv", "response_id,respondent_key,submitted_at,survey_year,institution_code,current_culture\nr,k,2024-09-02 08:00:00,2024,KAB-KUDUS,BP1\n");
    let out = p.aggregate(2024, &[]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("c-no-district.csv") && err.contains("work_district_code"), "{err}");
    assert_eq!(p.snapshot("warehouse"), before);
    assert_eq!(p.snapshot("quarantine"), q_before);
}

#[test]
fn unknown_config_key_exits_2_naming_the_key() {
    let p = Project::new();
    dataset(&p);
    p.config("[estimation]\nmargin_of_eror = 0.05\n");
    let out = p.aggregate(2024, &[]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("margin_of_eror"), "{}", stderr(&out));
    p.config("[estimation]\nmin_floor = 0\n");
    let out = p.aggregate(2024, &[]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("estimation.min_floor"), "{}", stderr(&out));
}

#[test]
fn bad_master_exits_2_naming_the_line() {
    let p = Project::new();
    dataset(&p);
    p.write("master-2024.csv", format!("{MASTER}KAB-KUDUS,again,kabupaten,33,3319,10\n"));
    let out = p.aggregate(2024, &[]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("master-2024.csv:7") && err.contains("duplicate"), "{err}");
    assert!(!p.path("warehouse/institution_index").exists());
}

#[test]
fn quality_gate_exits_3_and_publishes_nothing() {
    let p = published();
    let before = p.snapshot("warehouse");
    let q_before = p.snapshot("quarantine");
    let mut bad = vec![HEADER.to_string()];
    for i in 0..40 {
        bad.push(format!("junk-{i},k,not-a-time,2024,KAB-KUDUS,3319,,300,BP1"));
    }
    p.write("raw/2024/c-corrupt.csv", bad.join("\n"));
    let out = p.aggregate(2024, &[]);
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(err.contains("invalid_value") && err.contains("c-corrupt.csv:2"), "{err}");
    assert_eq!(p.snapshot("warehouse"), before);
    let q_after: BTreeMap<String, String> =
        p.snapshot("quarantine").into_iter().filter(|(k, _)| !k.starts_with("rejected-runs")).collect();
    assert_eq!(q_after, q_before);
    let rejected: Vec<String> = p.snapshot("quarantine/rejected-runs").into_keys().collect();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(rejected[0].starts_with("run_id=") && rejected[0].ends_with("/part-00000.parquet"));
}

#[test]
fn second_run_is_refused_with_exit_4_naming_the_holder() {
    let p = published();
    let lock = std::fs::OpenOptions::new().read(true).write(true).open(p.path("warehouse/_lock")).unwrap();
    lock.try_lock().unwrap();
    std::fs::write(p.path("warehouse/_lock"), "pid 4242 started 2024-10-01T00:00:00Z").unwrap();
    let out = p.aggregate(2024, &[]);
    assert_exit(&out, 4);
    assert!(stderr(&out).contains("pid 4242"), "{}", stderr(&out));
    drop(lock);
    assert_exit(&p.aggregate(2024, &[]), 0);
}

#[test]
fn corrupt_gzip_exits_1_naming_the_file() {
    let p = published();
    let before = p.snapshot("warehouse");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(
        &mut gz,
        format!("{HEADER}\n{}\n", good("gz", "KAB-KUDUS", "3319", 200).join("\n")).as_bytes(),
    )
    .unwrap();
    let mut bytes = gz.finish().unwrap();
    let mid = bytes.len() / 2;
    bytes.truncate(mid);
    p.write("raw/2024/c-cut.csv.gz", bytes);
    let out = p.aggregate(2024, &[]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("c-cut.csv.gz"), "{}", stderr(&out));
    assert_eq!(p.snapshot("warehouse"), before);
}

#[test]
fn no_input_file_exits_2() {
    let p = Project::new();
    p.write("raw/2024/readme.txt", "nothing here");
    let out = p.aggregate(2024, &[]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("no input file"), "{}", stderr(&out));
}

#[test]
fn missing_warehouse_parent_exits_2() {
    let p = Project::new();
    dataset(&p);
    let out = p.aggregate(2024, &["--warehouse", "no/such/dir/warehouse"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}

#[test]
fn usage_errors_exit_2() {
    let p = Project::new();
    assert_exit(&p.run(&["aggregate"]), 2);
    assert_exit(&p.run(&["aggregate", "--year", "x"]), 2);
    let help = p.run(&["aggregate", "--help"]);
    assert_exit(&help, 0);
    assert!(String::from_utf8_lossy(&help.stdout).contains("--warehouse"));
}
