//! Publish: estimates → rows → staged Parquet partitions → one atomic swap per table.
//!
//! [`schema`] defines every column; [`parquet`] writes files; [`layout`] names paths;
//! [`commit`] owns staging, the swap journal, recovery and the lock; [`manifest`] records the
//! run; [`previous`] reads last year's values back for the year-on-year columns.

pub mod commit;
pub mod layout;
pub mod manifest;
pub mod parquet;
pub mod previous;
pub mod schema;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use self::commit::{create_dirs, sync_dir, write_atomically, Entry, Transaction, SUCCESS};
use self::parquet::{write_file, FileMeta};
use self::schema::{
    behaviour_columns, domain_columns, institution_columns, BehaviourRow, Column, DomainRow, DomainTable,
    InstitutionRow,
};
use crate::catalogue::BEHAVIOUR_COUNT;
use crate::error::Result;
use crate::estimate::{DomainEstimate, Domains, Indices, InstitutionEstimate};
use crate::reference::{Master, Regions};

/// Mode of warehouse files: readable by BI users.
const TABLE_FILE_MODE: u32 = 0o644;

/// Every table's rows, ready to write.
pub struct Tables {
    /// `institution_index`.
    pub institutions: Vec<InstitutionRow>,
    /// `district_index`.
    pub districts: Vec<DomainRow>,
    /// `province_index`.
    pub provinces: Vec<DomainRow>,
    /// `national_index`.
    pub national: Vec<DomainRow>,
    /// `behaviour_scores` by level partition.
    pub behaviours: Vec<(&'static str, Vec<BehaviourRow>)>,
}

fn behaviour_rows<'a>(code: &'a str, n: i64, indices: Option<&'a Indices>) -> impl Iterator<Item = BehaviourRow> + 'a {
    (0..BEHAVIOUR_COUNT).map(move |b| BehaviourRow {
        unit_code: code.to_string(),
        behaviour: b,
        n_respondents: n,
        score: indices.map(|i| i.behaviours[b]),
    })
}

fn domain_behaviours(rows: &[DomainEstimate]) -> Vec<BehaviourRow> {
    rows.iter().flat_map(|d| behaviour_rows(&d.code, d.n_respondents, d.indices.as_ref())).collect()
}

impl Tables {
    /// Joins estimates with the master and region names.
    pub fn build(
        master: &Master,
        regions: &Regions,
        institutions: &[InstitutionEstimate],
        domains: &Domains,
    ) -> Tables {
        let inst_rows: Vec<InstitutionRow> =
            institutions.iter().map(|e| InstitutionRow::new(e, &master.institutions[e.institution], regions)).collect();
        let inst_behaviours =
            inst_rows.iter().flat_map(|r| behaviour_rows(&r.inst.code, r.est.n, r.est.indices.as_ref())).collect();
        Tables {
            institutions: inst_rows,
            districts: domains.districts.iter().map(|d| DomainRow::new(d, regions)).collect(),
            provinces: domains.provinces.iter().map(|d| DomainRow::new(d, regions)).collect(),
            national: vec![DomainRow::new(&domains.national, regions)],
            behaviours: vec![
                ("institution", inst_behaviours),
                ("district", domain_behaviours(&domains.districts)),
                ("province", domain_behaviours(&domains.provinces)),
                ("national", domain_behaviours(std::slice::from_ref(&domains.national))),
            ],
        }
    }
}

/// What was written for one table.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TableReport {
    /// Files, relative to the warehouse root.
    pub files: Vec<String>,
    /// Rows over all files.
    pub rows: u64,
}

/// Writes one partition file under `staged_year` and records it.
fn write_part<R>(
    staged_year: &Path,
    sub: Option<String>,
    live_prefix: &str,
    columns: &[Column<R>],
    rows: &[R],
    meta: &FileMeta,
    report: &mut TableReport,
) -> Result<()> {
    let dir = match &sub {
        Some(s) => staged_year.join(s),
        None => staged_year.to_path_buf(),
    };
    create_dirs(&dir, 0o755)?;
    let path = dir.join(layout::PART_FILE);
    report.rows += write_file(&path, columns, rows, meta, TABLE_FILE_MODE)?;
    sync_dir(&dir)?;
    let rel = match sub {
        Some(s) => format!("{live_prefix}/{s}/{}", layout::PART_FILE),
        None => format!("{live_prefix}/{}", layout::PART_FILE),
    };
    report.files.push(rel);
    Ok(())
}

/// Stages every table of `year` in the transaction; returns what was written per table.
pub fn stage_tables(
    txn: &mut Transaction,
    warehouse: &Path,
    year: i32,
    tables: &Tables,
    meta: &FileMeta,
) -> Result<BTreeMap<String, TableReport>> {
    let mut reports = BTreeMap::new();
    let staging = txn.dir().to_path_buf();
    let mut stage = |txn: &mut Transaction,
                     name: &str,
                     write: &mut dyn FnMut(&Path, &str, &mut TableReport) -> Result<()>|
     -> Result<()> {
        let staged_year = layout::year_dir(&staging, name, year);
        create_dirs(&staged_year, 0o755)?;
        let live_prefix = format!("{name}/year={year}");
        let mut report = TableReport::default();
        write(&staged_year, &live_prefix, &mut report)?;
        write_marker(&staged_year, &meta.run_id, TABLE_FILE_MODE)?;
        txn.stage(Entry {
            name: name.to_string(),
            live: layout::year_dir(warehouse, name, year),
            staged: staged_year,
        })?;
        reports.insert(name.to_string(), report);
        Ok(())
    };

    stage(txn, "institution_index", &mut |dir, prefix, report| {
        write_part(dir, None, prefix, &institution_columns(), &tables.institutions, meta, report)
    })?;
    stage(txn, "district_index", &mut |dir, prefix, report| {
        let columns = domain_columns(DomainTable::District);
        let rows = &tables.districts;
        if rows.is_empty() {
            // No district to partition by: an empty file keeps the table's schema readable.
            return write_part(dir, None, prefix, &columns, rows, meta, report);
        }
        let mut start = 0;
        while start < rows.len() {
            let province = rows[start].est.code[..2].to_string();
            let end = start + rows[start..].iter().take_while(|r| r.est.code.starts_with(&province)).count();
            write_part(
                dir,
                Some(format!("province_code={province}")),
                prefix,
                &columns,
                &rows[start..end],
                meta,
                report,
            )?;
            start = end;
        }
        Ok(())
    })?;
    stage(txn, "province_index", &mut |dir, prefix, report| {
        write_part(dir, None, prefix, &domain_columns(DomainTable::Province), &tables.provinces, meta, report)
    })?;
    stage(txn, "national_index", &mut |dir, prefix, report| {
        write_part(dir, None, prefix, &domain_columns(DomainTable::National), &tables.national, meta, report)
    })?;
    stage(txn, "behaviour_scores", &mut |dir, prefix, report| {
        let columns = behaviour_columns();
        for (level, rows) in &tables.behaviours {
            write_part(dir, Some(format!("level={level}")), prefix, &columns, rows, meta, report)?;
        }
        Ok(())
    })?;
    Ok(reports)
}

/// Writes `_SUCCESS` (holding the run id) into a staged partition and syncs it.
pub fn write_marker(dir: &Path, run_id: &str, mode: u32) -> Result<()> {
    write_atomically(&dir.join(SUCCESS), format!("{run_id}\n").as_bytes(), mode)
}

/// Where the quarantine of a run is staged.
pub fn quarantine_staging(quarantine_root: &Path, run_id: &str) -> PathBuf {
    quarantine_root.join(commit::STAGING_DIR).join(run_id)
}
