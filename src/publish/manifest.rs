//! The run manifest `_manifests/year=Y.json` (SPEC 6.3): what was read, what was rejected
//! and why, what was written. It proves records_read = accepted + quarantined per file.

use std::collections::BTreeMap;

use serde::Serialize;

use super::TableReport;

/// One input file's account.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InputReport {
    /// Path relative to the input directory.
    pub path: String,
    /// Size in bytes (compressed size for `.gz`).
    pub bytes: u64,
    /// sha256 of the file's bytes.
    pub sha256: String,
    /// Records read (blank lines and the header are not records).
    pub records_read: u64,
    /// Records accepted after validation and deduplication.
    pub accepted: u64,
    /// Records quarantined.
    pub quarantined: u64,
    /// Quarantined records by reason code.
    pub quarantined_by_reason: BTreeMap<String, u64>,
}

/// Totals over all inputs.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Totals {
    /// Σ records_read.
    pub records_read: u64,
    /// Σ accepted.
    pub accepted: u64,
    /// Σ quarantined.
    pub quarantined: u64,
    /// Σ quarantined by reason.
    pub quarantined_by_reason: BTreeMap<String, u64>,
    /// (quarantined − superseded) / records_read, as checked by the quality gate.
    pub quarantine_ratio: f64,
    /// Institutions in the master.
    pub institutions: u64,
    /// Institutions meeting the minimum.
    pub institutions_eligible: u64,
    /// National `inst_mean_overall` (the published national index), if any.
    pub national_index: Option<f64>,
    /// National design-weighted `index_overall`, if any.
    pub national_index_weighted: Option<f64>,
}

/// The manifest.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// Run id (also in every file's metadata).
    pub run_id: String,
    /// berakhlak version.
    pub version: String,
    /// The run's year.
    pub year: i32,
    /// Instrument used.
    pub instrument: String,
    /// Start, RFC 3339 UTC.
    pub started: String,
    /// End of writing, RFC 3339 UTC.
    pub finished: String,
    /// Configuration file.
    pub config_path: String,
    /// sha256 of the configuration file.
    pub config_sha256: String,
    /// Master file used.
    pub master_path: String,
    /// Input directory.
    pub input_dir: String,
    /// Every input file.
    pub inputs: Vec<InputReport>,
    /// Files under the input directory that are not dumps.
    pub ignored_files: Vec<String>,
    /// Totals.
    pub totals: Totals,
    /// Tables written.
    pub tables: BTreeMap<String, TableReport>,
    /// Quarantine file, relative to the quarantine root, and its rows.
    pub quarantine: TableReport,
    /// Things an operator should look at.
    pub warnings: Vec<String>,
}
