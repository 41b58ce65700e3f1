//! The one error type of the library and the exit code each error maps to (SPEC 7).
//!
//! Every variant carries where the problem is (file, line, key or column). Bad *records* are
//! not errors: they are values that end in the quarantine. Errors are for what stops a run.

use std::path::PathBuf;

/// Result alias for the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Process exit codes, the contract with schedulers and on-call engineers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Published (or, for `validate`/`generate`/`recover`, done).
    Ok = 0,
    /// Runtime failure: I/O, a corrupt input stream, a failed write.
    Runtime = 1,
    /// Bad usage, configuration, reference data, master or header.
    Usage = 2,
    /// The quality gate refused to publish.
    QualityGate = 3,
    /// Another run holds the warehouse lock.
    Locked = 4,
}

/// Everything that can stop a run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Command-line usage.
    #[error("{0}")]
    Usage(String),

    /// The configuration file cannot be read.
    #[error("cannot read config {}: {source}", path.display())]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },

    /// A configuration key is unknown, mistyped or out of range.
    #[error("config {}: key `{key}`: {problem}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// The dotted key.
        key: String,
        /// What is wrong and what is expected.
        problem: String,
    },

    /// Regions or institution master are unusable.
    #[error("{}:{line}: {problem}", path.display())]
    Reference {
        /// The file.
        path: PathBuf,
        /// 1-based line, 0 when it concerns the whole file.
        line: u64,
        /// What is wrong.
        problem: String,
    },

    /// An input file's header lacks a required column.
    #[error("{}: header has no required column `{column}` (header: {header})", path.display())]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The missing column.
        column: String,
        /// The header as read, for the operator.
        header: String,
    },

    /// The input directory holds no survey dump.
    #[error("no input file (*.csv, *.csv.gz, *.jsonl, *.jsonl.gz, *.ndjson, *.ndjson.gz) under {}", path.display())]
    NoInput {
        /// The input directory.
        path: PathBuf,
    },

    /// Reading or writing a file failed.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done, e.g. "reading" or "renaming into place".
        action: String,
        /// The cause.
        source: std::io::Error,
    },

    /// An input file changed while the run read it.
    #[error("{}: input changed during the run ({detail}); nothing was published, re-run when the export is complete", path.display())]
    InputChanged {
        /// The file.
        path: PathBuf,
        /// What differs.
        detail: String,
    },

    /// Writing Parquet failed.
    #[error("{}: writing parquet: {message}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The cause.
        message: String,
    },

    /// The previous year's published tables cannot be read.
    #[error("{}: reading the previous year's table: {message}", path.display())]
    PreviousYear {
        /// The file.
        path: PathBuf,
        /// The cause.
        message: String,
    },

    /// The quality gate refused to publish.
    #[error("quality gate: {rejected} of {read} records rejected ({ratio:.4} > max_quarantine_ratio {max}); nothing published, diagnosis in {}", diagnosis.display())]
    QualityGate {
        /// Records rejected other than superseded.
        rejected: u64,
        /// Records read.
        read: u64,
        /// rejected / read.
        ratio: f64,
        /// The configured limit.
        max: f64,
        /// Where the run's quarantine was written.
        diagnosis: PathBuf,
    },

    /// Another process holds the warehouse lock.
    #[error("warehouse {} is locked by another run ({holder}); refusing to start", path.display())]
    Locked {
        /// The warehouse.
        path: PathBuf,
        /// Who holds it: pid and start time as recorded by the holder.
        holder: String,
    },

    /// An interrupted publish could not be completed or rolled back.
    #[error("recovery of {}: {problem}", path.display())]
    Recovery {
        /// The warehouse.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

impl Error {
    /// The exit code this error maps to.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_)
            | Error::ConfigRead { .. }
            | Error::Config { .. }
            | Error::Reference { .. }
            | Error::MissingColumn { .. }
            | Error::NoInput { .. } => ExitCode::Usage,
            Error::QualityGate { .. } => ExitCode::QualityGate,
            Error::Locked { .. } => ExitCode::Locked,
            Error::Io { .. }
            | Error::InputChanged { .. }
            | Error::Parquet { .. }
            | Error::PreviousYear { .. }
            | Error::Recovery { .. } => ExitCode::Runtime,
        }
    }

    /// Shorthand for an I/O error with its path and action.
    pub fn io(path: impl Into<PathBuf>, action: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), action: action.into(), source }
    }
}
