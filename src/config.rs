//! The TOML configuration (SPEC 2.3): schema, defaults, and validation that names the key.
//!
//! The raw file is deserialised into [`ConfigFile`] (`deny_unknown_fields`, so a typo is an
//! error, never a silently ignored setting); [`Config::load`] then checks ranges and resolves
//! paths for one run. Every default the spec names lives in a `Default` impl here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::FixedOffset;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::catalogue::BEHAVIOUR_CODES;
use crate::error::{Error, Result};

/// Most distractor codes a catalogue may have (picks are tracked in a 256-bit set).
pub const MAX_DISTRACTORS: usize = 256 - 21;

/// Path of the configuration used when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "config/berakhlak.toml";

/// The file as written by operators.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ConfigFile {
    /// Where things are read and written.
    pub paths: PathsSection,
    /// Survey instrument and validation rules.
    pub survey: SurveySection,
    /// Estimation parameters.
    pub estimation: EstimationSection,
    /// Publishing rules.
    pub publish: PublishSection,
}

/// `[paths]`; `{year}` is replaced by the run's year.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathsSection {
    /// Regions reference CSV.
    pub regions: String,
    /// Institution master CSV of the year.
    pub master: String,
    /// Directory of raw response dumps.
    pub input: String,
    /// Warehouse root.
    pub warehouse: String,
    /// Quarantine root.
    pub quarantine: String,
}

impl Default for PathsSection {
    fn default() -> Self {
        PathsSection {
            regions: "config/reference/regions.csv".into(),
            master: "data-samples/{year}/institutions.csv".into(),
            input: "data-samples/{year}/raw".into(),
            warehouse: "warehouse".into(),
            quarantine: "quarantine".into(),
        }
    }
}

/// The survey instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Instrument {
    /// Pick the behaviours seen in the unit's current culture (national survey 2022–2024).
    Votes,
    /// A 1..5 agreement scale per behaviour (self-run surveys from 2025).
    Likert,
}

impl Instrument {
    /// Name as written in the config.
    pub fn name(self) -> &'static str {
        match self {
            Instrument::Votes => "votes",
            Instrument::Likert => "likert",
        }
    }
}

/// `[survey]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SurveySection {
    /// Instrument used unless `instrument_by_year` names the run's year.
    pub instrument: Instrument,
    /// Per-year override, keyed by the year as a string.
    pub instrument_by_year: BTreeMap<String, Instrument>,
    /// Maximum number of picks in `current_culture`.
    pub max_picks: u32,
    /// Codes of the votes catalogue that belong to no value.
    pub distractors: Vec<String>,
    /// Lowest likert answer.
    pub likert_min: i64,
    /// Highest likert answer.
    pub likert_max: i64,
    /// Offset of timestamps written without one, `+07:00` (WIB).
    pub default_utc_offset: String,
    /// Responses faster than this are speeders.
    pub min_duration_seconds: i64,
    /// Reject likert responses whose 21 answers are all equal.
    pub reject_straightliners: bool,
}

impl Default for SurveySection {
    fn default() -> Self {
        SurveySection {
            instrument: Instrument::Votes,
            instrument_by_year: BTreeMap::new(),
            max_picks: 10,
            distractors: (1..=24).map(|i| format!("X{i:02}")).collect(),
            likert_min: 1,
            likert_max: 5,
            default_utc_offset: "+07:00".into(),
            min_duration_seconds: 60,
            reject_straightliners: true,
        }
    }
}

/// `[estimation]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EstimationSection {
    /// Slovin margin of error e.
    pub margin_of_error: f64,
    /// Minimum required respondents, whatever Slovin says (capped at the headcount).
    pub min_floor: i64,
    /// Rows with fewer respondents are suppressed.
    pub suppression_min_n: i64,
}

impl Default for EstimationSection {
    fn default() -> Self {
        EstimationSection { margin_of_error: 0.05, min_floor: 30, suppression_min_n: 10 }
    }
}

/// `[publish]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublishSection {
    /// Quality gate: largest share of non-superseded rejections a run may publish.
    pub max_quarantine_ratio: f64,
    /// Parquet compression codec.
    pub compression: Compression,
}

impl Default for PublishSection {
    fn default() -> Self {
        PublishSection { max_quarantine_ratio: 0.10, compression: Compression::Zstd }
    }
}

/// Parquet compression codecs offered to operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// zstd (the default: small files, fast reads).
    Zstd,
    /// snappy.
    Snappy,
    /// No compression.
    None,
}

/// Path overrides from the command line; flags win over `[paths]`.
#[derive(Debug, Clone, Default)]
pub struct PathOverrides {
    /// `--regions`.
    pub regions: Option<PathBuf>,
    /// `--master`.
    pub master: Option<PathBuf>,
    /// `--input`.
    pub input: Option<PathBuf>,
    /// `--warehouse`.
    pub warehouse: Option<PathBuf>,
    /// `--quarantine`.
    pub quarantine: Option<PathBuf>,
}

/// Resolved paths for one run.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Regions reference CSV.
    pub regions: PathBuf,
    /// Institution master of the year.
    pub master: PathBuf,
    /// Input directory of dumps.
    pub input: PathBuf,
    /// Warehouse root.
    pub warehouse: PathBuf,
    /// Quarantine root.
    pub quarantine: PathBuf,
}

/// Validated settings of one run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the configuration came from.
    pub source: PathBuf,
    /// sha256 of the configuration file's bytes, hex.
    pub sha256: String,
    /// The run's year.
    pub year: i32,
    /// Resolved paths.
    pub paths: Paths,
    /// Validation and scoring rules.
    pub survey: SurveyRules,
    /// Estimation parameters.
    pub estimation: EstimationSection,
    /// Publishing rules.
    pub publish: PublishSection,
}

/// Survey rules with the year's instrument resolved and the offset parsed.
#[derive(Debug, Clone)]
pub struct SurveyRules {
    /// The instrument of the run's year.
    pub instrument: Instrument,
    /// Maximum number of picks.
    pub max_picks: usize,
    /// Distractor codes (upper-case).
    pub distractors: Vec<String>,
    /// Lowest likert answer.
    pub likert_min: i64,
    /// Highest likert answer.
    pub likert_max: i64,
    /// Offset for timestamps without one.
    pub default_utc_offset: FixedOffset,
    /// Speeder threshold.
    pub min_duration_seconds: i64,
    /// Reject likert straightliners.
    pub reject_straightliners: bool,
}

impl Config {
    /// Reads, parses and validates the configuration for `year`.
    pub fn load(path: &Path, year: i32, overrides: &PathOverrides) -> Result<Config> {
        let bytes = std::fs::read(path).map_err(|source| Error::ConfigRead { path: path.to_path_buf(), source })?;
        let text = std::str::from_utf8(&bytes).map_err(|_| Error::Config {
            path: path.to_path_buf(),
            key: "(file)".into(),
            problem: "the file is not valid UTF-8".into(),
        })?;
        let file: ConfigFile = toml::from_str(text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            key: toml_error_key(&e),
            problem: e.message().to_string(),
        })?;
        let sha256 = hex(&Sha256::digest(&bytes));
        Config::from_file(file, path, sha256, year, overrides)
    }

    /// Validates an already parsed file (used by `load` and by tests).
    pub fn from_file(
        file: ConfigFile,
        path: &Path,
        sha256: String,
        year: i32,
        overrides: &PathOverrides,
    ) -> Result<Config> {
        let bad =
            |key: &str, problem: String| Error::Config { path: path.to_path_buf(), key: key.to_string(), problem };
        if !(1900..=9999).contains(&year) {
            return Err(Error::Usage(format!("--year {year} is not a plausible survey year")));
        }

        let s = &file.survey;
        for key in s.instrument_by_year.keys() {
            if key.parse::<i32>().is_err() {
                return Err(bad(
                    &format!("survey.instrument_by_year.{key}"),
                    "keys must be years, e.g. \"2025\"".into(),
                ));
            }
        }
        let instrument = s.instrument_by_year.get(&year.to_string()).copied().unwrap_or(s.instrument);
        let mut distractors = Vec::with_capacity(s.distractors.len());
        for (i, code) in s.distractors.iter().enumerate() {
            let code = code.trim().to_uppercase();
            let key = format!("survey.distractors[{i}]");
            if code.is_empty() || code.contains('|') {
                return Err(bad(&key, format!("{code:?} is not a usable code")));
            }
            if BEHAVIOUR_CODES.contains(&code.as_str()) {
                return Err(bad(&key, format!("{code} is a behaviour code, not a distractor")));
            }
            if distractors.contains(&code) {
                return Err(bad(&key, format!("{code} is listed twice")));
            }
            distractors.push(code);
        }
        if distractors.len() > MAX_DISTRACTORS {
            return Err(bad("survey.distractors", format!("{} codes, at most {MAX_DISTRACTORS}", distractors.len())));
        }
        let catalogue_size = BEHAVIOUR_CODES.len() + distractors.len();
        if s.max_picks == 0 || s.max_picks as usize > catalogue_size {
            return Err(bad(
                "survey.max_picks",
                format!("must be between 1 and the catalogue size {catalogue_size}, got {}", s.max_picks),
            ));
        }
        if s.likert_min < 0 || s.likert_max > 255 || s.likert_min >= s.likert_max {
            return Err(bad(
                "survey.likert_max",
                format!("need 0 <= likert_min < likert_max <= 255, got {}..{}", s.likert_min, s.likert_max),
            ));
        }
        let default_utc_offset = parse_offset(&s.default_utc_offset).ok_or_else(|| {
            bad("survey.default_utc_offset", format!("{:?} is not an offset like \"+07:00\"", s.default_utc_offset))
        })?;
        if s.min_duration_seconds < 0 {
            return Err(bad("survey.min_duration_seconds", "must be >= 0".into()));
        }

        let e = &file.estimation;
        if !(e.margin_of_error > 0.0 && e.margin_of_error < 1.0) {
            return Err(bad("estimation.margin_of_error", format!("must be in (0, 1), got {}", e.margin_of_error)));
        }
        if e.min_floor < 1 {
            return Err(bad("estimation.min_floor", format!("must be >= 1, got {}", e.min_floor)));
        }
        if e.suppression_min_n < 0 {
            return Err(bad("estimation.suppression_min_n", format!("must be >= 0, got {}", e.suppression_min_n)));
        }
        let p = &file.publish;
        if !(0.0..=1.0).contains(&p.max_quarantine_ratio) {
            return Err(bad(
                "publish.max_quarantine_ratio",
                format!("must be in [0, 1], got {}", p.max_quarantine_ratio),
            ));
        }

        let resolve = |flag: &Option<PathBuf>, template: &str, key: &str| -> Result<PathBuf> {
            if let Some(flag) = flag {
                return Ok(flag.clone());
            }
            if template.trim().is_empty() {
                return Err(bad(key, "must not be empty".into()));
            }
            Ok(PathBuf::from(template.replace("{year}", &year.to_string())))
        };
        let paths = Paths {
            regions: resolve(&overrides.regions, &file.paths.regions, "paths.regions")?,
            master: resolve(&overrides.master, &file.paths.master, "paths.master")?,
            input: resolve(&overrides.input, &file.paths.input, "paths.input")?,
            warehouse: resolve(&overrides.warehouse, &file.paths.warehouse, "paths.warehouse")?,
            quarantine: resolve(&overrides.quarantine, &file.paths.quarantine, "paths.quarantine")?,
        };

        Ok(Config {
            source: path.to_path_buf(),
            sha256,
            year,
            paths,
            survey: SurveyRules {
                instrument,
                max_picks: s.max_picks as usize,
                distractors,
                likert_min: s.likert_min,
                likert_max: s.likert_max,
                default_utc_offset,
                min_duration_seconds: s.min_duration_seconds,
                reject_straightliners: s.reject_straightliners,
            },
            estimation: file.estimation.clone(),
            publish: file.publish.clone(),
        })
    }
}

/// Best effort: the dotted key a TOML error is about, from its span in the message.
fn toml_error_key(e: &toml::de::Error) -> String {
    // toml's messages read "unknown field `x`" or "invalid type: ..., expected ..." and its
    // Display names the line; the key itself is in the message, so the message is kept whole.
    let msg = e.to_string();
    msg.lines()
        .find_map(|line| {
            let start = line.find('`')?;
            let rest = &line[start + 1..];
            let end = rest.find('`')?;
            Some(rest[..end].to_string())
        })
        .unwrap_or_else(|| "(syntax)".into())
}

/// Parses `+HH:MM` / `-HH:MM` (and `Z`).
pub fn parse_offset(text: &str) -> Option<FixedOffset> {
    let t = text.trim();
    if t == "Z" || t == "z" {
        return FixedOffset::east_opt(0);
    }
    let bytes = t.as_bytes();
    if bytes.len() != 6 || bytes[3] != b':' {
        return None;
    }
    let sign = match bytes[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hh: i32 = t.get(1..3)?.parse().ok()?;
    let mm: i32 = t.get(4..6)?.parse().ok()?;
    if !t[1..3].bytes().all(|b| b.is_ascii_digit()) || !t[4..6].bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if hh > 23 || mm > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (hh * 3600 + mm * 60))
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str, year: i32) -> Result<Config> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| Error::Config {
            path: "t.toml".into(),
            key: toml_error_key(&e),
            problem: e.message().to_string(),
        })?;
        Config::from_file(file, Path::new("t.toml"), String::new(), year, &PathOverrides::default())
    }

    fn key_of(result: Result<Config>) -> String {
        match result {
            Err(Error::Config { key, .. }) => key,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn shipped_config_is_the_spec_defaults() {
        let text = std::fs::read_to_string("config/berakhlak.toml").unwrap();
        let cfg = load_str(&text, 2024).unwrap();
        let d = load_str("", 2024).unwrap();
        assert_eq!(cfg.survey.instrument, Instrument::Votes);
        assert_eq!(cfg.survey.max_picks, d.survey.max_picks);
        assert_eq!(cfg.survey.distractors, d.survey.distractors);
        assert_eq!(cfg.survey.distractors.len(), 24);
        assert_eq!(cfg.survey.default_utc_offset.local_minus_utc(), 7 * 3600);
        assert_eq!(cfg.estimation.margin_of_error, 0.05);
        assert_eq!(cfg.estimation.min_floor, 30);
        assert_eq!(cfg.estimation.suppression_min_n, 10);
        assert_eq!(cfg.publish.max_quarantine_ratio, 0.10);
        assert_eq!(cfg.paths.master, PathBuf::from("data-samples/2024/institutions.csv"));
        let y2025 = load_str(&text, 2025).unwrap();
        assert_eq!(y2025.survey.instrument, Instrument::Likert);
    }

    #[test]
    fn unknown_key_is_named() {
        assert_eq!(key_of(load_str("[survey]\nmax_pick = 3\n", 2024)), "max_pick");
    }

    #[test]
    fn wrong_type_is_an_error() {
        assert!(matches!(load_str("[estimation]\nmin_floor = \"thirty\"\n", 2024), Err(Error::Config { .. })));
    }

    #[test]
    fn out_of_range_values_name_their_key() {
        assert_eq!(key_of(load_str("[estimation]\nmargin_of_error = 1.5\n", 2024)), "estimation.margin_of_error");
        assert_eq!(key_of(load_str("[publish]\nmax_quarantine_ratio = -0.1\n", 2024)), "publish.max_quarantine_ratio");
        assert_eq!(key_of(load_str("[survey]\ndefault_utc_offset = \"WIB\"\n", 2024)), "survey.default_utc_offset");
        assert_eq!(key_of(load_str("[survey]\nmax_picks = 0\n", 2024)), "survey.max_picks");
        assert_eq!(key_of(load_str("[survey]\ndistractors = [\"BP1\"]\n", 2024)), "survey.distractors[0]");
    }

    #[test]
    fn flags_override_paths_and_year_is_substituted() {
        let file: ConfigFile = toml::from_str("").unwrap();
        let overrides = PathOverrides { input: Some(PathBuf::from("/data/in")), ..Default::default() };
        let cfg = Config::from_file(file, Path::new("x"), String::new(), 2023, &overrides).unwrap();
        assert_eq!(cfg.paths.input, PathBuf::from("/data/in"));
        assert_eq!(cfg.paths.master, PathBuf::from("data-samples/2023/institutions.csv"));
    }

    #[test]
    fn offsets_parse() {
        assert_eq!(parse_offset("+07:00").unwrap().local_minus_utc(), 25200);
        assert_eq!(parse_offset("-03:30").unwrap().local_minus_utc(), -12600);
        assert!(parse_offset("+7:00").is_none());
        assert!(parse_offset("+24:00").is_none());
    }
}
