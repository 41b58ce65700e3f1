//! Dump writers of `generate`: CSV (any of `,` `;` TAB, column order and header spelling per
//! file, CRLF, BOM, quoted fields, blank lines) and JSON Lines, optionally gzip, streamed
//! through a `BufWriter` into a `.partial` file renamed into place when complete.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::model;
use super::records::{Defect, Rec};
use crate::catalogue::{BEHAVIOUR_CODES, BEHAVIOUR_COUNT};
use crate::error::{Error, Result};

/// A column (CSV) or key (JSONL) of a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    /// `response_id`.
    ResponseId,
    /// `respondent_key`.
    RespondentKey,
    /// `submitted_at`.
    SubmittedAt,
    /// `survey_year`.
    SurveyYear,
    /// `institution_code`.
    InstitutionCode,
    /// `work_district_code`.
    WorkDistrict,
    /// `work_province_code`.
    WorkProvince,
    /// `duration_seconds`.
    Duration,
    /// `gender`.
    Gender,
    /// `age_band`.
    AgeBand,
    /// `employment_type`.
    EmploymentType,
    /// `position_type`.
    PositionType,
    /// `current_culture`.
    Culture,
    /// A likert item, by catalogue index.
    Likert(u8),
}

impl Col {
    /// Field name.
    pub fn name(self) -> &'static str {
        match self {
            Col::ResponseId => "response_id",
            Col::RespondentKey => "respondent_key",
            Col::SubmittedAt => "submitted_at",
            Col::SurveyYear => "survey_year",
            Col::InstitutionCode => "institution_code",
            Col::WorkDistrict => "work_district_code",
            Col::WorkProvince => "work_province_code",
            Col::Duration => "duration_seconds",
            Col::Gender => "gender",
            Col::AgeBand => "age_band",
            Col::EmploymentType => "employment_type",
            Col::PositionType => "position_type",
            Col::Culture => "current_culture",
            Col::Likert(b) => BEHAVIOUR_CODES[usize::from(b)],
        }
    }

    fn optional(self) -> bool {
        matches!(
            self,
            Col::WorkProvince | Col::Duration | Col::Gender | Col::AgeBand | Col::EmploymentType | Col::PositionType
        )
    }

    fn integer(self) -> bool {
        matches!(self, Col::SurveyYear | Col::Duration | Col::Likert(_))
    }

    /// The columns of an instrument, in canonical order.
    pub fn canonical(likert: bool) -> Vec<Col> {
        let mut cols = vec![
            Col::ResponseId,
            Col::RespondentKey,
            Col::SubmittedAt,
            Col::SurveyYear,
            Col::InstitutionCode,
            Col::WorkDistrict,
            Col::WorkProvince,
            Col::Duration,
            Col::Gender,
            Col::AgeBand,
            Col::EmploymentType,
            Col::PositionType,
        ];
        if likert {
            cols.extend((0..BEHAVIOUR_COUNT as u8).map(Col::Likert));
        } else {
            cols.push(Col::Culture);
        }
        cols
    }
}

const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// The text of a field of `rec`.
pub fn field(rec: &Rec, col: Col) -> &str {
    match col {
        Col::ResponseId => &rec.response_id,
        Col::RespondentKey => &rec.respondent_key,
        Col::SubmittedAt => &rec.submitted_at,
        Col::SurveyYear => &rec.survey_year,
        Col::InstitutionCode => &rec.institution_code,
        Col::WorkDistrict => &rec.work_district_code,
        Col::WorkProvince => &rec.work_province_code,
        Col::Duration => &rec.duration_seconds,
        Col::Gender => &rec.gender,
        Col::AgeBand => &rec.age_band,
        Col::EmploymentType => &rec.employment_type,
        Col::PositionType => &rec.position_type,
        Col::Culture => &rec.current_culture,
        Col::Likert(b) => match &rec.likert_override {
            Some((i, text)) if *i == usize::from(b) => text,
            _ => DIGITS[usize::from(rec.likert[usize::from(b)] % 10)],
        },
    }
}

/// Record format of a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// CSV with a header.
    Csv,
    /// JSON Lines.
    Jsonl,
}

/// How one dump file is written.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Record format.
    pub format: FileFormat,
    /// gzip the file.
    pub gzip: bool,
    /// CSV delimiter.
    pub delimiter: u8,
    /// CRLF line ends.
    pub crlf: bool,
    /// UTF-8 byte order mark.
    pub bom: bool,
    /// Column (CSV) or key (JSONL) order.
    pub columns: Vec<Col>,
    /// Header spelling of each column (CSV).
    pub header: Vec<String>,
    /// JSONL: a space after `:` and `,`.
    pub json_space: bool,
}

impl Layout {
    /// File name of dump `index`.
    pub fn file_name(&self, index: usize) -> String {
        let ext = match self.format {
            FileFormat::Csv => "csv",
            FileFormat::Jsonl => "jsonl",
        };
        format!("part-{index:04}.{ext}{}", if self.gzip { ".gz" } else { "" })
    }
}

/// Per-file layouts: formats, delimiters, and the quirks that real exports have.
pub fn layouts(
    formats: &[FileFormat],
    gzip: bool,
    delimiter: u8,
    vary_delimiters: bool,
    likert: bool,
    seed: u64,
    year: i32,
) -> Vec<Layout> {
    let csv_files: Vec<usize> = (0..formats.len()).filter(|&k| formats[k] == FileFormat::Csv).collect();
    let mut out = Vec::with_capacity(formats.len());
    for (k, &format) in formats.iter().enumerate() {
        let mut rng = model::stream(&[seed, 0x1A70, year as u64, k as u64]);
        let csv_ordinal = csv_files.iter().position(|&c| c == k);
        let mut columns = Col::canonical(likert);
        // The first file keeps the canonical order, the second CSV file is always reordered.
        let reorder = k > 0 && (csv_ordinal == Some(1) || rng.random::<f64>() < 0.5);
        if reorder {
            model::shuffle(&mut rng, &mut columns);
        }
        let mut header: Vec<String> = columns.iter().map(|c| c.name().to_string()).collect();
        if reorder && format == FileFormat::Csv {
            for _ in 0..2 {
                let i = rng.random_range(0..header.len());
                header[i] = capitalise(&header[i]);
            }
            let i = rng.random_range(0..header.len());
            header[i] = format!(" {} ", header[i]);
        }
        let delimiter = if vary_delimiters { [b',', b';', b'\t'][csv_ordinal.unwrap_or(0) % 3] } else { delimiter };
        out.push(Layout {
            format,
            gzip,
            delimiter,
            crlf: k % 3 == 1,
            bom: csv_files.len() >= 2 && csv_files.last() == Some(&k),
            columns,
            header,
            json_space: rng.random::<f64>() < 0.5,
        });
    }
    out
}

fn capitalise(name: &str) -> String {
    name.split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("_")
}

enum Sink {
    Plain(BufWriter<File>),
    Gzip(ParallelGz),
}

impl Sink {
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(buf),
            Sink::Gzip(w) => w.write_all(buf),
        }
    }
}

/// Uncompressed bytes per independently deflated chunk.
const GZ_CHUNK: usize = 4 << 20;
/// Chunks being compressed at once, at most.
const GZ_IN_FLIGHT: u64 = 8;

/// A gzip writer that deflates chunks in parallel (pigz style) and still writes one standard
/// gzip member: every chunk but the last ends with a sync flush (byte-aligned, not final), so
/// the concatenated chunks are one deflate stream; the CRC is computed over the input in order.
/// Output depends only on the input bytes, never on thread timing.
struct ParallelGz {
    out: BufWriter<File>,
    chunk: Vec<u8>,
    crc: flate2::Crc,
    results_tx: mpsc::Sender<(u64, std::io::Result<Vec<u8>>)>,
    results: mpsc::Receiver<(u64, std::io::Result<Vec<u8>>)>,
    sent: u64,
    written: u64,
    ready: BTreeMap<u64, Vec<u8>>,
}

impl ParallelGz {
    fn new(mut out: BufWriter<File>) -> std::io::Result<ParallelGz> {
        // Header: magic, deflate, no flags, mtime 0, fastest, OS unknown.
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255])?;
        let (results_tx, results) = mpsc::channel();
        Ok(ParallelGz {
            out,
            chunk: Vec::with_capacity(GZ_CHUNK + (64 << 10)),
            crc: flate2::Crc::new(),
            results_tx,
            results,
            sent: 0,
            written: 0,
            ready: BTreeMap::new(),
        })
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.crc.update(buf);
        self.chunk.extend_from_slice(buf);
        if self.chunk.len() >= GZ_CHUNK {
            self.dispatch(false)?;
        }
        Ok(())
    }

    fn dispatch(&mut self, last: bool) -> std::io::Result<()> {
        let input =
            std::mem::replace(&mut self.chunk, Vec::with_capacity(if last { 0 } else { GZ_CHUNK + (64 << 10) }));
        let seq = self.sent;
        self.sent += 1;
        let tx = self.results_tx.clone();
        rayon::spawn(move || {
            let _ = tx.send((seq, deflate_chunk(&input, last)));
        });
        while self.sent - self.written > GZ_IN_FLIGHT {
            self.collect_one()?;
        }
        Ok(())
    }

    fn collect_one(&mut self) -> std::io::Result<()> {
        let (seq, result) = self.results.recv().map_err(std::io::Error::other)?;
        self.ready.insert(seq, result?);
        while let Some(data) = self.ready.remove(&self.written) {
            self.out.write_all(&data)?;
            self.written += 1;
        }
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<BufWriter<File>> {
        self.dispatch(true)?;
        while self.written < self.sent {
            self.collect_one()?;
        }
        self.out.write_all(&self.crc.sum().to_le_bytes())?;
        self.out.write_all(&self.crc.amount().to_le_bytes())?;
        Ok(self.out)
    }
}

/// Raw-deflates one chunk: sync-flushed, or finished when it is the last.
fn deflate_chunk(input: &[u8], last: bool) -> std::io::Result<Vec<u8>> {
    use flate2::{Compress, FlushCompress, Status};
    let mut c = Compress::new(flate2::Compression::new(1), false);
    let mut out = Vec::with_capacity(input.len() / 2 + 1024);
    let flush = if last { FlushCompress::Finish } else { FlushCompress::Sync };
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(64 << 10));
        }
        let consumed = c.total_in() as usize;
        let status = c.compress_vec(&input[consumed..], &mut out, flush).map_err(std::io::Error::other)?;
        let all_in = c.total_in() as usize == input.len();
        let room_left = out.len() < out.capacity();
        match status {
            Status::StreamEnd => break,
            _ if !last && all_in && room_left => break,
            _ => {}
        }
    }
    Ok(out)
}

/// A dump being written.
pub struct DumpWriter {
    sink: Sink,
    layout: Layout,
    line: Vec<u8>,
    rng: ChaCha8Rng,
    path: PathBuf,
    tmp: PathBuf,
    /// Records written.
    pub records: u64,
}

const BUFFER: usize = 1 << 20;

impl DumpWriter {
    /// Creates dump `index` in `dir` and writes its header.
    pub fn create(dir: &Path, index: usize, layout: Layout, seed: u64, year: i32) -> Result<DumpWriter> {
        let path = dir.join(layout.file_name(index));
        let tmp = dir.join(format!("{}.partial", layout.file_name(index)));
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, "creating", e))?;
        let buffered = BufWriter::with_capacity(BUFFER, file);
        let sink = if layout.gzip {
            Sink::Gzip(ParallelGz::new(buffered).map_err(|e| Error::io(&tmp, "writing", e))?)
        } else {
            Sink::Plain(buffered)
        };
        let mut w = DumpWriter {
            sink,
            layout,
            line: Vec::with_capacity(4096),
            rng: model::stream(&[seed, 0xD0E5, year as u64, index as u64]),
            path,
            tmp,
            records: 0,
        };
        if w.layout.bom {
            w.line.extend_from_slice(b"\xEF\xBB\xBF");
        }
        if w.layout.format == FileFormat::Csv {
            for (i, name) in w.layout.header.iter().enumerate() {
                if i > 0 {
                    w.line.push(w.layout.delimiter);
                }
                w.line.extend_from_slice(name.as_bytes());
            }
            w.end_line();
        }
        w.flush_line()?;
        Ok(w)
    }

    /// The record format.
    pub fn format(&self) -> FileFormat {
        self.layout.format
    }

    fn end_line(&mut self) {
        self.line.extend_from_slice(if self.layout.crlf { b"\r\n" } else { b"\n" });
    }

    fn flush_line(&mut self) -> Result<()> {
        let result = self.sink.write_all(&self.line);
        self.line.clear();
        result.map_err(|e| Error::io(&self.tmp, "writing", e))
    }

    fn roll(&mut self, p: f64) -> bool {
        self.rng.random::<f64>() < p
    }

    /// Writes one record.
    pub fn write(&mut self, rec: &Rec) -> Result<()> {
        if rec.style.decorate && self.roll(0.0007) {
            if self.roll(0.5) {
                self.line.extend_from_slice(b"   ");
            }
            self.end_line();
        }
        match self.layout.format {
            FileFormat::Csv => self.csv(rec),
            FileFormat::Jsonl => self.json(rec),
        }
        self.end_line();
        self.records += 1;
        self.flush_line()
    }

    fn csv(&mut self, rec: &Rec) {
        let d = self.layout.delimiter;
        let n = self.layout.columns.len();
        let count = if rec.defect == Defect::Structure {
            if self.roll(0.5) {
                n - 1
            } else {
                n + 1
            }
        } else {
            n
        };
        let quote_id = rec.style.decorate && self.roll(0.01);
        let embed = rec.style.decorate && self.roll(0.002);
        for i in 0..count {
            if i > 0 {
                self.line.push(d);
            }
            let Some(&col) = self.layout.columns.get(i) else {
                self.line.extend_from_slice(b"extra");
                continue;
            };
            let text = field(rec, col);
            match (rec.defect, col) {
                (Defect::Quoting, Col::Gender) => {
                    // A quote inside an unquoted field, or text after a closing quote.
                    if self.roll(0.5) {
                        self.line.extend_from_slice(b"Laki\"laki");
                    } else {
                        self.line.extend_from_slice(b"\"P\"x");
                    }
                }
                (Defect::BadByte, Col::InstitutionCode) => {
                    self.line.push(0xFF);
                    csv_field(&mut self.line, text.as_bytes(), d, false);
                }
                (_, Col::PositionType) if embed && !text.is_empty() => {
                    let mut with = text.as_bytes().to_vec();
                    with.push(d);
                    with.extend_from_slice(b" Ahli Muda");
                    csv_field(&mut self.line, &with, d, false);
                }
                (_, Col::ResponseId) => csv_field(&mut self.line, text.as_bytes(), d, quote_id),
                _ => csv_field(&mut self.line, text.as_bytes(), d, false),
            }
        }
    }

    fn json(&mut self, rec: &Rec) {
        let sep: &[u8] = if self.layout.json_space { b", " } else { b"," };
        let colon: &[u8] = if self.layout.json_space { b": " } else { b":" };
        if rec.defect == Defect::Quoting {
            // Valid JSON, but an array rather than an object.
            self.line.push(b'[');
            for (i, col) in [Col::ResponseId, Col::RespondentKey, Col::SurveyYear].into_iter().enumerate() {
                if i > 0 {
                    self.line.extend_from_slice(sep);
                }
                json_string(&mut self.line, field(rec, col).as_bytes());
            }
            self.line.push(b']');
            return;
        }
        self.line.push(b'{');
        let mut first = true;
        for i in 0..self.layout.columns.len() {
            let col = self.layout.columns[i];
            let text = field(rec, col);
            let is_culture_array = col == Col::Culture && rec.style.culture_array;
            if text.is_empty() && !is_culture_array && (col.optional() || rec.style.omit_blank) {
                continue;
            }
            if !first {
                self.line.extend_from_slice(sep);
            }
            first = false;
            json_string(&mut self.line, col.name().as_bytes());
            self.line.extend_from_slice(colon);
            if is_culture_array {
                self.line.push(b'[');
                if !text.is_empty() {
                    for (j, code) in text.split('|').enumerate() {
                        if j > 0 {
                            self.line.extend_from_slice(sep);
                        }
                        json_string(&mut self.line, code.as_bytes());
                    }
                }
                self.line.push(b']');
            } else if col.integer() && rec.style.numbers && is_plain_int(text) {
                self.line.extend_from_slice(text.as_bytes());
            } else if col == Col::InstitutionCode && rec.defect == Defect::BadByte {
                let mut bytes = vec![0xFF];
                bytes.extend_from_slice(text.as_bytes());
                json_string(&mut self.line, &bytes);
            } else {
                json_string(&mut self.line, text.as_bytes());
            }
        }
        if rec.defect != Defect::Structure {
            self.line.push(b'}');
        }
    }

    /// Finishes the stream and renames the file into place.
    pub fn finish(self) -> Result<PathBuf> {
        let tmp = self.tmp;
        let buffered = match self.sink {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish().map_err(|e| Error::io(&tmp, "writing the gzip stream", e))?,
        };
        // Not synced: test data, and a crash leaves at worst a `.partial` file or a file that a
        // re-run replaces.
        let file = buffered.into_inner().map_err(|e| Error::io(&tmp, "writing", e.into_error()))?;
        drop(file);
        std::fs::rename(&tmp, &self.path).map_err(|e| Error::io(&self.path, "renaming into place", e))?;
        Ok(self.path)
    }
}

fn is_plain_int(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && !(digits.len() > 1 && digits.starts_with('0'))
}

/// Appends a CSV field, quoted when it must be (or when `force`).
fn csv_field(out: &mut Vec<u8>, text: &[u8], delimiter: u8, force: bool) {
    let needs = force || text.iter().any(|&b| b == delimiter || b == b'"' || b == b'\n' || b == b'\r');
    if !needs {
        out.extend_from_slice(text);
        return;
    }
    out.push(b'"');
    for &b in text {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Appends a JSON string; bytes ≥ 0x80 are copied as they are (so a 0xFF stays invalid UTF-8).
fn json_string(out: &mut Vec<u8>, text: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in text {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1F => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        let mut out = Vec::new();
        csv_field(&mut out, b"a;b", b';', false);
        out.push(b'|');
        csv_field(&mut out, b"a;b", b',', false);
        out.push(b'|');
        csv_field(&mut out, b"say \"hi\"\n", b',', false);
        assert_eq!(out, b"\"a;b\"|a;b|\"say \"\"hi\"\"\n\"");
    }

    #[test]
    fn json_strings_escape_controls() {
        let mut out = Vec::new();
        json_string(&mut out, b"L\n\"x\"\x01");
        assert_eq!(out, br#""L\n\"x\"\u0001""#);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, "L\n\"x\"\u{1}");
    }

    #[test]
    fn parallel_gzip_is_one_standard_member() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gz");
        let mut text = Vec::new();
        for i in 0..1_500_000u32 {
            text.extend_from_slice(format!("{i},{}\n", i.wrapping_mul(2_654_435_761)).as_bytes());
        }
        assert!(text.len() > 2 * GZ_CHUNK);
        let mut gz = ParallelGz::new(BufWriter::new(File::create(&path).unwrap())).unwrap();
        for piece in text.chunks(10_000) {
            gz.write_all(piece).unwrap();
        }
        drop(gz.finish().unwrap());
        let bytes = std::fs::read(&path).unwrap();
        // A single-member decoder reads it all: the chunks form one deflate stream.
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut back).unwrap();
        assert!(back == text);
        // An empty stream is valid too.
        let empty = dir.path().join("e.gz");
        drop(ParallelGz::new(BufWriter::new(File::create(&empty).unwrap())).unwrap().finish().unwrap());
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&std::fs::read(&empty).unwrap()[..]).read_to_end(&mut back).unwrap();
        assert!(back.is_empty());
    }

    #[test]
    fn header_names_are_capitalised_per_word() {
        assert_eq!(capitalise("work_district_code"), "Work_District_Code");
        assert_eq!(capitalise("BP1"), "BP1");
    }
}
