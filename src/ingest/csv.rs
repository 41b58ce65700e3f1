//! A streaming RFC 4180 record splitter that keeps each record's raw text.
//!
//! Why not the `csv` crate: the quarantine must hold every bad record's text exactly as read
//! (SPEC 6.2) and the first physical line it started on, and broken quoting must be a
//! `malformed_row` rather than repaired silently. The `csv` crate accepts stray quotes and
//! exposes neither the raw bytes nor a cheap way to get them, so this small state machine
//! (one pass, no backtracking, buffers reused between records) does the splitting.
//!
//! Rules (documented in ARCHITECTURE.md): a quoted field may span lines; a `"` inside an
//! unquoted field, or anything but a delimiter or line end after a closing quote, is broken
//! quoting (the character is kept literally and the record still ends at the next line end
//! outside quotes); a quote still open at end of input makes the rest of the input one
//! malformed record. Blank lines (only whitespace) between records are skipped.

use std::io::{self, BufRead};

/// Records longer than this are malformed; only their first [`RAW_KEEP`] bytes are kept, so a
/// runaway quoted field cannot pull a whole file into memory.
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// Bytes of raw text kept for the quarantine (SPEC 6.2: the first 64 KiB).
pub const RAW_KEEP: usize = 64 * 1024;

/// One CSV record as split from the input.
#[derive(Debug, Default, Clone)]
pub struct CsvRecord {
    /// First physical line of the record (1-based).
    pub line: u64,
    /// The record's bytes without its final line terminator (at most [`RAW_KEEP`] + 4 bytes
    /// are kept for oversized records).
    pub raw: Vec<u8>,
    /// Unescaped field bytes, concatenated.
    pub values: Vec<u8>,
    /// End offset in `values` of each field (in `raw` when `in_raw`).
    pub ends: Vec<u32>,
    /// The record has no quote, so its fields are the bytes of `raw` between delimiters and
    /// `values` is not filled (the common case, spared a copy).
    pub in_raw: bool,
    /// Why the record is malformed, if it is.
    pub fault: Option<&'static str>,
}

impl CsvRecord {
    /// Number of fields.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when the record has no field (never produced by the reader).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of field `i`.
    pub fn field(&self, i: usize) -> &[u8] {
        let bytes = if self.in_raw { &self.raw } else { &self.values };
        &bytes[self.field_start(i)..self.ends[i] as usize]
    }

    /// Where field `i` starts, in `raw` when `in_raw`, else in `values`.
    pub fn field_start(&self, i: usize) -> usize {
        match i {
            0 => 0,
            // In `raw`, a delimiter separates the fields.
            _ => self.ends[i - 1] as usize + usize::from(self.in_raw),
        }
    }

    fn clear(&mut self) {
        self.raw.clear();
        self.values.clear();
        self.ends.clear();
        self.fault = None;
        self.in_raw = false;
    }
}

/// Where the splitter is within a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuoteState {
    /// At the start of a field.
    FieldStart,
    /// Inside an unquoted field.
    Unquoted,
    /// Inside a quoted field.
    Quoted,
    /// Just after a quote inside a quoted field (closing, or the first of a doubled quote).
    QuoteInQuoted,
}

use QuoteState as State;

/// Runs the quote state machine over `bytes` without keeping fields: enough to find where a
/// record ends (it ends at a line end where the state is not `Quoted`).
pub fn scan_quotes(mut state: QuoteState, bytes: &[u8], delimiter: u8) -> QuoteState {
    for &b in bytes {
        state = match state {
            State::FieldStart | State::Unquoted if b == delimiter => State::FieldStart,
            State::FieldStart if b == b'"' => State::Quoted,
            State::FieldStart | State::Unquoted => State::Unquoted,
            State::Quoted if b == b'"' => State::QuoteInQuoted,
            State::Quoted => State::Quoted,
            State::QuoteInQuoted if b == b'"' => State::Quoted,
            State::QuoteInQuoted if b == delimiter => State::FieldStart,
            State::QuoteInQuoted => State::Unquoted,
        };
    }
    state
}

/// Splits one record's raw bytes (without its final terminator) into `rec`: raw, fields and
/// fault, exactly as [`CsvSplitter::read_record`] does.
pub fn split_record(raw: &[u8], delimiter: u8, rec: &mut CsvRecord) {
    rec.clear();
    rec.raw.extend_from_slice(raw);
    if memchr::memchr(b'"', raw).is_none() {
        // Fast path: no quoting, fields are the bytes of `raw` between delimiters.
        rec.in_raw = true;
        push_positions(raw, delimiter, &mut rec.ends);
        rec.ends.push(raw.len() as u32);
        return;
    }
    let mut state = State::FieldStart;
    for &b in raw {
        state = step(state, b, delimiter, rec);
    }
    if state == State::Quoted {
        rec.fault = Some("quoted field not closed before end of file");
    }
    rec.ends.push(rec.values.len() as u32);
}

/// Reads through the next `\n` (included) into `out`, like [`BufRead::read_until`] with the
/// same results, but finds the line end with the SIMD `memchr` where the standard library
/// scans a word at a time: on ~190-byte survey records that scan was most of the reading
/// thread's time after sha256. Returns the number of bytes read, 0 at end of input.
pub fn read_line<R: BufRead + ?Sized>(input: &mut R, out: &mut Vec<u8>) -> io::Result<usize> {
    let mut read = 0;
    loop {
        let (done, used) = {
            let available = match input.fill_buf() {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            match memchr::memchr(b'\n', available) {
                Some(at) => {
                    out.extend_from_slice(&available[..=at]);
                    (true, at + 1)
                }
                None => {
                    out.extend_from_slice(available);
                    (available.is_empty(), available.len())
                }
            }
        };
        input.consume(used);
        read += used;
        if done {
            return Ok(read);
        }
    }
}

/// Appends the offset of every `byte` in `bytes`, eight bytes at a time. Delimiters are dense
/// (one every ~15 bytes of a survey record), where `memchr_iter`'s per-match set-up costs more
/// than the scan: this was most of the field splitting's instructions.
pub fn push_positions(bytes: &[u8], byte: u8, out: &mut Vec<u32>) {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let pattern = u64::from_le_bytes([byte; 8]);
    let mut words = bytes.chunks_exact(8);
    let mut base = 0u32;
    for word in &mut words {
        let mut le = [0u8; 8];
        le.copy_from_slice(word);
        let x = u64::from_le_bytes(le) ^ pattern; // zero bytes where `byte` is
                                                  // The high bit of each byte that is zero, and of no other (exact, no carries across bytes).
        let mut hits = !(((x & LOW7) + LOW7) | x | LOW7);
        while hits != 0 {
            out.push(base + hits.trailing_zeros() / 8);
            hits &= hits - 1;
        }
        base += 8;
    }
    for (i, b) in words.remainder().iter().enumerate() {
        if *b == byte {
            out.push(base + i as u32);
        }
    }
}

/// Splits a byte stream into CSV records.
pub struct CsvSplitter<R> {
    input: R,
    delimiter: u8,
    line: Vec<u8>,
    lines_read: u64,
    pending: bool,
}

impl<R: BufRead> CsvSplitter<R> {
    /// Reads the header: skips a UTF-8 BOM and leading blank lines, detects the delimiter
    /// among `,` `;` TAB (the most frequent outside quotes; ties go to `,`). Returns `None`
    /// when the input holds no non-blank line.
    pub fn open(mut input: R) -> io::Result<Option<(CsvSplitter<R>, CsvRecord)>> {
        let mut line = Vec::new();
        let mut lines_read = 0u64;
        loop {
            line.clear();
            if read_line(&mut input, &mut line)? == 0 {
                return Ok(None);
            }
            lines_read += 1;
            if lines_read == 1 && line.starts_with(b"\xEF\xBB\xBF") {
                line.drain(..3);
            }
            if !is_blank(&line) {
                break;
            }
        }
        let delimiter = detect_delimiter(&line);
        let mut splitter = CsvSplitter { input, delimiter, line, lines_read, pending: true };
        let mut header = CsvRecord::default();
        splitter.read_record(&mut header)?;
        Ok(Some((splitter, header)))
    }

    /// The detected delimiter.
    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// The stream, positioned after the last record read, and the physical lines consumed.
    pub fn into_parts(self) -> (R, u64) {
        (self.input, self.lines_read)
    }

    fn next_line(&mut self) -> io::Result<bool> {
        if self.pending {
            self.pending = false;
            return Ok(true);
        }
        self.line.clear();
        if read_line(&mut self.input, &mut self.line)? == 0 {
            return Ok(false);
        }
        self.lines_read += 1;
        Ok(true)
    }

    /// Reads the next record into `rec`; `false` at end of input.
    pub fn read_record(&mut self, rec: &mut CsvRecord) -> io::Result<bool> {
        rec.clear();
        // Skip blank lines between records.
        loop {
            if !self.next_line()? {
                return Ok(false);
            }
            if !is_blank(&self.line) {
                break;
            }
        }
        rec.line = self.lines_read;
        let delimiter = self.delimiter;
        let mut state = State::FieldStart;
        let mut total = 0usize;
        loop {
            let line = &self.line;
            let body_len = line.len() - terminator_len(line);
            total += line.len();
            let oversized = total > MAX_RECORD_BYTES;
            if oversized {
                rec.fault = Some("record longer than 1 MiB");
            }
            if rec.raw.len() < RAW_KEEP {
                let take = line.len().min(RAW_KEEP + 4 - rec.raw.len());
                rec.raw.extend_from_slice(&line[..take]);
            }
            for &b in &line[..body_len] {
                state = step(state, b, delimiter, rec);
            }
            if oversized {
                // Keep scanning for the record's end, but hold none of its fields.
                rec.values.clear();
                rec.ends.clear();
            }
            if state != State::Quoted {
                break;
            }
            // The line end belongs to the quoted field.
            rec.values.extend_from_slice(&line[body_len..]);
            if !self.next_line()? {
                rec.fault = Some("quoted field not closed before end of file");
                break;
            }
        }
        // Drop the final terminator from the raw text.
        let keep = rec.raw.len() - terminator_len(&rec.raw);
        rec.raw.truncate(keep);
        rec.ends.push(rec.values.len() as u32);
        Ok(true)
    }
}

fn step(state: State, b: u8, delimiter: u8, rec: &mut CsvRecord) -> State {
    match state {
        State::FieldStart | State::Unquoted if b == delimiter => {
            rec.ends.push(rec.values.len() as u32);
            State::FieldStart
        }
        State::FieldStart if b == b'"' => State::Quoted,
        State::Unquoted if b == b'"' => {
            rec.fault.get_or_insert("quote inside an unquoted field");
            rec.values.push(b);
            State::Unquoted
        }
        State::FieldStart | State::Unquoted => {
            rec.values.push(b);
            State::Unquoted
        }
        State::Quoted if b == b'"' => State::QuoteInQuoted,
        State::Quoted => {
            rec.values.push(b);
            State::Quoted
        }
        State::QuoteInQuoted if b == b'"' => {
            rec.values.push(b'"');
            State::Quoted
        }
        State::QuoteInQuoted if b == delimiter => {
            rec.ends.push(rec.values.len() as u32);
            State::FieldStart
        }
        State::QuoteInQuoted => {
            rec.fault.get_or_insert("text after a closing quote");
            rec.values.push(b);
            State::Unquoted
        }
    }
}

/// Length of the line terminator (`\r\n`, `\n` or none) at the end of `line`.
pub fn terminator_len(line: &[u8]) -> usize {
    if line.ends_with(b"\r\n") {
        2
    } else if line.ends_with(b"\n") {
        1
    } else {
        0
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| b.is_ascii_whitespace())
}

/// The most frequent of `,` `;` TAB outside quotes in the header line; ties go to `,`.
pub fn detect_delimiter(header: &[u8]) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in header {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let candidates = [b',', b';', b'\t'];
    let mut best = 0;
    for i in 1..3 {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    candidates[best]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_line_matches_read_until() {
        // Lines longer and shorter than the reader's buffer, with and without a final newline.
        let mut text = Vec::new();
        for i in 0..200 {
            text.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, i * 7 % 61));
            if i % 5 != 4 {
                text.push(b'\n');
            }
        }
        for capacity in [1, 2, 7, 64, 4096] {
            let mut ours = io::BufReader::with_capacity(capacity, &text[..]);
            let mut std = io::BufReader::with_capacity(capacity, &text[..]);
            loop {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                let n = read_line(&mut ours, &mut a).unwrap();
                assert_eq!(n, std.read_until(b'\n', &mut b).unwrap());
                assert_eq!(a, b);
                if n == 0 {
                    break;
                }
            }
        }
    }

    #[test]
    fn positions_match_a_plain_scan() {
        let delimiters = [b',', b';', b'\t', 0x00, 0x80, 0xff];
        let mut seed = 7u64;
        for len in 0..80 {
            for &d in &delimiters {
                // Bytes drawn near the delimiter value, so carries between bytes would show.
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        match seed >> 61 {
                            0..=2 => d,
                            3 => d.wrapping_add(1),
                            4 => d.wrapping_sub(1),
                            5 => d ^ 0x80,
                            _ => (seed >> 33) as u8,
                        }
                    })
                    .collect();
                let mut got = Vec::new();
                push_positions(&bytes, d, &mut got);
                let want: Vec<u32> = (0..len).filter(|i| bytes[*i] == d).map(|i| i as u32).collect();
                assert_eq!(got, want, "delimiter {d:#x} in {bytes:?}");
            }
        }
    }

    fn split(text: &[u8]) -> (Vec<String>, Vec<CsvRecord>) {
        let (mut s, header) = CsvSplitter::open(text).unwrap().unwrap();
        let names = (0..header.len()).map(|i| String::from_utf8_lossy(header.field(i)).into_owned()).collect();
        let mut out = Vec::new();
        let mut rec = CsvRecord::default();
        while s.read_record(&mut rec).unwrap() {
            out.push(rec.clone());
        }
        (names, out)
    }

    fn fields(rec: &CsvRecord) -> Vec<String> {
        (0..rec.len()).map(|i| String::from_utf8_lossy(rec.field(i)).into_owned()).collect()
    }

    #[test]
    fn plain_records_with_line_numbers() {
        let (h, r) = split(b"a,b\n1,2\n\n3,4\n");
        assert_eq!(h, ["a", "b"]);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].line, fields(&r[0])), (2, vec!["1".into(), "2".into()]));
        assert_eq!(r[1].line, 4);
        assert_eq!(r[1].raw, b"3,4");
    }

    #[test]
    fn utf8_bom_and_crlf() {
        let (h, r) = split(b"\xEF\xBB\xBFa;b\r\n1;2\r\n");
        assert_eq!(h, ["a", "b"]);
        assert_eq!(fields(&r[0]), ["1", "2"]);
        assert_eq!(r[0].raw, b"1;2");
    }

    #[test]
    fn delimiter_detection() {
        assert_eq!(detect_delimiter(b"a;b;c,d\n"), b';');
        assert_eq!(detect_delimiter(b"a\tb\tc\n"), b'\t');
        assert_eq!(detect_delimiter(b"a,b;c\n"), b',');
        assert_eq!(detect_delimiter(b"\"a;b;c\",d\n"), b',');
        assert_eq!(detect_delimiter(b"single\n"), b',');
    }

    #[test]
    fn quoted_field_spanning_lines_keeps_raw_and_first_line() {
        let (_, r) = split(b"a,b\n\"x\r\ny\",\"q\"\"q\"\n5,6");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].line, 2);
        assert_eq!(fields(&r[0]), ["x\r\ny", "q\"q"]);
        assert_eq!(r[0].raw, b"\"x\r\ny\",\"q\"\"q\"");
        assert_eq!(r[0].fault, None);
        assert_eq!(r[1].line, 4);
        assert_eq!(fields(&r[1]), ["5", "6"]);
    }

    #[test]
    fn broken_quoting_is_a_fault_and_stays_on_its_line() {
        let (_, r) = split(b"a,b\nx\"y,2\n\"x\"y,2\n3,4\n");
        assert_eq!(r.len(), 3);
        assert!(r[0].fault.is_some());
        assert!(r[1].fault.is_some());
        assert_eq!(r[2].fault, None);
        assert_eq!(r[2].line, 4);
    }

    #[test]
    fn unterminated_quote_runs_to_end_of_file() {
        let (_, r) = split(b"a,b\n1,\"open\n3,4\n");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].fault, Some("quoted field not closed before end of file"));
        assert_eq!(r[0].raw, b"1,\"open\n3,4");
    }

    #[test]
    fn empty_fields_and_trailing_delimiter() {
        let (_, r) = split(b"a,b,c\n,,\n1,2,\n");
        assert_eq!(fields(&r[0]), ["", "", ""]);
        assert_eq!(fields(&r[1]), ["1", "2", ""]);
    }

    #[test]
    fn empty_input_has_no_header() {
        assert!(CsvSplitter::open(&b""[..]).unwrap().is_none());
        assert!(CsvSplitter::open(&b"\n  \n"[..]).unwrap().is_none());
    }

    #[test]
    fn oversized_record_is_malformed_and_bounded() {
        let mut text = b"a,b\n\"".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES + 10));
        text.extend_from_slice(b"\",1\n2,3\n");
        let (_, r) = split(&text);
        assert_eq!(r.len(), 2);
        assert!(r[0].fault.is_some());
        assert!(r[0].raw.len() <= RAW_KEEP + 4);
        assert_eq!(fields(&r[1]), ["2", "3"]);
    }
}
