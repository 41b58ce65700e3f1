//! Chunked reading for parallel parsing. The reading thread only finds record boundaries —
//! `memchr` for line ends, and a quote-state scan only on lines that hold a `"` — and hands
//! out chunks of whole records (about 1 MiB each); workers split fields and validate.
//!
//! The boundaries are exactly those of [`super::csv::CsvSplitter`] (same state machine, same
//! rules for blank lines, broken quoting and oversized records); a test checks the two agree.

use std::io::{self, BufRead};

use memchr::memchr;

use super::csv::{
    read_line, scan_quotes, split_record, terminator_len, CsvRecord, QuoteState, MAX_RECORD_BYTES, RAW_KEEP,
};
use super::Format;

/// Target size of a chunk.
pub const CHUNK_BYTES: usize = 1 << 20;

/// One record inside a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First physical line of the record.
    pub line: u64,
    /// Start of the record in the chunk's data.
    pub start: usize,
    /// End of the record (without its line terminator).
    pub end: usize,
    /// Longer than 1 MiB: only its first 64 KiB are kept.
    pub oversized: bool,
    /// A quoted field still open at end of file.
    pub unterminated: bool,
}

/// Whole records, as read.
#[derive(Debug, Default)]
pub struct Chunk {
    /// The records' bytes (with their terminators).
    pub data: Vec<u8>,
    /// The records.
    pub spans: Vec<Span>,
}

impl Chunk {
    /// The raw bytes of record `i`, without its terminator.
    pub fn raw(&self, i: usize) -> &[u8] {
        let s = &self.spans[i];
        &self.data[s.start..s.end]
    }

    /// Fills `rec` with record `i`: raw text, fields (CSV) and any fault.
    pub fn record_into(&self, i: usize, format: Format, delimiter: u8, rec: &mut CsvRecord) {
        let s = self.spans[i];
        let raw = &self.data[s.start..s.end];
        rec.line = s.line;
        match format {
            Format::Csv => split_record(raw, delimiter, rec),
            Format::Jsonl => {
                rec.raw.clear();
                rec.raw.extend_from_slice(raw);
                rec.values.clear();
                rec.ends.clear();
                rec.in_raw = false;
                rec.fault = None;
            }
        }
        if s.unterminated {
            rec.fault = Some("quoted field not closed before end of file");
        }
        if s.oversized {
            rec.fault = Some("record longer than 1 MiB");
        }
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| b.is_ascii_whitespace())
}

/// Splits a stream (positioned after the CSV header, or at the start of a JSON Lines file)
/// into chunks of whole records.
pub struct ChunkReader<R> {
    input: R,
    format: Format,
    delimiter: u8,
    lines: u64,
    scratch: Vec<u8>,
}

impl<R: BufRead> ChunkReader<R> {
    /// `lines` is the number of physical lines already consumed (the header's).
    pub fn new(input: R, format: Format, delimiter: u8, lines: u64) -> Self {
        ChunkReader { input, format, delimiter, lines, scratch: Vec::new() }
    }

    /// The delimiter (CSV).
    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// Reads the next chunk; `false` at end of input.
    pub fn next_chunk(&mut self, chunk: &mut Chunk) -> io::Result<bool> {
        chunk.data.clear();
        chunk.spans.clear();
        while chunk.data.len() < CHUNK_BYTES {
            let start = chunk.data.len();
            if read_line(&mut self.input, &mut chunk.data)? == 0 {
                break;
            }
            self.lines += 1;
            let line = self.lines;
            if line == 1 && self.format == Format::Jsonl && chunk.data[start..].starts_with(b"\xEF\xBB\xBF") {
                chunk.data.drain(start..start + 3);
            }
            if is_blank(&chunk.data[start..]) {
                chunk.data.truncate(start);
                continue;
            }
            let mut span = Span { line, start, end: 0, oversized: false, unterminated: false };
            if self.format == Format::Csv && memchr(b'"', &chunk.data[start..]).is_some() {
                self.finish_quoted(chunk, &mut span)?;
            }
            let end = chunk.data.len() - terminator_len(&chunk.data[start..]);
            span.end = end;
            if end - start > MAX_RECORD_BYTES {
                span.oversized = true;
            }
            if span.oversized {
                let keep = (start + RAW_KEEP + 4).min(end);
                chunk.data.truncate(keep);
                span.end = keep;
            }
            chunk.spans.push(span);
        }
        Ok(!chunk.spans.is_empty())
    }

    /// Reads on while the record's quoted field stays open at a line end.
    fn finish_quoted(&mut self, chunk: &mut Chunk, span: &mut Span) -> io::Result<()> {
        let delimiter = self.delimiter;
        let body = |bytes: &[u8]| bytes.len() - terminator_len(bytes);
        let first = &chunk.data[span.start..];
        let mut state = scan_quotes(QuoteState::FieldStart, &first[..body(first)], delimiter);
        while state == QuoteState::Quoted {
            if chunk.data.len() - span.start > MAX_RECORD_BYTES {
                // Keep the first 64 KiB; scan the rest in a scratch buffer for the record's end.
                span.oversized = true;
                chunk.data.truncate(span.start + RAW_KEEP + 4);
                loop {
                    self.scratch.clear();
                    if read_line(&mut self.input, &mut self.scratch)? == 0 {
                        span.unterminated = true;
                        return Ok(());
                    }
                    self.lines += 1;
                    let n = body(&self.scratch);
                    state = scan_quotes(state, &self.scratch[..n], delimiter);
                    if state != QuoteState::Quoted {
                        return Ok(());
                    }
                }
            }
            let before = chunk.data.len();
            if read_line(&mut self.input, &mut chunk.data)? == 0 {
                span.unterminated = true;
                return Ok(());
            }
            self.lines += 1;
            let added = &chunk.data[before..];
            state = scan_quotes(state, &added[..body(added)], delimiter);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::csv::CsvSplitter;

    /// (line, raw, fields, malformed) of each record.
    type Records = Vec<(u64, Vec<u8>, Vec<Vec<u8>>, bool)>;

    /// Every record through the chunked path.
    fn chunked(text: &[u8]) -> Records {
        let (splitter, _) = CsvSplitter::open(text).unwrap().unwrap();
        let delimiter = splitter.delimiter();
        let (input, lines) = splitter.into_parts();
        let mut reader = ChunkReader::new(input, Format::Csv, delimiter, lines);
        let mut chunk = Chunk::default();
        let mut out = Vec::new();
        let mut rec = CsvRecord::default();
        while reader.next_chunk(&mut chunk).unwrap() {
            for i in 0..chunk.spans.len() {
                chunk.record_into(i, Format::Csv, delimiter, &mut rec);
                let fields = (0..rec.len()).map(|f| rec.field(f).to_vec()).collect();
                out.push((rec.line, rec.raw.clone(), fields, rec.fault.is_some()));
            }
        }
        out
    }

    fn streamed(text: &[u8]) -> Records {
        let (mut splitter, _) = CsvSplitter::open(text).unwrap().unwrap();
        let mut out = Vec::new();
        let mut rec = CsvRecord::default();
        while splitter.read_record(&mut rec).unwrap() {
            let fields = (0..rec.len()).map(|f| rec.field(f).to_vec()).collect();
            out.push((rec.line, rec.raw.clone(), fields, rec.fault.is_some()));
        }
        out
    }

    /// Fields of malformed records are never used; compare everything else.
    fn comparable(mut v: Records) -> Records {
        for r in &mut v {
            if r.3 {
                r.2.clear();
            }
        }
        v
    }

    #[test]
    fn chunked_and_streamed_agree_on_tricky_input() {
        let cases: [&[u8]; 6] = [
            b"a,b\n1,2\n\n  \n3,4\r\n",
            b"a;b\r\n\"x\r\ny\";\"q\"\"q\"\r\n5;6",
            b"a,b\nx\"y,2\n\"x\"y,2\n3,4\n",
            b"a,b\n1,\"open\n3,4\n",
            b"a,b\n\"\",\"\"\"\"\n\"a,b\",c\n",
            b"a\tb\n1\t\"2\n\n3\"\n",
        ];
        for text in cases {
            assert_eq!(comparable(chunked(text)), comparable(streamed(text)), "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn many_chunks_keep_line_numbers() {
        let mut text = b"a,b\n".to_vec();
        for i in 0..100_000 {
            text.extend_from_slice(format!("{i},\"x\ny\"\n").as_bytes());
        }
        let out = chunked(&text);
        assert_eq!(out.len(), 100_000);
        assert_eq!(out[99_999].0, 2 + 2 * 99_999);
        assert_eq!(out, streamed(&text));
    }

    #[test]
    fn oversized_quoted_record_is_bounded() {
        let mut text = b"a,b\n\"".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES + 10));
        text.extend_from_slice(b"\n\",1\n2,3\n");
        let out = chunked(&text);
        assert_eq!(out.len(), 2);
        assert!(out[0].3);
        assert!(out[0].1.len() <= RAW_KEEP + 4);
        assert_eq!(out[1].0, 4);
        assert_eq!(out[1].2, [b"2".to_vec(), b"3".to_vec()]);
    }
}
