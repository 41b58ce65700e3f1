//! Hive-style paths of the warehouse and the quarantine (SPEC 6.1, 6.2).

use std::path::{Path, PathBuf};

/// The file name of every partition's single data file.
pub const PART_FILE: &str = "part-00000.parquet";

/// `<root>/<table>/year=<year>`.
pub fn year_dir(root: &Path, table: &str, year: i32) -> PathBuf {
    root.join(table).join(format!("year={year}"))
}

/// `<root>/_manifests/year=<year>.json`.
pub fn manifest_path(root: &Path, year: i32) -> PathBuf {
    root.join("_manifests").join(format!("year={year}.json"))
}

/// `<quarantine>/year=<year>`.
pub fn quarantine_dir(root: &Path, year: i32) -> PathBuf {
    root.join(format!("year={year}"))
}

/// `<quarantine>/rejected-runs/run_id=<run_id>`.
pub fn rejected_run_dir(root: &Path, run_id: &str) -> PathBuf {
    root.join("rejected-runs").join(format!("run_id={run_id}"))
}
