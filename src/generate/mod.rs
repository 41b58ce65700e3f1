//! `generate`: a reproducible synthetic national dataset (SPEC 7) — the year's institution
//! master and raw survey dumps whose national figures land near the published ones (Adaptif
//! lowest, Akuntabel highest), with bad records of every SPEC 3 reason code, resubmissions and
//! duplicate response ids mixed in.
//!
//! Layout of the output directory: `OUT/institutions.csv` (SPEC 2.1), `OUT/raw/part-NNNN.csv`
//! / `.jsonl` (optionally `.gz`), and `OUT/raw/README.txt` (ignored by runs). Stale
//! `part-NNNN.*` files of an earlier generation in `OUT/raw` are removed first.
//!
//! Same options → byte-identical output: every random draw comes from ChaCha8 streams seeded
//! from the seed (stable traits: headcounts, institution effects, participation) and the year
//! (drift, records, file quirks); nothing depends on hash-map order or the clock.
//!
//! Records are streamed: the generator holds one record, a small queue of pending
//! resubmissions (released at a random later position, possibly in a later file) and a ring of
//! recent response ids for duplicates; memory does not grow with `--respondents`.
//!
//! What a correct pipeline run with the default configuration must find is returned in
//! [`GenerateSummary`]: accepted respondents, rejected records by reason, superseded and
//! duplicate records, and the expected national figures.

mod institutions;
mod model;
mod records;
mod writer;

#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rand::Rng;

use crate::catalogue::{VALUE_CODES, VALUE_COUNT};
use crate::error::{Error, Result};
use crate::reference::Regions;
use institutions::{min_required, GenInstitution};
use records::{BadKind, Generator, Rec};
use writer::{DumpWriter, FileFormat};

pub use model::PUBLISHED_2022;

/// Dump format of `generate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DumpFormat {
    /// CSV files.
    Csv,
    /// JSON Lines files.
    Jsonl,
    /// Files alternate CSV / JSON Lines.
    Mixed,
}

/// Survey instrument of the generated answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GenInstrument {
    /// Picks from the 21 behaviours and 24 distractors (`current_culture`).
    Votes,
    /// A 1..5 answer for each of the 21 behaviours.
    Likert,
}

/// Options of the `generate` command.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateOptions {
    /// Survey year written into the records
    #[arg(long)]
    pub year: i32,
    /// Output directory: writes OUT/institutions.csv and OUT/raw/<dumps>
    #[arg(long)]
    pub out: PathBuf,
    /// Number of respondents (distinct persons) before resubmissions and bad records
    #[arg(long, default_value_t = 20_000)]
    pub respondents: u64,
    /// Random seed; the same options give byte-identical files
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Share of bad records (every reason code of SPEC 3 represented when the count allows)
    #[arg(long, default_value_t = 0.005)]
    pub bad_share: f64,
    /// Share of respondents who resubmit (superseded records), plus a few duplicate response_ids
    #[arg(long, default_value_t = 0.01)]
    pub duplicate_share: f64,
    /// Number of dump files
    #[arg(long, default_value_t = 4)]
    pub files: usize,
    /// csv, jsonl, or mixed (files alternate csv / jsonl)
    #[arg(long, value_enum, default_value_t = DumpFormat::Csv)]
    pub format: DumpFormat,
    /// gzip every dump
    #[arg(long)]
    pub gzip: bool,
    /// CSV delimiter: "," ";" or "tab"; with --vary-delimiters files rotate , ; TAB
    #[arg(long, default_value = ",")]
    pub delimiter: String,
    /// Rotate the CSV delimiter over the files: , ; TAB
    #[arg(long)]
    pub vary_delimiters: bool,
    /// votes or likert
    #[arg(long, value_enum, default_value_t = GenInstrument::Votes)]
    pub instrument: GenInstrument,
    /// Regions reference
    #[arg(long, default_value = "config/reference/regions.csv")]
    pub regions: PathBuf,
    /// Scale headcounts so that this many institutions meet the Slovin minimum (roughly);
    /// 0 = realistic national headcounts, eligibility as response rates fall
    #[arg(long, default_value_t = 442)]
    pub eligible_target: usize,
}

/// Figures of the seven values and the overall index (0–100).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Figures {
    /// bp, ak, ko, ha, lo, ad, kl.
    pub values: [f64; VALUE_COUNT],
    /// Mean of the seven.
    pub overall: f64,
}

/// What a correct `aggregate` run with the default configuration should find (e = 0.05,
/// min_floor 30, suppression_min_n 10, max_picks 10, distractors X01–X24,
/// min_duration_seconds 60, straightliners rejected).
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// Institutions with n ≥ min_required (SPEC 5.1).
    pub eligible_institutions: usize,
    /// Institutions with 0 < n < 10 (suppressed rows).
    pub suppressed_institutions: usize,
    /// Institutions without any respondent.
    pub empty_institutions: usize,
    /// Institutions with n > N.
    pub headcount_exceeded: usize,
    /// Unweighted mean over accepted respondents (all institutions).
    pub respondent_mean: Figures,
    /// The published way: mean of the indices of eligible, unsuppressed institutions.
    pub inst_mean: Figures,
    /// National domain estimate: design-weighted over eligible institutions (SPEC 5.2).
    pub weighted: Figures,
}

/// What `generate` wrote.
#[derive(Debug, Clone)]
pub struct GenerateSummary {
    /// The master CSV.
    pub master: PathBuf,
    /// The dumps, in the order a run reads them.
    pub dumps: Vec<PathBuf>,
    /// Files written that a run ignores (the README).
    pub ignored: Vec<PathBuf>,
    /// Records in all dumps.
    pub records_written: u64,
    /// Distinct respondents: the records a correct run accepts.
    pub respondents: u64,
    /// Bad records (rejected before deduplication).
    pub bad_records: u64,
    /// Earlier submissions of resubmitting respondents (`superseded`).
    pub resubmissions: u64,
    /// Records repeating a kept record's response id (`duplicate_response_id`).
    pub duplicate_response_ids: u64,
    /// Bad records by SPEC 3 reason code.
    pub bad_by_kind: BTreeMap<&'static str, u64>,
    /// Bad records by the concrete defect written (e.g. `csv_broken_quote`, `json_empty_array`).
    pub bad_by_defect: BTreeMap<&'static str, u64>,
    /// Institutions in the master.
    pub institutions: usize,
    /// Sum of the master's headcounts.
    pub headcount_total: i64,
    /// Factor applied to realistic national headcounts.
    pub headcount_scale: f64,
    /// Expected results of a run.
    pub expected: Expected,
}

impl GenerateSummary {
    /// A few lines for the operator.
    pub fn report(&self) -> String {
        format!("master: {}\n{}", self.master.display(), self.report_body())
    }

    /// The report without paths (so that it is the same wherever the data is written).
    fn report_body(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} institutions, headcount total {} (scale {:.4} of realistic national headcounts)",
            self.institutions, self.headcount_total, self.headcount_scale
        );
        let _ = writeln!(s, "dumps: {} files, {} records", self.dumps.len(), self.records_written);
        let _ = writeln!(
            s,
            "respondents {}, resubmissions (superseded) {}, duplicate response ids {}, bad records {}",
            self.respondents, self.resubmissions, self.duplicate_response_ids, self.bad_records
        );
        let kinds: Vec<String> = self.bad_by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(s, "bad by reason: {}", kinds.join(", "));
        let e = &self.expected;
        let _ = writeln!(
            s,
            "institutions: {} eligible, {} suppressed, {} without respondents, {} over headcount",
            e.eligible_institutions, e.suppressed_institutions, e.empty_institutions, e.headcount_exceeded
        );
        let fmt = |f: &Figures| {
            let vals: Vec<String> =
                VALUE_CODES.iter().zip(f.values.iter()).map(|(c, v)| format!("{c} {v:.1}")).collect();
            format!("{} | overall {:.1}", vals.join(", "), f.overall)
        };
        let _ = writeln!(s, "expected national (mean of eligible institutions): {}", fmt(&e.inst_mean));
        let _ = writeln!(s, "expected national (weighted estimate):            {}", fmt(&e.weighted));
        s
    }
}

/// Checked options.
struct Settings {
    delimiter: u8,
    likert: bool,
    formats: Vec<FileFormat>,
}

fn check(opts: &GenerateOptions) -> Result<Settings> {
    let usage = |m: String| Err(Error::Usage(m));
    if !(1900..=9999).contains(&opts.year) {
        return usage(format!("--year {} is not a plausible survey year", opts.year));
    }
    if opts.respondents == 0 {
        return usage("--respondents must be at least 1".into());
    }
    if !(0.0..0.9).contains(&opts.bad_share) {
        return usage(format!("--bad-share must be in [0, 0.9), got {}", opts.bad_share));
    }
    if !(0.0..=0.5).contains(&opts.duplicate_share) {
        return usage(format!("--duplicate-share must be in [0, 0.5], got {}", opts.duplicate_share));
    }
    if opts.files == 0 || opts.files > 9999 {
        return usage(format!("--files must be between 1 and 9999, got {}", opts.files));
    }
    let delimiter = match opts.delimiter.as_str() {
        "," => b',',
        ";" => b';',
        "tab" | "TAB" | "\t" | "\\t" => b'\t',
        other => return usage(format!("--delimiter must be \",\", \";\" or \"tab\", got {other:?}")),
    };
    let formats = (0..opts.files)
        .map(|k| match opts.format {
            DumpFormat::Csv => FileFormat::Csv,
            DumpFormat::Jsonl => FileFormat::Jsonl,
            DumpFormat::Mixed if k % 2 == 0 => FileFormat::Csv,
            DumpFormat::Mixed => FileFormat::Jsonl,
        })
        .collect();
    Ok(Settings { delimiter, likert: opts.instrument == GenInstrument::Likert, formats })
}

/// A record waiting for its place in the output.
struct Pending {
    release: u64,
    order: u64,
    rec: Rec,
    is_final: bool,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.release, self.order) == (other.release, other.order)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.release, self.order).cmp(&(other.release, other.order))
    }
}

/// Fenwick tree of remaining respondents per institution, for sampling without replacement.
struct Remaining {
    tree: Vec<u64>,
    total: u64,
}

impl Remaining {
    fn new(counts: &[u64]) -> Remaining {
        let n = counts.len();
        let mut tree = vec![0u64; n + 1];
        for (i, &c) in counts.iter().enumerate() {
            let mut j = i + 1;
            while j <= n {
                tree[j] += c;
                j += j & j.wrapping_neg();
            }
        }
        Remaining { tree, total: counts.iter().sum() }
    }

    /// Takes one respondent: the institution holding the `u`-th remaining one.
    fn take(&mut self, mut u: u64) -> usize {
        let n = self.tree.len() - 1;
        let mut pos = 0;
        let mut step = n.next_power_of_two();
        while step > 0 {
            let next = pos + step;
            if next <= n && self.tree[next] <= u {
                u -= self.tree[next];
                pos = next;
            }
            step >>= 1;
        }
        let mut j = pos + 1;
        while j <= n {
            self.tree[j] -= 1;
            j += j & j.wrapping_neg();
        }
        self.total -= 1;
        pos
    }
}

/// Per-institution tallies of the accepted (final) records.
struct Tally {
    n: Vec<u64>,
    sums: Vec<[f64; VALUE_COUNT]>,
}

/// Writes the dataset described by `opts`.
pub fn run(opts: &GenerateOptions) -> Result<GenerateSummary> {
    let settings = check(opts)?;
    let regions = Regions::load(&opts.regions)?;
    let mut insts = institutions::build(&regions, opts.seed, opts.year)?;
    let plan = institutions::plan(&mut insts, opts.seed, opts.respondents, opts.eligible_target);

    let raw = opts.out.join("raw");
    std::fs::create_dir_all(&raw).map_err(|e| Error::io(&raw, "creating", e))?;
    remove_stale_dumps(&raw)?;
    let master = opts.out.join("institutions.csv");
    institutions::write_master(&master, &insts, &regions)?;

    // Record counts.
    let r = opts.respondents;
    let resubmitters = ((opts.duplicate_share * r as f64).round() as u64).min(r);
    let triples = (resubmitters as f64 * 0.1).round() as u64;
    let superseded = resubmitters + triples;
    let dupes = if opts.duplicate_share > 0.0 && r >= 20 {
        ((opts.duplicate_share * r as f64 * 0.1).round() as u64).max(1)
    } else {
        0
    };
    let good = r + superseded + dupes;
    let bad = (opts.bad_share * good as f64 / (1.0 - opts.bad_share)).round() as u64;
    let total = good + bad;

    let layouts = writer::layouts(
        &settings.formats,
        opts.gzip,
        settings.delimiter,
        opts.vary_delimiters,
        settings.likert,
        opts.seed,
        opts.year,
    );
    let mut gen = Generator::new(opts.seed, opts.year, &insts, &regions, settings.likert);
    let planned: Vec<u64> = insts.iter().map(|i| i.planned).collect();
    let mut remaining = Remaining::new(&planned);
    let mut tally = Tally { n: vec![0; insts.len()], sums: vec![[0.0; VALUE_COUNT]; insts.len()] };

    let window = (total / 2).clamp(1, 1_000_000);
    let mut pending: BinaryHeap<Reverse<Pending>> = BinaryHeap::new();
    let mut pending_order = 0u64;
    let mut recent_ids: Vec<String> = Vec::with_capacity(256);
    let mut recent_next = 0usize;

    let (mut persons_left, mut resub_left, mut triples_left) = (r, resubmitters, triples);
    let (mut bad_left, mut dupes_left) = (bad, dupes);
    let mut ghost = r; // person ids of bad and duplicate records come after the respondents'
    let mut bad_index = 0u64;
    let mut summary = GenerateSummary {
        master: master.clone(),
        dumps: Vec::with_capacity(opts.files),
        ignored: Vec::new(),
        records_written: 0,
        respondents: r,
        bad_records: 0,
        resubmissions: superseded,
        duplicate_response_ids: 0,
        bad_by_kind: BTreeMap::new(),
        bad_by_defect: BTreeMap::new(),
        institutions: insts.len(),
        headcount_total: insts.iter().map(|i| i.headcount).sum(),
        headcount_scale: plan.scale,
        expected: Expected::default(),
    };

    let mut rec = Rec::default();
    let mut file_index = 0usize;
    let mut current: Option<DumpWriter> = None;
    for slot in 0..total {
        // Open the file this slot belongs to.
        while current.is_none() || slot >= (total * file_index as u64) / opts.files as u64 {
            if let Some(w) = current.take() {
                summary.records_written += w.records;
                summary.dumps.push(w.finish()?);
            }
            current = Some(DumpWriter::create(&raw, file_index, layouts[file_index].clone(), opts.seed, opts.year)?);
            file_index += 1;
        }
        let Some(out) = current.as_mut() else { break };
        let jsonl = out.format() == FileFormat::Jsonl;

        let due = pending.peek().is_some_and(|p| p.0.release <= slot);
        let fresh = persons_left + bad_left + dupes_left;
        if due || fresh == 0 {
            if let Some(Reverse(p)) = pending.pop() {
                out.write(&p.rec)?;
                if p.is_final {
                    remember(&mut recent_ids, &mut recent_next, &p.rec.response_id);
                }
                continue;
            }
        }
        if fresh == 0 {
            break;
        }
        let u = gen.rng.random_range(0..fresh);
        let mut choice = if u < persons_left {
            0
        } else if u < persons_left + bad_left {
            1
        } else {
            2
        };
        if choice == 2 && recent_ids.is_empty() {
            // No kept response id to repeat yet: write another kind now.
            choice = if persons_left > 0 { 0 } else { 1 };
            if choice == 1 {
                dupes_left -= 1;
                bad_left += 1;
            }
        }
        match choice {
            0 => {
                if remaining.total != persons_left {
                    let problem = format!("{} respondents planned for {persons_left} left", remaining.total);
                    return Err(Error::io(&raw, "planning respondents", std::io::Error::other(problem)));
                }
                let inst = remaining.take(gen.rng.random_range(0..remaining.total));
                let person = r - persons_left;
                let resubmits = resub_left > 0 && gen.rng.random_range(0..persons_left) < resub_left;
                let extra = if resubmits {
                    let triple = gen.rng.random_range(0..resub_left) < triples_left;
                    resub_left -= 1;
                    if triple {
                        triples_left -= 1;
                        2usize
                    } else {
                        1
                    }
                } else {
                    0
                };
                persons_left -= 1;
                let x = gen.person(inst, person, resubmits, &mut rec);
                tally.n[inst] += 1;
                for (sum, xv) in tally.sums[inst].iter_mut().zip(x) {
                    *sum += xv;
                }
                if extra == 0 {
                    out.write(&rec)?;
                    remember(&mut recent_ids, &mut recent_next, &rec.response_id);
                    continue;
                }
                let mut versions = Vec::with_capacity(extra);
                for j in 0..extra {
                    let mut earlier = Rec::default();
                    gen.person(inst, person, false, &mut earlier);
                    let identical = j == 0 && gen.rng.random::<f64>() < 0.2;
                    gen.earlier_version(&mut rec, &mut earlier, identical, 120);
                    versions.push(earlier);
                }
                // One of the versions is written now, the others later (maybe in a later file).
                let now = gen.rng.random_range(0..=extra);
                let mut all: Vec<(Rec, bool)> = vec![(std::mem::take(&mut rec), true)];
                all.extend(versions.into_iter().map(|v| (v, false)));
                for (i, (version, is_final)) in all.into_iter().enumerate() {
                    if i == now {
                        out.write(&version)?;
                        if is_final {
                            remember(&mut recent_ids, &mut recent_next, &version.response_id);
                        }
                    } else {
                        pending_order += 1;
                        let release = slot + 1 + gen.rng.random_range(0..window);
                        pending.push(Reverse(Pending { release, order: pending_order, rec: version, is_final }));
                    }
                }
            }
            1 => {
                let kind = BadKind::choose(bad_index, settings.likert, &mut gen.rng);
                bad_index += 1;
                bad_left -= 1;
                gen.bad(kind, jsonl, ghost, &mut rec);
                ghost += 1;
                out.write(&rec)?;
                summary.bad_records += 1;
                *summary.bad_by_kind.entry(kind.reason()).or_insert(0) += 1;
                *summary.bad_by_defect.entry(kind.defect_name(jsonl)).or_insert(0) += 1;
            }
            _ => {
                dupes_left -= 1;
                let inst = gen.any_institution();
                gen.person(inst, ghost, false, &mut rec);
                ghost += 1;
                let pick = gen.rng.random_range(0..recent_ids.len());
                rec.response_id.clone_from(&recent_ids[pick]);
                out.write(&rec)?;
                summary.duplicate_response_ids += 1;
            }
        }
    }
    if let Some(w) = current.take() {
        summary.records_written += w.records;
        summary.dumps.push(w.finish()?);
    }
    // Files that received no record still exist (header only).
    while file_index < opts.files {
        let w = DumpWriter::create(&raw, file_index, layouts[file_index].clone(), opts.seed, opts.year)?;
        summary.records_written += w.records;
        summary.dumps.push(w.finish()?);
        file_index += 1;
    }
    debug_assert_eq!(summary.records_written, total);

    summary.expected = expected(&insts, &tally);
    let readme = raw.join("README.txt");
    write_readme(&readme, opts, &summary)?;
    summary.ignored.push(readme);
    Ok(summary)
}

fn remember(ring: &mut Vec<String>, next: &mut usize, id: &str) {
    const RING: usize = 256;
    if ring.len() < RING {
        ring.push(id.to_string());
    } else {
        ring[*next].clear();
        ring[*next].push_str(id);
        *next = (*next + 1) % RING;
    }
}

/// Removes `part-NNNN.{csv,jsonl}[.gz][.partial]` left by an earlier generation.
fn remove_stale_dumps(raw: &Path) -> Result<()> {
    let entries = std::fs::read_dir(raw).map_err(|e| Error::io(raw, "listing", e))?;
    let mut stale = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(raw, "listing", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_generated_dump(&name) {
            stale.push(entry.path());
        }
    }
    stale.sort();
    for path in stale {
        std::fs::remove_file(&path).map_err(|e| Error::io(&path, "removing a stale dump", e))?;
    }
    Ok(())
}

fn is_generated_dump(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("part-") else { return false };
    let rest = rest.strip_suffix(".partial").unwrap_or(rest);
    let rest = rest.strip_suffix(".gz").unwrap_or(rest);
    let Some((digits, ext)) = rest.split_once('.') else { return false };
    digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit()) && (ext == "csv" || ext == "jsonl")
}

fn expected(insts: &[GenInstitution], tally: &Tally) -> Expected {
    let mut e = Expected::default();
    let mut respondents = 0u64;
    let mut resp_sums = [0.0; VALUE_COUNT];
    let (mut inst_count, mut inst_sums) = (0usize, [0.0; VALUE_COUNT]);
    let (mut weight, mut weighted_sums) = (0.0, [0.0; VALUE_COUNT]);
    for (i, inst) in insts.iter().enumerate() {
        let n = tally.n[i];
        respondents += n;
        for (sum, s) in resp_sums.iter_mut().zip(tally.sums[i]) {
            *sum += s;
        }
        if n == 0 {
            e.empty_institutions += 1;
            continue;
        }
        if n < 10 {
            e.suppressed_institutions += 1;
        }
        if n as i64 > inst.headcount {
            e.headcount_exceeded += 1;
        }
        if (n as i64) < min_required(inst.headcount) {
            continue;
        }
        e.eligible_institutions += 1;
        let big_n = inst.headcount as f64;
        weight += big_n;
        for (v, s) in tally.sums[i].iter().enumerate() {
            let mean = s / n as f64;
            weighted_sums[v] += big_n * mean;
            if n >= 10 {
                inst_sums[v] += mean;
            }
        }
        if n >= 10 {
            inst_count += 1;
        }
    }
    let figures = |sums: &[f64; VALUE_COUNT], d: f64| {
        let mut f = Figures::default();
        if d > 0.0 {
            for (value, sum) in f.values.iter_mut().zip(sums) {
                *value = 100.0 * sum / d;
            }
            f.overall = f.values.iter().sum::<f64>() / VALUE_COUNT as f64;
        }
        f
    };
    e.respondent_mean = figures(&resp_sums, respondents as f64);
    e.inst_mean = figures(&inst_sums, inst_count as f64);
    e.weighted = figures(&weighted_sums, weight);
    e
}

fn write_readme(path: &Path, opts: &GenerateOptions, summary: &GenerateSummary) -> Result<()> {
    let mut s = String::new();
    let _ = writeln!(s, "Synthetic BerAKHLAK survey dumps (berakhlak generate). Not real data.");
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "year {} seed {} respondents {} bad_share {} duplicate_share {} files {} format {:?} gzip {} instrument {:?} eligible_target {}",
        opts.year,
        opts.seed,
        opts.respondents,
        opts.bad_share,
        opts.duplicate_share,
        opts.files,
        opts.format,
        opts.gzip,
        opts.instrument,
        opts.eligible_target
    );
    let _ = writeln!(s);
    s.push_str(&summary.report_body());
    let _ = writeln!(s);
    let _ = writeln!(s, "This file is not a dump: runs list it in the manifest as ignored.");
    std::fs::write(path, s).map_err(|e| Error::io(path, "writing", e))
}
