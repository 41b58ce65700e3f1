//! The one place an output column is defined: name, type, meaning, and how its value is taken
//! from an estimate. `docs/schema.md` is checked against this file by a test.
//!
//! **Invariant:** partition columns (`year`, `province_code` of `district_index`, `level` of
//! `behaviour_scores`) are in the path only, never inside the files.

use crate::catalogue::{Category, BEHAVIOUR_CODES, VALUE_CODES, VALUE_NAMES};
use crate::estimate::{DomainEstimate, InstitutionEstimate};
use crate::reference::{Institution, Regions};

/// Column types, all of which every BI tool reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// UTF-8 string (dictionary-encoded in the file).
    Str,
    /// Int64.
    Int,
    /// Float64.
    Float,
    /// Boolean.
    Bool,
}

impl Kind {
    /// The type's name as written in docs/schema.md.
    pub fn doc_name(self) -> &'static str {
        match self {
            Kind::Str => "string",
            Kind::Int => "int64",
            Kind::Float => "float64",
            Kind::Bool => "boolean",
        }
    }
}

/// One cell of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// String or null.
    Str(Option<String>),
    /// Int64 or null.
    Int(Option<i64>),
    /// Float64 or null.
    Float(Option<f64>),
    /// Boolean or null.
    Bool(Option<bool>),
}

/// Reads a column's value off a row.
pub type Getter<R> = Box<dyn Fn(&R) -> Cell + Send + Sync>;

/// A column: its name, type, meaning, and how to read it off a row.
pub struct Column<R> {
    /// Column name (stable: a change is a visible change for BI users).
    pub name: String,
    /// Type.
    pub kind: Kind,
    /// Whether nulls can occur.
    pub nullable: bool,
    /// Meaning, for docs/schema.md.
    pub doc: String,
    /// Value of the column for a row.
    pub get: Getter<R>,
}

fn col<R>(
    name: impl Into<String>,
    kind: Kind,
    nullable: bool,
    doc: impl Into<String>,
    get: impl Fn(&R) -> Cell + Send + Sync + 'static,
) -> Column<R> {
    Column { name: name.into(), kind, nullable, doc: doc.into(), get: Box::new(get) }
}

fn s(v: &str) -> Cell {
    Cell::Str(Some(v.to_string()))
}

fn cat(c: Option<Category>) -> Cell {
    Cell::Str(c.map(|c| c.letter().to_string()))
}

/// An `institution_index` row: the estimate with its master entry and region names.
pub struct InstitutionRow {
    /// The estimate.
    pub est: InstitutionEstimate,
    /// The master entry.
    pub inst: Institution,
    /// Name of the seat's province.
    pub province_name: Option<String>,
    /// Name of the seat's district.
    pub district_name: Option<String>,
}

impl InstitutionRow {
    /// Joins an estimate with its master entry and region names.
    pub fn new(est: &InstitutionEstimate, inst: &Institution, regions: &Regions) -> Self {
        InstitutionRow {
            est: est.clone(),
            inst: inst.clone(),
            province_name: regions.province_name(&inst.province_code).map(str::to_string),
            district_name: inst
                .district_code
                .as_ref()
                .and_then(|d| regions.district_index_of(d).map(|i| regions.districts[i as usize].name.clone())),
        }
    }
}

/// A row of a domain table.
pub struct DomainRow {
    /// The estimate.
    pub est: DomainEstimate,
    /// Name of the district (district table only).
    pub district_name: Option<String>,
    /// Name of the province (district and province tables).
    pub province_name: Option<String>,
}

impl DomainRow {
    /// Joins an estimate with its region names.
    pub fn new(est: &DomainEstimate, regions: &Regions) -> Self {
        DomainRow {
            est: est.clone(),
            district_name: regions.district_index_of(&est.code).map(|i| regions.districts[i as usize].name.clone()),
            province_name: est.code.get(..2).and_then(|p| regions.province_name(p)).map(str::to_string),
        }
    }
}

/// A `behaviour_scores` row.
pub struct BehaviourRow {
    /// Institution, district or province code, or `ID`.
    pub unit_code: String,
    /// Catalogue index of the behaviour.
    pub behaviour: usize,
    /// Respondents behind the score.
    pub n_respondents: i64,
    /// 0–100, `None` when the unit is suppressed.
    pub score: Option<f64>,
}

/// Which domain table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainTable {
    /// `district_index`.
    District,
    /// `province_index`.
    Province,
    /// `national_index`.
    National,
}

fn index_columns<R: 'static>(
    est: fn(&R) -> Option<&crate::estimate::Indices>,
    unit: &'static str,
    weighted: bool,
) -> Vec<Column<R>> {
    let how = if weighted { "design-weighted (w = N_h / n_h) " } else { "" };
    let mut cols = Vec::new();
    for (v, code) in VALUE_CODES.iter().enumerate() {
        cols.push(col(
            format!("index_{code}"),
            Kind::Float,
            true,
            format!(
                "{} index 0–100: 100 × {how}mean value score of the {unit}'s respondents; null when suppressed",
                VALUE_NAMES[v]
            ),
            move |r: &R| Cell::Float(est(r).map(|i| i.values[v])),
        ));
    }
    cols.push(col(
        "index_overall",
        Kind::Float,
        true,
        format!("BerAKHLAK index 0–100: 100 × {how}mean overall score (= mean of the seven value indices); null when suppressed"),
        move |r: &R| Cell::Float(est(r).map(|i| i.overall)),
    ));
    let se_doc = if weighted {
        "standard error of index_overall: Taylor linearisation of the ratio, institutions as strata, finite population correction (SPEC 5.2); null when suppressed"
    } else {
        "standard error of index_overall with finite population correction, 100·sqrt((1 − n/N)·S²/n); null when suppressed or n < 2"
    };
    cols.push(col("se_overall", Kind::Float, true, se_doc, move |r: &R| Cell::Float(est(r).and_then(|i| i.se))));
    cols.push(col(
        "ci95_low",
        Kind::Float,
        true,
        "index_overall − 1.96·se_overall, clipped to [0, 100]; null when se_overall is",
        move |r: &R| Cell::Float(est(r).and_then(|i| i.ci95()).map(|c| c.0)),
    ));
    cols.push(col(
        "ci95_high",
        Kind::Float,
        true,
        "index_overall + 1.96·se_overall, clipped to [0, 100]; null when se_overall is",
        move |r: &R| Cell::Float(est(r).and_then(|i| i.ci95()).map(|c| c.1)),
    ));
    cols.push(col(
        "category",
        Kind::Str,
        true,
        "category of index_overall rounded to one decimal: A Sehat ≥ 75.0, B Cukup Sehat ≥ 50.0, C Tidak Sehat ≥ 25.0, D Sangat Tidak Sehat",
        move |r: &R| cat(est(r).map(|i| i.category())),
    ));
    for (v, code) in VALUE_CODES.iter().enumerate() {
        cols.push(col(
            format!("category_{code}"),
            Kind::Str,
            true,
            format!("category (A–D) of index_{code}"),
            move |r: &R| cat(est(r).map(|i| i.value_categories()[v])),
        ));
    }
    cols
}

fn yoy_columns<R: 'static>(
    yoy: fn(&R) -> crate::estimate::YearOnYear,
    what: &'static str,
    prefix: &'static str,
) -> Vec<Column<R>> {
    vec![
        col(
            format!("prev_{prefix}"),
            Kind::Float,
            true,
            format!("previous year's published {what} of the same unit code; null when the warehouse has no such row or value"),
            move |r: &R| Cell::Float(yoy(r).prev),
        ),
        col(
            format!("delta_{prefix}"),
            Kind::Float,
            true,
            format!("{what} − prev_{prefix}; null when either is null"),
            move |r: &R| Cell::Float(yoy(r).delta),
        ),
    ]
}

/// Columns of `institution_index`.
pub fn institution_columns() -> Vec<Column<InstitutionRow>> {
    type R = InstitutionRow;
    let mut cols: Vec<Column<R>> = vec![
        col("institution_code", Kind::Str, false, "institution code from the master (upper-case)", |r: &R| {
            s(&r.inst.code)
        }),
        col("institution_name", Kind::Str, false, "institution name from the master", |r: &R| s(&r.inst.name)),
        col("institution_type", Kind::Str, false, "kementerian, lembaga, provinsi, kabupaten or kota", |r: &R| {
            s(r.inst.kind.as_str())
        }),
        col("province_code", Kind::Str, false, "two-digit province of the institution's seat", |r: &R| {
            s(&r.inst.province_code)
        }),
        col("province_name", Kind::Str, true, "name of province_code", |r: &R| Cell::Str(r.province_name.clone())),
        col(
            "district_code",
            Kind::Str,
            true,
            "four-digit district of the seat; null for central and provincial institutions",
            |r: &R| Cell::Str(r.inst.district_code.clone()),
        ),
        col("district_name", Kind::Str, true, "name of district_code", |r: &R| Cell::Str(r.district_name.clone())),
        col("headcount", Kind::Int, false, "number of ASN (N) from the master", |r: &R| {
            Cell::Int(Some(r.inst.headcount))
        }),
        col(
            "n_respondents",
            Kind::Int,
            false,
            "accepted respondents (n), after validation and deduplication",
            |r: &R| Cell::Int(Some(r.est.n)),
        ),
        col("response_rate", Kind::Float, false, "n / N; may exceed 1", |r: &R| Cell::Float(Some(r.est.response_rate))),
        col(
            "headcount_exceeded",
            Kind::Bool,
            false,
            "n > N (data kept; the master's headcount is probably stale)",
            |r: &R| Cell::Bool(Some(r.est.headcount_exceeded)),
        ),
        col(
            "min_required",
            Kind::Int,
            false,
            "min(N, max(min_floor, ceil(N / (1 + N·e²)))): Slovin with floor",
            |r: &R| Cell::Int(Some(r.est.min_required)),
        ),
        col(
            "eligible",
            Kind::Bool,
            false,
            "n ≥ min_required: the institution enters domain estimates, ranks and headline means",
            |r: &R| Cell::Bool(Some(r.est.eligible)),
        ),
        col(
            "suppressed",
            Kind::Bool,
            false,
            "n < suppression_min_n: every index, score, se, ci, category, rank and delta of the row is null",
            |r: &R| Cell::Bool(Some(r.est.suppressed)),
        ),
    ];
    cols.extend(index_columns(|r: &R| r.est.indices.as_ref(), "institution", false));
    cols.push(col(
        "rank_national",
        Kind::Int,
        true,
        "rank of index_overall (rounded to 2 decimals, highest first, ties share) among eligible institutions",
        |r: &R| Cell::Int(r.est.rank_national),
    ));
    cols.push(col(
        "rank_in_type",
        Kind::Int,
        true,
        "as rank_national, among eligible institutions of the same institution_type",
        |r: &R| Cell::Int(r.est.rank_in_type),
    ));
    cols.extend(yoy_columns(|r: &R| r.est.yoy, "index_overall", "index_overall"));
    cols
}

/// Columns of a domain table.
pub fn domain_columns(table: DomainTable) -> Vec<Column<DomainRow>> {
    type R = DomainRow;
    let unit = match table {
        DomainTable::District => "district",
        DomainTable::Province => "province",
        DomainTable::National => "nation",
    };
    let mut cols: Vec<Column<R>> = match table {
        DomainTable::District => vec![
            col(
                "district_code",
                Kind::Str,
                false,
                "four-digit district (kabupaten/kota) of work, from work_district_code",
                |r: &R| s(&r.est.code),
            ),
            col("district_name", Kind::Str, true, "district name from the regions reference", |r: &R| {
                Cell::Str(r.district_name.clone())
            }),
            col(
                "province_name",
                Kind::Str,
                true,
                "name of the district's province (its code is the partition column province_code)",
                |r: &R| Cell::Str(r.province_name.clone()),
            ),
        ],
        DomainTable::Province => vec![
            col(
                "province_code",
                Kind::Str,
                false,
                "two-digit province of work (first two digits of work_district_code)",
                |r: &R| s(&r.est.code),
            ),
            col("province_name", Kind::Str, true, "province name from the regions reference", |r: &R| {
                Cell::Str(r.province_name.clone())
            }),
        ],
        DomainTable::National => {
            vec![col("country_code", Kind::Str, false, "always ID", |r: &R| s(&r.est.code))]
        }
    };
    cols.push(col(
        "n_respondents",
        Kind::Int,
        false,
        format!("accepted respondents of eligible institutions working in the {unit}"),
        |r: &R| Cell::Int(Some(r.est.n_respondents)),
    ));
    cols.push(col(
        "n_institutions",
        Kind::Int,
        false,
        format!("eligible institutions with respondents in the {unit}"),
        |r: &R| Cell::Int(Some(r.est.n_institutions)),
    ));
    cols.push(col(
        "population_estimate",
        Kind::Float,
        false,
        "Σ w over the domain's respondents: estimated ASN working there in eligible institutions",
        |r: &R| Cell::Float(Some(r.est.population_estimate)),
    ));
    cols.push(col(
        "suppressed",
        Kind::Bool,
        false,
        "n_respondents < suppression_min_n: indices, se, ci, categories, inst_mean_*, ranks and deltas are null",
        |r: &R| Cell::Bool(Some(r.est.suppressed)),
    ));
    cols.extend(index_columns(|r: &R| r.est.indices.as_ref(), unit, true));
    let seat = match table {
        DomainTable::District => "whose master district_code is this district",
        DomainTable::Province => "whose master province_code is this province",
        DomainTable::National => "in the master",
    };
    cols.push(col(
        "n_institutions_seated",
        Kind::Int,
        false,
        format!("eligible, unsuppressed institutions {seat}"),
        |r: &R| Cell::Int(Some(r.est.n_institutions_seated)),
    ));
    for (v, code) in VALUE_CODES.iter().enumerate() {
        cols.push(col(
            format!("inst_mean_{code}"),
            Kind::Float,
            true,
            format!("unweighted mean of index_{code} over the n_institutions_seated institutions (the official headline figure); null when none or suppressed"),
            move |r: &R| Cell::Float(r.est.inst_mean.as_ref().map(|m| m.values[v])),
        ));
    }
    let headline = if table == DomainTable::National { "; the published national index" } else { "" };
    cols.push(col(
        "inst_mean_overall",
        Kind::Float,
        true,
        format!("unweighted mean of index_overall over the n_institutions_seated institutions{headline}; null when none or suppressed"),
        |r: &R| Cell::Float(r.est.inst_mean.as_ref().map(|m| m.overall)),
    ));
    cols.push(col("inst_mean_category", Kind::Str, true, "category (A–D) of inst_mean_overall", |r: &R| {
        cat(r.est.inst_mean.as_ref().map(|m| Category::of_index(m.overall)))
    }));
    match table {
        DomainTable::District => {
            cols.push(col(
                "rank_national",
                Kind::Int,
                true,
                "rank of index_overall (rounded to 2 decimals, highest first, ties share) among districts",
                |r: &R| Cell::Int(r.est.rank_national),
            ));
            cols.push(col(
                "rank_in_province",
                Kind::Int,
                true,
                "as rank_national, among the districts of the same province",
                |r: &R| Cell::Int(r.est.rank_in_province),
            ));
        }
        DomainTable::Province => {
            cols.push(col(
                "rank_national",
                Kind::Int,
                true,
                "rank of index_overall (rounded to 2 decimals, highest first, ties share) among provinces",
                |r: &R| Cell::Int(r.est.rank_national),
            ));
        }
        DomainTable::National => {}
    }
    cols.extend(yoy_columns(|r: &R| r.est.yoy, "index_overall", "index_overall"));
    cols.extend(yoy_columns(|r: &R| r.est.inst_mean_yoy, "inst_mean_overall", "inst_mean_overall"));
    cols
}

/// Columns of `behaviour_scores`.
pub fn behaviour_columns() -> Vec<Column<BehaviourRow>> {
    type R = BehaviourRow;
    vec![
        col("unit_code", Kind::Str, false, "institution, district or province code, or ID, depending on the level partition", |r: &R| s(&r.unit_code)),
        col("behaviour_code", Kind::Str, false, "behaviour BP1 … KL3 (catalogue order)", |r: &R| s(BEHAVIOUR_CODES[r.behaviour])),
        col("value_code", Kind::Str, false, "value of the behaviour: bp, ak, ko, ha, lo, ad, kl", |r: &R| {
            s(VALUE_CODES[crate::catalogue::value_of_behaviour(r.behaviour)])
        }),
        col("n_respondents", Kind::Int, false, "respondents behind the score (the unit's n_respondents)", |r: &R| Cell::Int(Some(r.n_respondents))),
        col("score", Kind::Float, true, "100 × (weighted, for domains) mean behaviour score: share picking it (votes) or mean rescaled answer (likert); null when the unit is suppressed", |r: &R| {
            Cell::Float(r.score)
        }),
    ]
}

/// Columns of the quarantine file (not a warehouse table; see docs/schema.md).
pub const QUARANTINE_COLUMNS: [(&str, Kind, &str); 6] = [
    ("source_file", Kind::Str, "path of the dump relative to the input directory"),
    ("line_number", Kind::Int, "first physical line of the record (the CSV header is line 1)"),
    ("response_id", Kind::Str, "the record's response_id when it could be read, else null"),
    ("reason", Kind::Str, "reason code (SPEC 3), the first that applies"),
    ("detail", Kind::Str, "what exactly is wrong, naming the field"),
    (
        "raw",
        Kind::Str,
        "the record as read, without its line terminator, cut to 64 KiB; invalid UTF-8 replaced by U+FFFD",
    ),
];

/// (name, type, meaning) of each column of a table.
pub type ColumnDocs = Vec<(String, Kind, String)>;

/// Every warehouse table: name, partition columns (path only), and (name, kind, doc) of its
/// columns, for docs and tests.
pub fn catalogue() -> Vec<(&'static str, Vec<&'static str>, ColumnDocs)> {
    fn strip<R>(cols: Vec<Column<R>>) -> ColumnDocs {
        cols.into_iter().map(|c| (c.name, c.kind, c.doc)).collect()
    }
    vec![
        ("institution_index", vec!["year"], strip(institution_columns())),
        ("district_index", vec!["year", "province_code"], strip(domain_columns(DomainTable::District))),
        ("province_index", vec!["year"], strip(domain_columns(DomainTable::Province))),
        ("national_index", vec!["year"], strip(domain_columns(DomainTable::National))),
        ("behaviour_scores", vec!["year", "level"], strip(behaviour_columns())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names<R>(cols: &[Column<R>]) -> Vec<String> {
        cols.iter().map(|c| c.name.clone()).collect()
    }

    #[test]
    fn institution_columns_in_spec_order() {
        let n = names(&institution_columns());
        assert_eq!(n.len(), 14 + 7 + 4 + 1 + 7 + 2 + 2);
        assert_eq!(&n[..3], ["institution_code", "institution_name", "institution_type"]);
        assert_eq!(n[14], "index_bp");
        assert_eq!(n[20], "index_kl");
        assert_eq!(&n[21..26], ["index_overall", "se_overall", "ci95_low", "ci95_high", "category"]);
        assert_eq!(n[26], "category_bp");
        assert_eq!(&n[n.len() - 4..], ["rank_national", "rank_in_type", "prev_index_overall", "delta_index_overall"]);
    }

    #[test]
    fn domain_columns_in_spec_order() {
        let d = names(&domain_columns(DomainTable::District));
        assert_eq!(
            &d[..7],
            [
                "district_code",
                "district_name",
                "province_name",
                "n_respondents",
                "n_institutions",
                "population_estimate",
                "suppressed"
            ]
        );
        let tail = [
            "rank_national",
            "rank_in_province",
            "prev_index_overall",
            "delta_index_overall",
            "prev_inst_mean_overall",
            "delta_inst_mean_overall",
        ];
        assert_eq!(&d[d.len() - 6..], tail);
        let p = names(&domain_columns(DomainTable::Province));
        assert_eq!(&p[..2], ["province_code", "province_name"]);
        assert!(!p.contains(&"rank_in_province".to_string()));
        let nat = names(&domain_columns(DomainTable::National));
        assert_eq!(nat[0], "country_code");
        assert!(!nat.iter().any(|c| c.starts_with("rank_")));
        let seated = nat.iter().position(|c| c == "n_institutions_seated").unwrap();
        assert_eq!(nat[seated + 1], "inst_mean_bp");
        assert_eq!(nat[seated + 8], "inst_mean_overall");
        assert_eq!(nat[seated + 9], "inst_mean_category");
    }

    #[test]
    fn no_partition_column_inside_files() {
        for (table, partitions, cols) in catalogue() {
            for p in partitions {
                assert!(!cols.iter().any(|c| c.0 == p), "{table} holds partition column {p}");
            }
        }
    }
}
