//! Command-line definitions (clap). No I/O here: `main` turns these into settings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// berakhlak: nightly pipeline from raw BerAKHLAK survey dumps to a partitioned Parquet
/// warehouse of institution, district, provincial and national indices.
///
/// Exit codes: 0 published (or done); 1 runtime failure (I/O, corrupt input, failed write);
/// 2 bad usage, config, reference data, master or header; 3 quality gate refused to publish;
/// 4 warehouse locked by another run.
#[derive(Debug, Parser)]
#[command(name = "berakhlak", version, about, long_about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read, validate, deduplicate, score, estimate and publish one survey year.
    ///
    /// Publishing replaces the year's partition of every table as a whole (staging, fsync,
    /// atomic swap); other years are never touched. Interrupted publishes are recovered first.
    Aggregate(RunArgs),
    /// Do the same reading and checking as `aggregate` and print the report; publish nothing.
    Validate(RunArgs),
    /// Write a reproducible synthetic national dataset (master and dumps).
    Generate(crate::generate::GenerateOptions),
    /// Finish or roll back an interrupted publish (also done at the start of every run).
    Recover(RecoverArgs),
}

/// Options of `aggregate` and `validate`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Survey year to process.
    #[arg(long)]
    pub year: i32,
    /// Configuration file (TOML).
    #[arg(long, default_value = crate::config::DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// Directory of raw dumps (overrides paths.input).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Institution master CSV (overrides paths.master).
    #[arg(long)]
    pub master: Option<PathBuf>,
    /// Regions reference CSV (overrides paths.regions).
    #[arg(long)]
    pub regions: Option<PathBuf>,
    /// Warehouse root (overrides paths.warehouse).
    #[arg(long)]
    pub warehouse: Option<PathBuf>,
    /// Quarantine root (overrides paths.quarantine).
    #[arg(long)]
    pub quarantine: Option<PathBuf>,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress and no summary; errors only.
    #[arg(long)]
    pub quiet: bool,
}

/// Options of `recover`.
#[derive(Debug, Clone, Args)]
pub struct RecoverArgs {
    /// Configuration file (TOML), for paths.warehouse.
    #[arg(long, default_value = crate::config::DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// Warehouse root (overrides paths.warehouse).
    #[arg(long)]
    pub warehouse: Option<PathBuf>,
    /// Year substituted for {year} in configured paths, if they use it.
    #[arg(long, default_value_t = 2000)]
    pub year: i32,
}
