//! The `aggregate` and `validate` commands: ingest → validate → dedupe → score → estimate →
//! publish, with the quality gate between checking and publishing.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant as Clock;

use chrono::{SecondsFormat, Utc};
use rayon::prelude::*;

use crate::config::Config;
use crate::config::Instrument;
use crate::dedupe::{Batch, DedupRejection, Deduper, Position};
use crate::error::{Error, Result};
use crate::estimate::{estimate_domains, estimate_institutions, Domains, InstitutionEstimate, Params, Previous};
use crate::ingest::chunk::Chunk;
use crate::ingest::{self, Format, InputFile, Layout, RawRecord, RecordReader};
use crate::progress::Progress;
use crate::publish::commit::{self, create_dirs, Entry, Transaction, WarehouseLock};
use crate::publish::manifest::{InputReport, Manifest, Totals};
use crate::publish::parquet::FileMeta;
use crate::publish::{layout, previous, quarantine_staging, stage_tables, write_marker, TableReport, Tables};
use crate::quarantine::{self, raw_text, QuarantineRecord};
use crate::reference::{Master, Regions};
use crate::score::{InstitutionSums, Scale, Tally};
use crate::testhooks;
use crate::validate::{validate, Context, Reason, Response};

/// The crate version written into files and manifests.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a run should do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Publish (`aggregate`) or only check (`validate`).
    pub publish: bool,
    /// No progress output.
    pub quiet: bool,
    /// The run's id.
    pub run_id: String,
}

/// A new run id: UTC start time and a random suffix; `BERAKHLAK_RUN_ID` overrides it (tests).
pub fn new_run_id() -> String {
    if let Ok(id) = std::env::var("BERAKHLAK_RUN_ID") {
        if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return id;
        }
    }
    let now = Utc::now();
    let salt = (now.timestamp_subsec_nanos() as u64) ^ (u64::from(std::process::id()) << 20);
    format!("{}-{:06x}", now.format("%Y%m%dT%H%M%SZ"), salt & 0xff_ffff)
}

/// What a run read and decided, for the summary and the manifest.
#[derive(Debug, Clone)]
pub struct Report {
    /// Per input file.
    pub inputs: Vec<InputReport>,
    /// Ignored files.
    pub ignored: Vec<String>,
    /// Totals.
    pub totals: Totals,
    /// Where the quarantine went (if written).
    pub quarantine_file: Option<String>,
    /// Tables written.
    pub tables: BTreeMap<String, TableReport>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// Seconds spent.
    pub seconds: f64,
    /// Seconds spent per phase, in order.
    pub phases: Vec<(&'static str, f64)>,
    /// Bytes read from input files.
    pub bytes_read: u64,
    /// Recovery done at start.
    pub recovered: commit::Recovered,
}

struct FileTally {
    records_read: u64,
    by_reason: BTreeMap<Reason, u64>,
    sha256: String,
    /// xxh3 of the file's bytes, to check a second read against.
    quick: u64,
    bytes: u64,
}

/// The result of reading and checking every input.
struct Checked {
    phases: Phases,
    /// Accepted responses.
    accepted: u64,
    /// Their sums per institution and work district.
    sums: Vec<InstitutionSums>,
    quarantine: Vec<QuarantineRecord>,
    tallies: Vec<FileTally>,
}

/// Wall time per phase, for the summary and the benchmark's profile.
struct Phases {
    since: Clock,
    done: Vec<(&'static str, f64)>,
}

impl Phases {
    fn start() -> Self {
        Phases { since: Clock::now(), done: Vec::new() }
    }

    /// Ends the phase `name`, which ran since the previous mark.
    fn mark(&mut self, name: &'static str) {
        let now = Clock::now();
        self.done.push((name, now.duration_since(self.since).as_secs_f64()));
        self.since = now;
    }
}

/// Runs `aggregate` (publish) or `validate`.
pub fn run(cfg: &Config, opts: &RunOptions) -> Result<Report> {
    let clock = Clock::now();
    let started = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut progress = Progress::new(opts.quiet);

    let regions = Regions::load(&cfg.paths.regions)?;
    let master = Master::load(&cfg.paths.master, &regions)?;
    let discovery = ingest::discover(&cfg.paths.input)?;
    // Check every header before reading any record: a bad header stops the run at once.
    for file in &discovery.files {
        RecordReader::open(file, cfg.survey.instrument)?;
    }

    let warehouse = &cfg.paths.warehouse;
    let (lock, recovered) = if opts.publish {
        prepare_root(warehouse, 0o755, "warehouse")?;
        // Checked now, not at publish time: a wrong quarantine path must not cost a whole run.
        prepare_root(&cfg.paths.quarantine, quarantine::DIR_MODE, "quarantine")?;
        let holder = format!("pid {} started {} run_id {}", std::process::id(), started, opts.run_id);
        let lock = WarehouseLock::acquire(warehouse, &holder)?;
        let recovered = commit::recover(warehouse)?;
        // A quarantine staging directory left by a run that died after its journal was gone.
        commit::sweep_staging(&cfg.paths.quarantine);
        for run in &recovered.rolled_forward {
            progress.log(&format!("recovery: completed the interrupted publish of run {run}"));
        }
        for run in &recovered.rolled_back {
            progress.log(&format!("recovery: discarded the unfinished staging of run {run}"));
        }
        for run in &recovered.cleaned {
            progress.log(&format!("recovery: removed leftover staging of run {run}"));
        }
        (Some(lock), recovered)
    } else {
        (None, commit::Recovered::default())
    };

    let mut checked = read_and_check(cfg, &master, &regions, &discovery.files, &mut progress)?;
    let mut phases = std::mem::replace(&mut checked.phases, Phases::start());
    let mut report = account(&discovery, &checked, &master);
    report.recovered = recovered;
    report.bytes_read = checked.tallies.iter().map(|t| t.bytes).sum();

    // Quality gate.
    let gate_rejected =
        report.totals.quarantined - report.totals.quarantined_by_reason.get("superseded").copied().unwrap_or(0);
    if report.totals.quarantine_ratio > cfg.publish.max_quarantine_ratio {
        let diagnosis = layout::rejected_run_dir(&cfg.paths.quarantine, &opts.run_id);
        if opts.publish {
            quarantine::write(&diagnosis, &checked.quarantine, &file_meta(cfg, opts))?;
        }
        print_gate_report(&report, &checked.quarantine);
        return Err(Error::QualityGate {
            rejected: gate_rejected,
            read: report.totals.records_read,
            ratio: report.totals.quarantine_ratio,
            max: cfg.publish.max_quarantine_ratio,
            diagnosis,
        });
    }

    let scale = Scale::of(cfg.survey.instrument, cfg.survey.likert_min, cfg.survey.likert_max);
    let params = Params {
        margin_of_error: cfg.estimation.margin_of_error,
        min_floor: cfg.estimation.min_floor,
        suppression_min_n: cfg.estimation.suppression_min_n,
    };
    progress.phase("scoring", master.len() as u64, false);
    let sums = std::mem::take(&mut checked.sums);
    let previous = if opts.publish { previous::load(warehouse, cfg.year - 1)? } else { Previous::default() };
    let institutions = estimate_institutions(&master, &sums, &scale, &params, &previous);
    let domains = estimate_domains(&master, &regions, &sums, &institutions, &scale, &params, &previous);
    progress.set(master.len() as u64);
    progress.finish();
    summarise_estimates(&mut report, &institutions, &domains, &master);
    phases.mark("estimate");

    if opts.publish {
        testhooks::point("before-publish");
        ensure_inputs_unchanged(&discovery.files)?;
        progress.phase("writing", 7, false);
        let publication = Publication {
            cfg,
            opts,
            master: &master,
            regions: &regions,
            institutions: &institutions,
            domains: &domains,
            quarantine_records: &checked.quarantine,
            started: &started,
        };
        publish(&publication, &mut report)?;
        progress.finish();
        phases.mark("publish");
    }
    report.phases = phases.done;
    drop(lock);
    report.seconds = clock.elapsed().as_secs_f64();
    Ok(report)
}

/// Creates the warehouse or quarantine root if only it is missing; a missing parent is an
/// operator error (probably a typo), not something to create silently.
fn prepare_root(root: &Path, mode: u32, what: &str) -> Result<()> {
    if root.is_dir() {
        return Ok(());
    }
    if root.exists() {
        return Err(Error::Usage(format!("{what} {} exists but is not a directory", root.display())));
    }
    let parent = root.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        let problem = if parent.exists() { "is not a directory" } else { "does not exist" };
        return Err(Error::Usage(format!(
            "{what} {} cannot be created: its parent {} {problem}",
            root.display(),
            parent.display()
        )));
    }
    create_dirs(root, mode)
}

fn file_meta(cfg: &Config, opts: &RunOptions) -> FileMeta {
    FileMeta {
        run_id: opts.run_id.clone(),
        version: VERSION.to_string(),
        config_sha256: cfg.sha256.clone(),
        compression: cfg.publish.compression,
    }
}

/// Chunks read ahead of the workers, and outcomes waiting to be merged (each bounded by this).
const GROUP: usize = 8;

/// What the workers made of one chunk (its accepted responses went to deduplication and
/// to the worker's tally).
#[derive(Default)]
struct ChunkOutcome {
    rejected: Vec<QuarantineRecord>,
    records: u64,
    /// A line number past what deduplication can hold (2³²): the run must stop.
    line_overflow: bool,
    /// More respondents than deduplication can hold: the run must stop.
    full: bool,
}

/// What every chunk of a file is checked with.
struct FileJob<'a> {
    format: Format,
    delimiter: u8,
    layout: &'a Layout,
    ctx: &'a Context<'a>,
    instrument: Instrument,
    file: u32,
    name: Arc<str>,
    deduper: &'a Deduper,
    /// One tally per worker thread (and one for callers outside the pool).
    tallies: &'a [Mutex<Tally>],
}

fn process_chunk(chunk: &Chunk, job: &FileJob) -> ChunkOutcome {
    thread_local! {
        static SCRATCH: std::cell::RefCell<(RawRecord, Batch)> = std::cell::RefCell::default();
    }
    let worker = rayon::current_thread_index().unwrap_or(job.tallies.len() - 1).min(job.tallies.len() - 1);
    let mut tally = job.tallies[worker].lock().unwrap_or_else(|p| p.into_inner());
    SCRATCH.with(|scratch| {
        let (rec, batch) = &mut *scratch.borrow_mut();
        let mut out = ChunkOutcome { records: chunk.spans.len() as u64, ..ChunkOutcome::default() };
        for i in 0..chunk.spans.len() {
            chunk.record_into(i, job.format, job.delimiter, rec);
            match validate(rec, job.layout, job.ctx) {
                Ok(response) => {
                    if rec.line > u64::from(u32::MAX) {
                        out.line_overflow = true;
                        continue;
                    }
                    batch.add(Position { file: job.file, line: rec.line }, &response);
                    tally.add(&response, job.instrument);
                }
                Err(rejection) => out.rejected.push(QuarantineRecord {
                    file: job.file,
                    source_file: Arc::clone(&job.name),
                    line_number: rec.line,
                    response_id: rejection.response_id,
                    reason: rejection.reason,
                    detail: rejection.detail,
                    raw: raw_text(&rec.raw),
                }),
            }
        }
        if job.deduper.push_batch(batch).is_err() {
            out.full = true;
        }
        out
    })
}

fn read_and_check(
    cfg: &Config,
    master: &Master,
    regions: &Regions,
    files: &[InputFile],
    progress: &mut Progress,
) -> Result<Checked> {
    if files.len() > usize::from(u16::MAX) {
        return Err(Error::Usage(format!("{} input files: at most {} per run", files.len(), u16::MAX)));
    }
    let mut phases = Phases::start();
    let ctx = Context::new(cfg.year, master, regions, &cfg.survey);
    let total_bytes: u64 = files.iter().map(|f| f.bytes).sum();
    // A CSV record is ~180 bytes; a low guess keeps the table small (it doubles if needed).
    let deduper = Deduper::with_capacity((total_bytes / 256) as usize);
    let worker_tallies: Vec<Mutex<Tally>> =
        (0..=rayon::current_num_threads()).map(|_| Mutex::new(Tally::default())).collect();
    // Each quarantined record names its file; the names are shared, not copied per record.
    let names: Vec<Arc<str>> = files.iter().map(|f| Arc::from(f.rel_path.as_str())).collect();
    let mut quarantine: Vec<QuarantineRecord> = Vec::new();
    let mut tallies = Vec::with_capacity(files.len());
    let mut done_bytes = 0u64;
    progress.phase("reading", total_bytes, true);
    for (index, file) in files.iter().enumerate() {
        let (mut chunks, layout, fingerprint) = RecordReader::open(file, cfg.survey.instrument)?.into_chunks();
        let job = FileJob {
            format: file.format,
            delimiter: chunks.delimiter(),
            layout: &layout,
            ctx: &ctx,
            instrument: cfg.survey.instrument,
            file: index as u32,
            name: Arc::clone(&names[index]),
            deduper: &deduper,
            tallies: &worker_tallies,
        };
        let mut tally =
            FileTally { records_read: 0, by_reason: BTreeMap::new(), sha256: String::new(), quick: 0, bytes: 0 };
        std::thread::scope(|scope| -> Result<()> {
            let (tx, rx) = mpsc::sync_channel::<std::io::Result<Chunk>>(GROUP);
            let (recycle, recycled) = mpsc::channel::<Chunk>();
            scope.spawn(move || loop {
                let mut chunk = recycled.try_recv().unwrap_or_default();
                match chunks.next_chunk(&mut chunk) {
                    Ok(true) => {
                        if tx.send(Ok(chunk)).is_err() {
                            return;
                        }
                    }
                    Ok(false) => return,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            });
            // Workers take chunks as they come (no barrier between groups of chunks) and hand
            // back outcomes through a bounded channel: when this thread stops taking them, the
            // workers and then the reader stop too, so read-ahead stays bounded.
            let (done_tx, done_rx) = mpsc::sync_channel::<std::io::Result<ChunkOutcome>>(GROUP);
            let job = &job;
            scope.spawn(move || {
                // Ends early once this thread stops taking outcomes (an error): the channel of
                // chunks is then dropped, which stops the reader too.
                let _ = rx.into_iter().par_bridge().try_for_each_with((done_tx, recycle), |(done, recycle), item| {
                    let outcome = item.map(|chunk| {
                        let outcome = process_chunk(&chunk, job);
                        let _ = recycle.send(chunk);
                        outcome
                    });
                    done.send(outcome).map_err(|_| ())
                });
            });
            let mut merged = 0usize;
            for outcome in done_rx {
                merged += 1;
                let outcome = outcome.map_err(|e| ingest::read_error(&file.path, file.gzip, e))?;
                tally.records_read += outcome.records;
                if outcome.line_overflow {
                    return Err(Error::Usage(format!("{}: more than {} lines", file.path.display(), u32::MAX)));
                }
                if outcome.full {
                    return Err(Error::Usage("more respondents than one run can deduplicate (about 10^9)".into()));
                }
                for rejection in outcome.rejected {
                    *tally.by_reason.entry(rejection.reason).or_default() += 1;
                    quarantine.push(rejection);
                }
                if merged.is_multiple_of(GROUP) {
                    testhooks::point("after-batch");
                    let read_so_far = fingerprint.lock().map(|f| f.bytes).unwrap_or(0);
                    progress.set(done_bytes + read_so_far);
                }
            }
            if !merged.is_multiple_of(GROUP) {
                testhooks::point("after-batch");
            }
            Ok(())
        })?;
        let (bytes, sha256, quick) = fingerprint
            .lock()
            .map(|f| (f.bytes, f.sha256(), f.quick()))
            .map_err(|_| Error::Usage("internal: fingerprint lock poisoned".into()))?;
        if bytes != file.bytes {
            return Err(Error::InputChanged {
                path: file.path.clone(),
                detail: format!("{} bytes when listed, {bytes} read", file.bytes),
            });
        }
        done_bytes += bytes;
        tally.sha256 = sha256;
        tally.quick = quick;
        tally.bytes = bytes;
        tallies.push(tally);
    }
    progress.finish();
    phases.mark("read+validate");

    let deduped = deduper.finish();
    let accepted = deduped.kept.len() as u64;
    drop(deduped.kept);
    phases.mark("dedupe");
    let mut sums = Tally::default();
    for t in worker_tallies {
        sums.merge(t.into_inner().unwrap_or_else(|p| p.into_inner()));
    }
    testhooks::point("before-reread");
    let reread = reread_rejected(cfg, &ctx, files, &deduped.rejected, &tallies)?;
    for (r, (raw, response)) in deduped.rejected.iter().zip(reread) {
        sums.remove(&response, cfg.survey.instrument);
        let tally = &mut tallies[r.position.file as usize];
        *tally.by_reason.entry(r.reason).or_default() += 1;
        quarantine.push(QuarantineRecord {
            file: r.position.file,
            source_file: Arc::clone(&names[r.position.file as usize]),
            line_number: r.position.line,
            response_id: Some(r.response_id.clone()),
            reason: r.reason,
            detail: r.detail.clone(),
            raw,
        });
    }
    quarantine.sort_by_key(|q| (q.file, q.line_number));
    let sums = sums.into_institutions(master.len());
    phases.mark("re-read");
    Ok(Checked { phases, accepted, sums, quarantine, tallies })
}

/// The records rejected by deduplication, read once more: their raw text (they were valid
/// when read, so it was not kept) and their responses (added to the tallies when read, to be
/// taken out now). Files are re-read in parallel and must not have changed in between.
fn reread_rejected(
    cfg: &Config,
    ctx: &Context,
    files: &[InputFile],
    rejected: &[DedupRejection],
    tallies: &[FileTally],
) -> Result<Vec<(String, Response<'static>)>> {
    let mut wanted: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for r in rejected {
        wanted.entry(r.position.file).or_default().push(r.position.line);
    }
    let per_file: Vec<Result<Vec<(Position, String, Response<'static>)>>> = wanted
        .into_par_iter()
        .map(|(file_index, mut lines)| {
            lines.sort_unstable();
            let file = &files[file_index as usize];
            let changed = |detail: &str| Error::InputChanged { path: file.path.clone(), detail: detail.into() };
            let (mut chunks, layout, fingerprint) = RecordReader::reopen(file, cfg.survey.instrument)?.into_chunks();
            let delimiter = chunks.delimiter();
            let mut chunk = Chunk::default();
            let mut rec = RawRecord::default();
            let mut found = Vec::with_capacity(lines.len());
            // Boundaries first (memchr speed); only the wanted records are split and checked.
            while chunks.next_chunk(&mut chunk).map_err(|e| ingest::read_error(&file.path, file.gzip, e))? {
                for (i, span) in chunk.spans.iter().enumerate() {
                    if found.len() < lines.len() && span.line == lines[found.len()] {
                        chunk.record_into(i, file.format, delimiter, &mut rec);
                        let response = validate(&rec, &layout, ctx)
                            .map_err(|_| changed("a record valid at the first read is not at the second"))?;
                        let position = Position { file: file_index, line: span.line };
                        found.push((position, raw_text(chunk.raw(i)), response.into_owned()));
                    }
                }
            }
            let (bytes, quick) = fingerprint.lock().map(|f| (f.bytes, f.quick())).unwrap_or_default();
            let first = &tallies[file_index as usize];
            if bytes != first.bytes || quick != first.quick || found.len() < lines.len() {
                return Err(changed("content differs between two reads"));
            }
            Ok(found)
        })
        .collect();
    let mut by_position: HashMap<Position, (String, Response<'static>)> = HashMap::with_capacity(rejected.len());
    for found in per_file {
        for (position, raw, response) in found? {
            by_position.insert(position, (raw, response));
        }
    }
    rejected
        .iter()
        .map(|r| {
            let (raw, response) = by_position.remove(&r.position).ok_or_else(|| Error::InputChanged {
                path: files[r.position.file as usize].path.clone(),
                detail: format!("line {} not found at the second read", r.position.line),
            })?;
            if *response.response_id != r.response_id {
                return Err(Error::InputChanged {
                    path: files[r.position.file as usize].path.clone(),
                    detail: format!("line {} holds another response_id at the second read", r.position.line),
                });
            }
            Ok((raw, response))
        })
        .collect()
}

fn account(discovery: &ingest::Discovery, checked: &Checked, master: &Master) -> Report {
    let mut totals = Totals { institutions: master.len() as u64, ..Totals::default() };
    let mut inputs = Vec::new();
    for (file, tally) in discovery.files.iter().zip(&checked.tallies) {
        let quarantined: u64 = tally.by_reason.values().sum();
        let by_reason: BTreeMap<String, u64> =
            tally.by_reason.iter().map(|(r, n)| (r.code().to_string(), *n)).collect();
        for (r, n) in &by_reason {
            *totals.quarantined_by_reason.entry(r.clone()).or_default() += n;
        }
        totals.records_read += tally.records_read;
        totals.quarantined += quarantined;
        totals.accepted += tally.records_read - quarantined;
        inputs.push(InputReport {
            path: file.rel_path.clone(),
            bytes: tally.bytes,
            sha256: tally.sha256.clone(),
            records_read: tally.records_read,
            accepted: tally.records_read - quarantined,
            quarantined,
            quarantined_by_reason: by_reason,
        });
    }
    let superseded = totals.quarantined_by_reason.get("superseded").copied().unwrap_or(0);
    totals.quarantine_ratio = if totals.records_read == 0 {
        0.0
    } else {
        (totals.quarantined - superseded) as f64 / totals.records_read as f64
    };
    debug_assert_eq!(totals.accepted, checked.accepted);
    Report {
        inputs,
        ignored: discovery.ignored.clone(),
        totals,
        quarantine_file: None,
        tables: BTreeMap::new(),
        warnings: Vec::new(),
        seconds: 0.0,
        phases: Vec::new(),
        bytes_read: 0,
        recovered: commit::Recovered::default(),
    }
}

fn summarise_estimates(report: &mut Report, institutions: &[InstitutionEstimate], domains: &Domains, master: &Master) {
    report.totals.institutions_eligible = institutions.iter().filter(|i| i.eligible).count() as u64;
    report.totals.national_index = domains.national.inst_mean.as_ref().map(|m| m.overall);
    report.totals.national_index_weighted = domains.national.indices.as_ref().map(|i| i.overall);
    let exceeded: Vec<&str> = institutions
        .iter()
        .filter(|i| i.headcount_exceeded)
        .map(|i| master.institutions[i.institution].code.as_str())
        .collect();
    if !exceeded.is_empty() {
        report.warnings.push(format!(
            "{} institution(s) have more respondents than headcount (check the master): {}",
            exceeded.len(),
            exceeded.iter().take(20).copied().collect::<Vec<_>>().join(", ")
        ));
    }
    if report.totals.institutions_eligible == 0 {
        report
            .warnings
            .push("no institution met the minimum number of respondents: domain tables hold no estimate".into());
    }
    if !report.ignored.is_empty() {
        report.warnings.push(format!("{} file(s) under the input directory were ignored", report.ignored.len()));
    }
}

/// Everything a publish writes, gathered once.
struct Publication<'a> {
    cfg: &'a Config,
    opts: &'a RunOptions,
    master: &'a Master,
    regions: &'a Regions,
    institutions: &'a [InstitutionEstimate],
    domains: &'a Domains,
    quarantine_records: &'a [QuarantineRecord],
    started: &'a str,
}

fn publish(publication: &Publication, report: &mut Report) -> Result<()> {
    let meta = file_meta(publication.cfg, publication.opts);
    let mut txn = Transaction::begin(&publication.cfg.paths.warehouse, &publication.opts.run_id)?;
    // Until the swap starts, a failure removes everything this run staged (a full disk must not
    // stay full); once it starts, only recovery may touch the staging.
    if let Err(e) = stage_everything(publication, report, &meta, &mut txn) {
        txn.abort();
        return Err(e);
    }
    testhooks::point("before-commit");
    txn.commit()
}

fn stage_everything(
    publication: &Publication,
    report: &mut Report,
    meta: &FileMeta,
    txn: &mut Transaction,
) -> Result<()> {
    let Publication { cfg, opts, master, regions, institutions, domains, quarantine_records, started } = *publication;
    let warehouse = &cfg.paths.warehouse;
    let tables = Tables::build(master, regions, institutions, domains);

    // The quarantine is swapped in the same transaction as the tables; its file (the largest,
    // with every rejected record's raw text) is written while the tables are.
    let q_staging = quarantine_staging(&cfg.paths.quarantine, &opts.run_id);
    txn.stage_extra_dir(q_staging.clone())?;
    let q_year = layout::quarantine_dir(&q_staging, cfg.year);
    let (staged_tables, quarantine_rows) = std::thread::scope(|scope| {
        let quarantine = scope.spawn(|| -> Result<u64> {
            let rows = quarantine::write(&q_year, quarantine_records, meta)?;
            write_marker(&q_year, &opts.run_id, quarantine::FILE_MODE)?;
            Ok(rows)
        });
        let staged = stage_tables(txn, warehouse, cfg.year, &tables, meta);
        let rows =
            quarantine.join().unwrap_or_else(|_| Err(Error::Usage("internal: quarantine writer panicked".into())));
        (staged, rows)
    });
    report.tables = staged_tables?;
    let rows = quarantine_rows?;
    txn.stage(Entry {
        name: "quarantine".into(),
        live: layout::quarantine_dir(&cfg.paths.quarantine, cfg.year),
        staged: q_year,
    })?;
    let q_file = format!("year={}/{}", cfg.year, layout::PART_FILE);
    report.quarantine_file = Some(q_file.clone());

    let manifest = Manifest {
        run_id: opts.run_id.clone(),
        version: VERSION.to_string(),
        year: cfg.year,
        instrument: cfg.survey.instrument.name().to_string(),
        started: started.to_string(),
        finished: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        config_path: cfg.source.display().to_string(),
        config_sha256: cfg.sha256.clone(),
        master_path: cfg.paths.master.display().to_string(),
        input_dir: cfg.paths.input.display().to_string(),
        inputs: report.inputs.clone(),
        ignored_files: report.ignored.clone(),
        totals: report.totals.clone(),
        tables: report.tables.clone(),
        quarantine: TableReport { files: vec![q_file], rows },
        warnings: report.warnings.clone(),
    };
    let bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::Usage(format!("internal: serialising the manifest: {e}")))?;
    let staged_manifest = txn.dir().join("manifest.json");
    commit::write_atomically(&staged_manifest, &bytes, 0o644)?;
    txn.stage_manifest(staged_manifest, layout::manifest_path(warehouse, cfg.year))
}

fn ensure_inputs_unchanged(files: &[InputFile]) -> Result<()> {
    for file in files {
        let meta = std::fs::metadata(&file.path)
            .map_err(|e| Error::InputChanged { path: file.path.clone(), detail: format!("no longer readable: {e}") })?;
        if meta.len() != file.bytes || meta.modified().ok() != file.modified {
            return Err(Error::InputChanged {
                path: file.path.clone(),
                detail: "size or modification time changed".into(),
            });
        }
    }
    Ok(())
}

fn print_gate_report(report: &Report, quarantine: &[QuarantineRecord]) {
    let mut reasons: Vec<(&String, &u64)> = report.totals.quarantined_by_reason.iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    eprintln!(
        "berakhlak: quality gate failed: {:.2}% of {} records rejected (superseded not counted); top reasons:",
        100.0 * report.totals.quarantine_ratio,
        report.totals.records_read
    );
    for (reason, count) in reasons.iter().filter(|(r, _)| r.as_str() != "superseded").take(5) {
        eprintln!("  {count:>9}  {reason}");
        for q in quarantine.iter().filter(|q| q.reason.code() == reason.as_str()).take(3) {
            let mut raw: String = q.raw.chars().take(160).collect();
            if raw.len() < q.raw.len() {
                raw.push('…');
            }
            eprintln!("             {}:{}: {} | {}", q.source_file, q.line_number, q.detail, raw);
        }
    }
}

/// The closing summary printed after a run.
pub fn print_summary(report: &Report, published: bool) {
    let t = &report.totals;
    println!("records read     {:>12}", t.records_read);
    println!("accepted         {:>12}", t.accepted);
    println!(
        "quarantined      {:>12}  ({:.2}% counted by the quality gate)",
        t.quarantined,
        100.0 * t.quarantine_ratio
    );
    for (reason, n) in &t.quarantined_by_reason {
        println!("  {reason:<22} {n:>9}");
    }
    println!("institutions     {:>12}  ({} eligible)", t.institutions, t.institutions_eligible);
    match t.national_index {
        Some(x) => println!(
            "national index   {x:>12.2}  (mean of eligible institutions; weighted {})",
            t.national_index_weighted.map(|w| format!("{w:.2}")).unwrap_or_else(|| "n/a".into())
        ),
        None => println!("national index            n/a"),
    }
    let secs = report.seconds.max(1e-9);
    println!(
        "time             {:>11.2}s  ({:.0} records/s, {:.1} MB/s)",
        report.seconds,
        t.records_read as f64 / secs,
        report.bytes_read as f64 / 1e6 / secs
    );
    if !report.phases.is_empty() {
        let parts: Vec<String> = report.phases.iter().map(|(name, s)| format!("{name} {s:.2}s")).collect();
        println!("  phases         {}", parts.join(", "));
    }
    for w in &report.warnings {
        println!("warning: {w}");
    }
    if published {
        println!(
            "published        {} tables, {} rows",
            report.tables.len(),
            report.tables.values().map(|t| t.rows).sum::<u64>()
        );
    }
}
