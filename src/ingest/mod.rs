//! Ingest: find the dumps, open them as streams (gzip, hashing), and split them into raw
//! records. Nothing here judges a record; that is [`crate::validate`]'s job.
//!
//! **Invariant:** no file is ever read whole into memory; readers hold one record at a time
//! (plus a batch of raw records while they are validated).

pub mod chunk;
pub mod csv;
pub mod fields;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

use crate::config::Instrument;
use crate::error::{Error, Result};
pub use csv::CsvRecord as RawRecord;
use csv::{CsvSplitter, MAX_RECORD_BYTES, RAW_KEEP};

/// Read buffer size: large enough that syscalls and gzip block handling stay cheap.
const READ_BUFFER: usize = 256 * 1024;

/// The record format of a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 4180 CSV with a header.
    Csv,
    /// JSON Lines (`.jsonl`, `.ndjson`).
    Jsonl,
}

/// A dump found under the input directory.
#[derive(Debug, Clone)]
pub struct InputFile {
    /// Path relative to the input directory, `/`-separated: the name used in the manifest and
    /// the quarantine.
    pub rel_path: String,
    /// Full path.
    pub path: PathBuf,
    /// Record format.
    pub format: Format,
    /// Whether the file is gzip-compressed.
    pub gzip: bool,
    /// Size when discovered.
    pub bytes: u64,
    /// Modification time when discovered.
    pub modified: Option<SystemTime>,
}

/// What the input directory holds.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// Dumps, in bytewise order of relative path (the input order of deduplication).
    pub files: Vec<InputFile>,
    /// Other files, listed in the manifest as ignored.
    pub ignored: Vec<String>,
}

/// Lists every dump under `dir`, recursively, in bytewise order of relative path.
pub fn discover(dir: &Path) -> Result<Discovery> {
    let meta = std::fs::metadata(dir).map_err(|e| Error::io(dir, "opening the input directory", e))?;
    if !meta.is_dir() {
        return Err(Error::Usage(format!("input {} is not a directory", dir.display())));
    }
    let mut found = Vec::new();
    walk(dir, "", &mut found)?;
    found.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut discovery = Discovery::default();
    for (rel_path, path) in found {
        let Some((format, gzip)) = classify(&rel_path) else {
            discovery.ignored.push(rel_path);
            continue;
        };
        let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, "reading metadata", e))?;
        discovery.files.push(InputFile {
            rel_path,
            path,
            format,
            gzip,
            bytes: meta.len(),
            modified: meta.modified().ok(),
        });
    }
    if discovery.files.is_empty() {
        return Err(Error::NoInput { path: dir.to_path_buf() });
    }
    Ok(discovery)
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, "listing", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, "listing", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let path = entry.path();
        // Symlinks are followed for files but not for directories, so a link loop cannot
        // make the walk endless.
        let file_type = entry.file_type().map_err(|e| Error::io(&path, "reading metadata", e))?;
        if file_type.is_dir() {
            walk(&path, &rel, out)?;
        } else {
            out.push((rel, path));
        }
    }
    Ok(())
}

/// Format of a file by its name, `None` for files a run ignores.
pub fn classify(name: &str) -> Option<(Format, bool)> {
    let (stem, gzip) = match name.strip_suffix(".gz") {
        Some(stem) => (stem, true),
        None => (name, false),
    };
    if stem.ends_with(".csv") {
        Some((Format::Csv, gzip))
    } else if stem.ends_with(".jsonl") || stem.ends_with(".ndjson") {
        Some((Format::Jsonl, gzip))
    } else {
        None
    }
}

/// How fields are found in a file's records.
#[derive(Debug, Clone)]
pub enum Layout {
    /// CSV: the column of each field slot, and the header's column count.
    Csv {
        /// Column index per slot of [`fields`].
        columns: Box<[Option<usize>; fields::FIELD_COUNT]>,
        /// Columns in the header; a record with another count is malformed.
        width: usize,
    },
    /// JSON Lines: fields are looked up by key.
    Jsonl,
}

/// Size and digests of the bytes read from a file, filled while it streams: sha256 for the
/// manifest, and a fast non-cryptographic digest (xxh3) that a second read of the same file
/// is checked against without paying for sha256 again.
#[derive(Default)]
pub struct Fingerprint {
    /// Bytes read from disk (compressed bytes for `.gz`).
    pub bytes: u64,
    sha: Option<Sha256>,
    quick: xxhash_rust::xxh3::Xxh3,
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fingerprint").field("bytes", &self.bytes).field("quick", &self.quick()).finish()
    }
}

impl Fingerprint {
    fn new(sha256: bool) -> Self {
        Fingerprint { sha: sha256.then(Sha256::default), ..Fingerprint::default() }
    }

    fn update(&mut self, bytes: &[u8]) {
        self.bytes += bytes.len() as u64;
        self.quick.update(bytes);
        if let Some(sha) = &mut self.sha {
            sha.update(bytes);
        }
    }

    /// Hex sha256 of everything read so far (empty when the file was reopened without it).
    pub fn sha256(&self) -> String {
        self.sha.as_ref().map(|sha| crate::config::hex(&sha.clone().finalize())).unwrap_or_default()
    }

    /// xxh3 of everything read so far.
    pub fn quick(&self) -> u64 {
        self.quick.digest()
    }
}

struct HashingReader {
    inner: File,
    fingerprint: Arc<Mutex<Fingerprint>>,
}

impl Read for HashingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut fp) = self.fingerprint.lock() {
            fp.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// A file's byte stream (decompressed, hashed while read).
pub type Stream = Box<dyn BufRead + Send>;

/// A file opened for reading records.
pub struct RecordReader {
    kind: ReaderKind,
    /// How to find fields in this file's records.
    pub layout: Layout,
    /// Size and digest, complete once the reader is exhausted.
    pub fingerprint: Arc<Mutex<Fingerprint>>,
    path: PathBuf,
    gzip: bool,
}

enum ReaderKind {
    Csv(CsvSplitter<Stream>),
    Jsonl { input: Stream, lines: u64 },
}

impl RecordReader {
    /// Opens `file`, reads and checks its header (CSV) for the columns `instrument` needs.
    pub fn open(file: &InputFile, instrument: Instrument) -> Result<RecordReader> {
        Self::open_hashing(file, instrument, true)
    }

    /// Opens `file` again, for a second read checked against the first one's
    /// [`Fingerprint::quick`] digest (no sha256).
    pub fn reopen(file: &InputFile, instrument: Instrument) -> Result<RecordReader> {
        Self::open_hashing(file, instrument, false)
    }

    fn open_hashing(file: &InputFile, instrument: Instrument, sha256: bool) -> Result<RecordReader> {
        let handle = File::open(&file.path).map_err(|e| Error::io(&file.path, "opening", e))?;
        let fingerprint = Arc::new(Mutex::new(Fingerprint::new(sha256)));
        let hashing = HashingReader { inner: handle, fingerprint: Arc::clone(&fingerprint) };
        let stream: Stream = if file.gzip {
            Box::new(BufReader::with_capacity(READ_BUFFER, MultiGzDecoder::new(BufReader::new(hashing))))
        } else {
            Box::new(BufReader::with_capacity(READ_BUFFER, hashing))
        };
        let read_error = |e: io::Error| read_error(&file.path, file.gzip, e);
        let (kind, layout) = match file.format {
            Format::Jsonl => (ReaderKind::Jsonl { input: stream, lines: 0 }, Layout::Jsonl),
            Format::Csv => {
                let Some((splitter, header)) = CsvSplitter::open(stream).map_err(read_error)? else {
                    return Err(Error::MissingColumn {
                        path: file.path.clone(),
                        column: fields::name(fields::RESPONSE_ID).into(),
                        header: "(empty file)".into(),
                    });
                };
                let layout = csv_layout(&file.path, &header, instrument)?;
                (ReaderKind::Csv(splitter), layout)
            }
        };
        Ok(RecordReader { kind, layout, fingerprint, path: file.path.clone(), gzip: file.gzip })
    }

    /// Turns the reader (header already read) into a chunk reader for parallel parsing.
    pub fn into_chunks(self) -> (chunk::ChunkReader<Stream>, Layout, Arc<Mutex<Fingerprint>>) {
        let reader = match self.kind {
            ReaderKind::Csv(splitter) => {
                let delimiter = splitter.delimiter();
                let (input, lines) = splitter.into_parts();
                chunk::ChunkReader::new(input, Format::Csv, delimiter, lines)
            }
            ReaderKind::Jsonl { input, lines } => chunk::ChunkReader::new(input, Format::Jsonl, b',', lines),
        };
        (reader, self.layout, self.fingerprint)
    }

    /// Reads the next record into `rec`; `false` at end of file.
    pub fn next_record(&mut self, rec: &mut RawRecord) -> Result<bool> {
        let result = match &mut self.kind {
            ReaderKind::Csv(splitter) => splitter.read_record(rec),
            ReaderKind::Jsonl { input, lines } => read_json_line(input, lines, rec),
        };
        result.map_err(|e| read_error(&self.path, self.gzip, e))
    }
}

/// The error for a failed read of `path`.
pub fn read_error(path: &Path, gzip: bool, e: io::Error) -> Error {
    let action = if gzip { "reading (gzip stream)" } else { "reading" };
    Error::io(path, action, e)
}

fn read_json_line(input: &mut Stream, lines: &mut u64, rec: &mut RawRecord) -> io::Result<bool> {
    rec.values.clear();
    rec.ends.clear();
    rec.in_raw = false;
    rec.fault = None;
    loop {
        rec.raw.clear();
        if csv::read_line(input, &mut rec.raw)? == 0 {
            return Ok(false);
        }
        *lines += 1;
        if *lines == 1 && rec.raw.starts_with(b"\xEF\xBB\xBF") {
            rec.raw.drain(..3);
        }
        if !rec.raw.iter().all(|b| b.is_ascii_whitespace()) {
            break;
        }
    }
    rec.line = *lines;
    let keep = rec.raw.len() - if rec.raw.ends_with(b"\r\n") { 2 } else { usize::from(rec.raw.ends_with(b"\n")) };
    rec.raw.truncate(keep);
    if rec.raw.len() > MAX_RECORD_BYTES {
        rec.fault = Some("record longer than 1 MiB");
        rec.raw.truncate(RAW_KEEP + 4);
    }
    Ok(true)
}

fn csv_layout(path: &Path, header: &RawRecord, instrument: Instrument) -> Result<Layout> {
    let header_text = String::from_utf8_lossy(&header.raw).into_owned();
    if header.fault.is_some() || std::str::from_utf8(&header.values).is_err() {
        return Err(Error::MissingColumn {
            path: path.to_path_buf(),
            column: "(header)".into(),
            header: format!("unreadable header: {header_text}"),
        });
    }
    let mut columns = [None; fields::FIELD_COUNT];
    for i in 0..header.len() {
        let name = String::from_utf8_lossy(header.field(i));
        if let Some(slot) = fields::slot_of(&name) {
            // A repeated column: the first one wins.
            columns[slot].get_or_insert(i);
        }
    }
    for &slot in fields::required(instrument) {
        if columns[slot].is_none() {
            return Err(Error::MissingColumn {
                path: path.to_path_buf(),
                column: fields::name(slot).into(),
                header: header_text,
            });
        }
    }
    Ok(Layout::Csv { columns: Box::new(columns), width: header.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_by_extension() {
        assert_eq!(classify("a/b.csv"), Some((Format::Csv, false)));
        assert_eq!(classify("b.csv.gz"), Some((Format::Csv, true)));
        assert_eq!(classify("b.jsonl.gz"), Some((Format::Jsonl, true)));
        assert_eq!(classify("b.ndjson"), Some((Format::Jsonl, false)));
        assert_eq!(classify("README.txt"), None);
        assert_eq!(classify("b.gz"), None);
        assert_eq!(classify("b.json"), None);
    }

    #[test]
    fn discovery_is_sorted_bytewise_and_lists_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        for name in ["b.csv", "B.jsonl", "sub/a.csv", "notes.txt", "a.csv"] {
            std::fs::write(dir.path().join(name), "x\n").unwrap();
        }
        let d = discover(dir.path()).unwrap();
        let names: Vec<_> = d.files.iter().map(|f| f.rel_path.as_str()).collect();
        assert_eq!(names, ["B.jsonl", "a.csv", "b.csv", "sub/a.csv"]);
        assert_eq!(d.ignored, ["notes.txt"]);
    }

    #[test]
    fn no_input_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        assert!(matches!(discover(dir.path()), Err(Error::NoInput { .. })));
    }

    #[test]
    fn missing_required_column_names_file_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, "response_id;respondent_key;submitted_at;survey_year;institution_code;current_culture\n")
            .unwrap();
        let file = InputFile {
            rel_path: "a.csv".into(),
            path: path.clone(),
            format: Format::Csv,
            gzip: false,
            bytes: 0,
            modified: None,
        };
        match RecordReader::open(&file, Instrument::Votes) {
            Err(Error::MissingColumn { column, path: p, .. }) => {
                assert_eq!(column, "work_district_code");
                assert_eq!(p, path);
            }
            other => panic!("expected missing column, got {:?}", other.err()),
        }
    }
}
