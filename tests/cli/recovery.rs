//! Publishing faults driven through the test hooks: recovery from anywhere, staging cleaned
//! after failures, bad paths caught before any work.

use super::aggregate::dataset;
use super::*;

fn run_ids(p: &Project, year: i32) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for table in ["institution_index", "district_index", "province_index", "national_index", "behaviour_scores"] {
        let marker = p.path(&format!("warehouse/{table}/year={year}/_SUCCESS"));
        out.insert(table.to_string(), std::fs::read_to_string(marker).unwrap().trim().to_string());
    }
    let q = p.path(&format!("quarantine/year={year}/_SUCCESS"));
    out.insert("quarantine".into(), std::fs::read_to_string(q).unwrap().trim().to_string());
    out
}

fn staging_runs(p: &Project, root: &str) -> usize {
    std::fs::read_dir(p.path(&format!("{root}/_staging"))).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn recover_from_another_directory_finishes_a_half_swap() {
    let p = Project::new();
    dataset(&p);
    // Relative warehouse and quarantine paths: the journal must not depend on the cwd.
    let args = [
        "aggregate",
        "--year",
        "2024",
        "--config",
        "config.toml",
        "--warehouse",
        "warehouse",
        "--quarantine",
        "quarantine",
        "--quiet",
    ];
    assert_exit(&p.run_in(p.dir.path(), &args, &[("BERAKHLAK_RUN_ID", "first")]), 0);
    let crashed = p.run_in(
        p.dir.path(),
        &args,
        &[("BERAKHLAK_RUN_ID", "crashed"), ("BERAKHLAK_FAULT", "after-swap-institution_index")],
    );
    assert_ne!(crashed.status.code(), Some(0), "{}", describe(&crashed));
    let mixed = run_ids(&p, 2024);
    assert_eq!(mixed["institution_index"], "crashed");
    assert_eq!(mixed["district_index"], "first");

    let elsewhere = tempfile::tempdir().unwrap();
    let config = p.path("config.toml");
    let warehouse = p.path("warehouse");
    let out = p.run_in(
        elsewhere.path(),
        &["recover", "--config", config.to_str().unwrap(), "--warehouse", warehouse.to_str().unwrap()],
        &[],
    );
    assert_exit(&out, 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("completed the interrupted publish of run crashed"));
    assert!(run_ids(&p, 2024).values().all(|id| id == "crashed"), "{:?}", run_ids(&p, 2024));
    assert_eq!(p.manifest(2024)["run_id"], "crashed");
    assert_eq!(staging_runs(&p, "warehouse"), 0);
    assert_eq!(staging_runs(&p, "quarantine"), 0);
}

#[test]
fn failed_write_removes_the_runs_staging() {
    let p = Project::new();
    dataset(&p);
    assert_exit(&p.aggregate(2024, &[]), 0);
    let before = p.snapshot("warehouse");
    let out = p.run_in(
        p.dir.path(),
        &["aggregate", "--year", "2024", "--config", "config.toml", "--quiet"],
        &[("BERAKHLAK_TEST_FAIL_WRITE", "province_index")],
    );
    assert_exit(&out, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("No space left"), "{}", describe(&out));
    assert_eq!(p.snapshot("warehouse"), before);
    assert_eq!(staging_runs(&p, "warehouse"), 0);
    assert_eq!(staging_runs(&p, "quarantine"), 0);
}

#[test]
fn quarantine_that_is_a_file_is_refused_before_reading() {
    let p = Project::new();
    dataset(&p);
    p.write("not-a-dir", "x");
    let out = p.run_in(
        p.dir.path(),
        &["aggregate", "--year", "2024", "--config", "config.toml", "--quarantine", "not-a-dir/q"],
        &[],
    );
    assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not-a-dir") && err.contains("is not a directory"), "{err}");
    assert!(!err.contains("reading ..."), "refused before reading: {err}");
    assert_eq!(staging_runs(&p, "warehouse"), 0);
}

#[test]
fn no_eligible_institution_still_writes_every_table() {
    let p = Project::new();
    let mut lines = vec![HEADER.to_string()];
    lines.extend(good("few", "KEMENKEU", "3171", 12));
    p.write("raw/2024/a.csv", lines.join("\n"));
    assert_exit(&p.aggregate(2024, &[]), 0);
    let d = p.read("warehouse/district_index/year=2024/part-00000.parquet");
    assert_eq!(d.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
    let n = &p.read("warehouse/national_index/year=2024/part-00000.parquet")[0];
    assert_eq!(ints(n, "n_respondents"), [Some(0)]);
    assert_eq!(floats(n, "index_overall"), [None]);
    let i = &p.read("warehouse/institution_index/year=2024/part-00000.parquet")[0];
    assert_eq!(bools(i, "eligible"), [Some(false); 5]);
}
