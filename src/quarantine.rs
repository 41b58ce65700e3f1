//! The quarantine: every rejected record with its reason, in its own restricted directory
//! (SPEC 6.2). Respondent-level data never goes into the warehouse; it goes here, readable
//! only by the pipeline's user (directories 0700, files 0600).

use std::path::Path;
use std::sync::Arc;

use crate::error::Result;
use crate::ingest::csv::RAW_KEEP;
use crate::publish::parquet::{write_file, FileMeta};
use crate::publish::schema::{Cell, Column, Getter, QUARANTINE_COLUMNS};
use crate::validate::Reason;

/// Directory mode of the quarantine.
pub const DIR_MODE: u32 = 0o700;
/// File mode of the quarantine.
pub const FILE_MODE: u32 = 0o600;

/// One rejected record.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantineRecord {
    /// Index of the file in discovery order (sorting key).
    pub file: u32,
    /// Path relative to the input directory.
    pub source_file: Arc<str>,
    /// First physical line of the record.
    pub line_number: u64,
    /// `response_id` when it could be read.
    pub response_id: Option<String>,
    /// Reason.
    pub reason: Reason,
    /// Detail naming the field.
    pub detail: String,
    /// The record's text (see [`raw_text`]).
    pub raw: String,
}

/// The record's bytes as text: invalid UTF-8 replaced by U+FFFD, cut to its first 64 KiB at
/// a character boundary.
pub fn raw_text(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(RAW_KEEP + 4)];
    let mut text = String::from_utf8_lossy(head).into_owned();
    if text.len() > RAW_KEEP {
        let mut cut = RAW_KEEP;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// The quarantine's columns.
pub fn columns() -> Vec<Column<QuarantineRecord>> {
    type R = QuarantineRecord;
    let getters: [Getter<R>; 6] = [
        Box::new(|r: &R| Cell::Str(Some(r.source_file.to_string()))),
        Box::new(|r: &R| Cell::Int(Some(r.line_number as i64))),
        Box::new(|r: &R| Cell::Str(r.response_id.clone())),
        Box::new(|r: &R| Cell::Str(Some(r.reason.code().to_string()))),
        Box::new(|r: &R| Cell::Str(Some(r.detail.clone()))),
        Box::new(|r: &R| Cell::Str(Some(r.raw.clone()))),
    ];
    QUARANTINE_COLUMNS
        .iter()
        .zip(getters)
        .map(|((name, kind, doc), get)| Column {
            name: name.to_string(),
            kind: *kind,
            nullable: *name == "response_id",
            doc: doc.to_string(),
            get,
        })
        .collect()
}

/// Writes `records` (already sorted) as `dir/part-00000.parquet`, creating `dir` with 0700.
pub fn write(dir: &Path, records: &[QuarantineRecord], meta: &FileMeta) -> Result<u64> {
    crate::publish::commit::create_dirs(dir, DIR_MODE)?;
    let path = dir.join(crate::publish::layout::PART_FILE);
    let rows = write_file(&path, &columns(), records, meta, FILE_MODE)?;
    crate::publish::commit::sync_dir(dir)?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_text_replaces_invalid_bytes_and_cuts_at_a_char_boundary() {
        assert_eq!(raw_text(b"a\xffb"), "a\u{fffd}b");
        let long = "é".repeat(RAW_KEEP); // 2 bytes each
        let cut = raw_text(long.as_bytes());
        assert!(cut.len() <= RAW_KEEP);
        assert_eq!(cut.len(), RAW_KEEP);
        let odd = format!("x{}", "é".repeat(RAW_KEEP));
        assert_eq!(raw_text(odd.as_bytes()).len(), RAW_KEEP - 1);
    }
}
