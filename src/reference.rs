//! Reference data: the regions list (Kepmendagri) and the year's institution master.
//!
//! Both are small and read whole. A bad reference file stops the run before any dump is read
//! (exit 2), with an error naming file, line and problem.

use std::collections::{BTreeMap, HashMap};

use rustc_hash::FxHashMap;
use std::io::BufReader;
use std::path::Path;

use crate::error::{Error, Result};
use crate::ingest::csv::{CsvRecord, CsvSplitter};

/// A regency or city.
#[derive(Debug, Clone)]
pub struct District {
    /// Four-digit code, e.g. `3319`.
    pub code: String,
    /// Name, e.g. `Kabupaten Kudus`.
    pub name: String,
    /// Two-digit province code.
    pub province_code: String,
}

/// The regions reference: 38 provinces and 514 regencies/cities.
#[derive(Debug, Clone, Default)]
pub struct Regions {
    /// Province names by code.
    pub provinces: BTreeMap<String, String>,
    /// Districts sorted by code.
    pub districts: Vec<District>,
    /// District index by four-digit code (a direct table: looked up once per record).
    by_number: Vec<u16>,
}

impl Regions {
    /// Reads `region_code,region_name,level,province_code`.
    pub fn load(path: &Path) -> Result<Regions> {
        let rows = read_table(path, &["region_code", "region_name", "level", "province_code"])?;
        let mut provinces = BTreeMap::new();
        let mut districts = Vec::new();
        for (line, row) in &rows {
            let bad = |problem: String| Error::Reference { path: path.into(), line: *line, problem };
            let (code, name, level, province) = (&row[0], &row[1], &row[2], &row[3]);
            match level.as_str() {
                "province" => {
                    if !is_digits(code, 2) || code != province {
                        return Err(bad(format!("province code {code:?} must be two digits equal to province_code")));
                    }
                    if provinces.insert(code.clone(), name.clone()).is_some() {
                        return Err(bad(format!("province {code} listed twice")));
                    }
                }
                "district" => {
                    if !is_digits(code, 4) || !code.starts_with(province.as_str()) {
                        return Err(bad(format!(
                            "district code {code:?} must be four digits starting with its province_code {province:?}"
                        )));
                    }
                    districts.push(District {
                        code: code.clone(),
                        name: name.clone(),
                        province_code: province.clone(),
                    });
                }
                other => return Err(bad(format!("level {other:?} is neither province nor district"))),
            }
        }
        districts.sort_by(|a, b| a.code.cmp(&b.code));
        let mut by_number = vec![NO_DISTRICT; 10_000];
        for (i, d) in districts.iter().enumerate() {
            if !provinces.contains_key(&d.province_code) {
                return Err(Error::Reference {
                    path: path.into(),
                    line: 0,
                    problem: format!("district {} names unknown province {}", d.code, d.province_code),
                });
            }
            let number = usize::from(d.code.parse::<u16>().unwrap_or(0)).min(by_number.len() - 1);
            if std::mem::replace(&mut by_number[number], i as u16) != NO_DISTRICT {
                return Err(Error::Reference {
                    path: path.into(),
                    line: 0,
                    problem: format!("district {} listed twice", d.code),
                });
            }
        }
        Ok(Regions { provinces, districts, by_number })
    }

    /// Index into `districts` of a normalised four-digit code.
    pub fn district_index(&self, code: u16) -> Option<u16> {
        self.by_number.get(usize::from(code)).copied().filter(|i| *i != NO_DISTRICT)
    }

    /// Index into `districts` of a code written as `3319` or `33.19`.
    pub fn district_index_of(&self, text: &str) -> Option<u16> {
        normalise_district(text).and_then(|n| self.district_index(n))
    }

    /// Name of a province.
    pub fn province_name(&self, code: &str) -> Option<&str> {
        self.provinces.get(code).map(String::as_str)
    }
}

/// `3319` or `33.19` → 3319; anything else is `None`.
pub fn normalise_district(text: &str) -> Option<u16> {
    let t = text.trim().as_bytes();
    let digits: [u8; 4] = match *t {
        [a, b, c, d] => [a, b, c, d],
        [a, b, b'.', c, d] => [a, b, c, d],
        _ => return None,
    };
    digits.iter().try_fold(0u16, |acc, d| d.is_ascii_digit().then(|| acc * 10 + u16::from(d - b'0')))
}

fn is_digits(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit())
}

/// Institution types (SPEC 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InstitutionType {
    /// Ministry.
    Kementerian,
    /// Agency.
    Lembaga,
    /// Provincial government.
    Provinsi,
    /// Regency government.
    Kabupaten,
    /// City government.
    Kota,
}

impl InstitutionType {
    /// Parses the master's spelling.
    pub fn parse(text: &str) -> Option<InstitutionType> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "kementerian" => InstitutionType::Kementerian,
            "lembaga" => InstitutionType::Lembaga,
            "provinsi" => InstitutionType::Provinsi,
            "kabupaten" => InstitutionType::Kabupaten,
            "kota" => InstitutionType::Kota,
            _ => return None,
        })
    }

    /// The spelling written to the tables.
    pub fn as_str(self) -> &'static str {
        match self {
            InstitutionType::Kementerian => "kementerian",
            InstitutionType::Lembaga => "lembaga",
            InstitutionType::Provinsi => "provinsi",
            InstitutionType::Kabupaten => "kabupaten",
            InstitutionType::Kota => "kota",
        }
    }

    /// Regencies and cities are seated in a district; the others are not.
    pub fn has_district(self) -> bool {
        matches!(self, InstitutionType::Kabupaten | InstitutionType::Kota)
    }
}

/// One institution of the master.
#[derive(Debug, Clone)]
pub struct Institution {
    /// Code, trimmed and upper-cased.
    pub code: String,
    /// Name.
    pub name: String,
    /// Type.
    pub kind: InstitutionType,
    /// Province of the seat.
    pub province_code: String,
    /// District of the seat, for regencies and cities.
    pub district_code: Option<String>,
    /// Number of ASN (N), > 0.
    pub headcount: i64,
}

/// The year's institution master, sorted by code.
#[derive(Debug, Clone, Default)]
pub struct Master {
    /// Institutions sorted bytewise by code; their position is their index everywhere else.
    pub institutions: Vec<Institution>,
    by_code: FxHashMap<String, u32>,
}

impl Master {
    /// Reads and checks the master against the regions.
    pub fn load(path: &Path, regions: &Regions) -> Result<Master> {
        let rows = read_table(
            path,
            &[
                "institution_code",
                "institution_name",
                "institution_type",
                "province_code",
                "district_code",
                "headcount",
            ],
        )?;
        let mut institutions: Vec<Institution> = Vec::with_capacity(rows.len());
        let mut seen: HashMap<String, u64> = HashMap::new();
        for (line, row) in rows {
            let bad = |problem: String| Error::Reference { path: path.into(), line, problem };
            let code = row[0].trim().to_uppercase();
            if code.is_empty() {
                return Err(bad("institution_code is empty".into()));
            }
            if let Some(first) = seen.insert(code.clone(), line) {
                return Err(bad(format!("duplicate institution_code {code} (first on line {first})")));
            }
            let kind = InstitutionType::parse(&row[2]).ok_or_else(|| {
                bad(format!(
                    "institution_type {:?} is not one of kementerian, lembaga, provinsi, kabupaten, kota",
                    row[2]
                ))
            })?;
            let province_code = row[3].trim().to_string();
            if !regions.provinces.contains_key(&province_code) {
                return Err(bad(format!("province_code {province_code:?} is not a province in regions")));
            }
            let district_text = row[4].trim();
            let district_code = if district_text.is_empty() {
                if kind.has_district() {
                    return Err(bad(format!("a {} needs a district_code", kind.as_str())));
                }
                None
            } else {
                if !kind.has_district() {
                    return Err(bad(format!(
                        "a {} is seated in a province: district_code must be empty, got {district_text:?}",
                        kind.as_str()
                    )));
                }
                let idx = regions
                    .district_index_of(district_text)
                    .ok_or_else(|| bad(format!("district_code {district_text:?} is not a district in regions")))?;
                let district = &regions.districts[idx as usize];
                if district.province_code != province_code {
                    return Err(bad(format!(
                        "district_code {} lies in province {}, not {province_code}",
                        district.code, district.province_code
                    )));
                }
                Some(district.code.clone())
            };
            let headcount_text = row[5].trim();
            let headcount = parse_int(headcount_text)
                .filter(|n| *n > 0)
                .ok_or_else(|| bad(format!("headcount {headcount_text:?} must be an integer > 0")))?;
            institutions.push(Institution {
                code,
                name: row[1].trim().to_string(),
                kind,
                province_code,
                district_code,
                headcount,
            });
        }
        if institutions.len() > usize::from(u16::MAX) {
            return Err(Error::Reference {
                path: path.into(),
                line: 0,
                problem: format!("{} institutions: at most {} are supported", institutions.len(), u16::MAX),
            });
        }
        institutions.sort_by(|a, b| a.code.as_bytes().cmp(b.code.as_bytes()));
        let by_code = institutions.iter().enumerate().map(|(i, inst)| (inst.code.clone(), i as u32)).collect();
        Ok(Master { institutions, by_code })
    }

    /// Index of an institution code (already trimmed and upper-cased).
    pub fn index_of(&self, code: &str) -> Option<u32> {
        self.by_code.get(code).copied()
    }

    /// Number of institutions.
    pub fn len(&self) -> usize {
        self.institutions.len()
    }

    /// True when the master lists no institution.
    pub fn is_empty(&self) -> bool {
        self.institutions.is_empty()
    }
}

/// Marks a four-digit number that is not a district.
const NO_DISTRICT: u16 = u16::MAX;

/// An integer as the spec defines it: optional sign, then digits only.
pub fn parse_int(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Reads a small CSV with a required header into `(line, fields in `columns` order)`.
fn read_table(path: &Path, columns: &[&str]) -> Result<Vec<(u64, Vec<String>)>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, "opening", e))?;
    let bad = |line: u64, problem: String| Error::Reference { path: path.into(), line, problem };
    let Some((mut splitter, header)) =
        CsvSplitter::open(BufReader::new(file)).map_err(|e| Error::io(path, "reading", e))?
    else {
        return Err(bad(0, "file is empty".into()));
    };
    let text = |rec: &CsvRecord, i: usize, line: u64| -> Result<String> {
        String::from_utf8(rec.field(i).to_vec()).map_err(|_| bad(line, "not valid UTF-8".into()))
    };
    let mut positions = Vec::with_capacity(columns.len());
    let mut names = Vec::with_capacity(header.len());
    for i in 0..header.len() {
        names.push(text(&header, i, header.line)?.trim().to_ascii_lowercase());
    }
    for column in columns {
        let pos = names
            .iter()
            .position(|n| n == column)
            .ok_or_else(|| bad(header.line, format!("header has no column `{column}`")))?;
        positions.push(pos);
    }
    let mut rows = Vec::new();
    let mut rec = CsvRecord::default();
    while splitter.read_record(&mut rec).map_err(|e| Error::io(path, "reading", e))? {
        if let Some(fault) = rec.fault {
            return Err(bad(rec.line, format!("malformed row: {fault}")));
        }
        if rec.len() != names.len() {
            return Err(bad(rec.line, format!("{} fields, header has {}", rec.len(), names.len())));
        }
        let row = positions.iter().map(|&p| text(&rec, p, rec.line)).collect::<Result<Vec<_>>>()?;
        rows.push((rec.line, row));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions() -> Regions {
        Regions::load(Path::new("config/reference/regions.csv")).unwrap()
    }

    fn master_from(text: &str) -> Result<Master> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("institutions.csv");
        std::fs::write(&path, text).unwrap();
        Master::load(&path, &regions())
    }

    const HEADER: &str = "institution_code,institution_name,institution_type,province_code,district_code,headcount\n";

    #[test]
    fn shipped_regions_have_38_provinces_and_514_districts() {
        let r = regions();
        assert_eq!(r.provinces.len(), 38);
        assert_eq!(r.districts.len(), 514);
        let kudus = r.district_index_of("33.19").unwrap();
        assert_eq!(r.districts[kudus as usize].name, "Kabupaten Kudus");
        assert_eq!(r.district_index_of("3319"), Some(kudus));
        assert_eq!(r.district_index_of("3300"), None);
    }

    #[test]
    fn district_codes_normalise() {
        assert_eq!(normalise_district("3319"), Some(3319));
        assert_eq!(normalise_district(" 33.19 "), Some(3319));
        assert_eq!(normalise_district("33-19"), None);
        assert_eq!(normalise_district("331"), None);
        assert_eq!(normalise_district("33.1a"), None);
    }

    #[test]
    fn integers_are_sign_and_digits_only() {
        assert_eq!(parse_int("2024"), Some(2024));
        assert_eq!(parse_int("+7"), Some(7));
        assert_eq!(parse_int("-7"), Some(-7));
        assert_eq!(parse_int("2024.0"), None);
        assert_eq!(parse_int("0x7E8"), None);
        assert_eq!(parse_int(""), None);
        assert_eq!(parse_int("-"), None);
    }

    #[test]
    fn master_loads_and_sorts() {
        let m = master_from(&format!(
            "{HEADER}kab-kudus,Pemerintah Kabupaten Kudus,kabupaten,33,33.19,9000\nKEMENKEU,\"Kementerian Keuangan, RI\",kementerian,31,,80000\n"
        ))
        .unwrap();
        assert_eq!(m.institutions[0].code, "KAB-KUDUS");
        assert_eq!(m.institutions[0].district_code.as_deref(), Some("3319"));
        assert_eq!(m.institutions[1].name, "Kementerian Keuangan, RI");
        assert_eq!(m.index_of("KEMENKEU"), Some(1));
    }

    fn master_error(body: &str) -> (u64, String) {
        match master_from(&format!("{HEADER}{body}")) {
            Err(Error::Reference { line, problem, .. }) => (line, problem),
            other => panic!("expected a reference error, got {other:?}"),
        }
    }

    #[test]
    fn master_rule_breaks_name_line_and_problem() {
        let ok = "A,a,kementerian,31,,10\n";
        let (line, p) = master_error(&format!("{ok}a,b,lembaga,31,,5\n"));
        assert_eq!(line, 3);
        assert!(p.contains("duplicate"), "{p}");
        assert!(master_error("A,a,kementerian,99,,10\n").1.contains("province_code"));
        assert!(master_error("A,a,kabupaten,33,3399,10\n").1.contains("district_code"));
        assert!(master_error("A,a,kabupaten,34,3319,10\n").1.contains("lies in province"));
        assert!(master_error("A,a,kementerian,31,,0\n").1.contains("headcount"));
        assert!(master_error("A,a,kementerian,31,,-4\n").1.contains("headcount"));
        assert!(master_error("A,a,kementerian,31,,1.5\n").1.contains("headcount"));
        assert!(master_error("A,a,ministry,31,,10\n").1.contains("institution_type"));
        assert!(master_error("A,a,kabupaten,33,,10\n").1.contains("needs a district_code"));
    }
}
