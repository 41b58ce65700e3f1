//! Helpers shared by the integration tests, and the test modules.

mod aggregate;
mod errors;
mod fuzz;
mod recovery;
mod schema_doc;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::{Array, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;

pub const HEADER: &str = "response_id,respondent_key,submitted_at,survey_year,institution_code,work_district_code,work_province_code,duration_seconds,current_culture";

pub const MASTER: &str = "institution_code,institution_name,institution_type,province_code,district_code,headcount\n\
KEMENKEU,Kementerian Keuangan,kementerian,31,,60\n\
KAB-KUDUS,Pemerintah Kabupaten Kudus,kabupaten,33,3319,40\n\
KOTA-PASURUAN,Pemerintah Kota Pasuruan,kota,35,3575,35\n\
PROV-JATENG,Pemerintah Provinsi Jawa Tengah,provinsi,33,,500\n\
KAB-TINY,Pemerintah Kabupaten Demak,kabupaten,33,3321,5\n";

/// A temporary project: config, master, input, warehouse, quarantine.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let p = Project { dir };
        std::fs::create_dir_all(p.path("raw/2024")).unwrap();
        std::fs::create_dir_all(p.path("raw/2023")).unwrap();
        p.write("master-2024.csv", MASTER);
        p.write("master-2023.csv", MASTER);
        p.config("");
        p
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// Writes the config with the given extra TOML appended (sections override nothing: use
    /// distinct sections).
    pub fn config(&self, extra: &str) {
        let regions = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/reference/regions.csv");
        let text = format!(
            "[paths]\nregions = \"{}\"\nmaster = \"{}/master-{{year}}.csv\"\ninput = \"{}/raw/{{year}}\"\nwarehouse = \"{}/warehouse\"\nquarantine = \"{}/quarantine\"\n{extra}",
            regions.display(),
            self.dir.path().display(),
            self.dir.path().display(),
            self.dir.path().display(),
            self.dir.path().display()
        );
        self.write("config.toml", text);
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_in(self.dir.path(), args, &[])
    }

    /// Runs the binary in `cwd` with extra environment variables.
    pub fn run_in(&self, cwd: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berakhlak"));
        cmd.args(args).current_dir(cwd).env("BERAKHLAK_RUN_ID", "");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    pub fn aggregate(&self, year: i32, extra: &[&str]) -> Output {
        let year = year.to_string();
        let mut args = vec!["aggregate", "--year", &year, "--config", "config.toml", "--quiet"];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    pub fn read(&self, rel: &str) -> Vec<RecordBatch> {
        berakhlak::publish::parquet::read_file(&self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    pub fn manifest(&self, year: i32) -> serde_json::Value {
        let text = std::fs::read_to_string(self.path(&format!("warehouse/_manifests/year={year}.json"))).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Every file under `root` with a digest of its bytes, to prove a failed run changed
    /// nothing. The lock file is left out: it names its latest holder.
    pub fn snapshot(&self, root: &str) -> BTreeMap<String, String> {
        fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<String, String>) {
            let Ok(entries) = std::fs::read_dir(dir) else { return };
            for e in entries {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else if p.file_name().is_some_and(|n| n != "_lock") {
                    use sha2::Digest;
                    let digest = sha2::Sha256::digest(std::fs::read(&p).unwrap());
                    out.insert(p.strip_prefix(base).unwrap().display().to_string(), berakhlak::config::hex(&digest));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.path(root), &self.path(root), &mut out);
        out
    }
}

/// Describes a failed command for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "{}", describe(out));
}

/// A CSV votes record.
pub fn rec(rid: &str, key: &str, ts: &str, inst: &str, district: &str, picks: &str) -> String {
    format!("{rid},{key},{ts},2024,{inst},{district},,300,{picks}")
}

/// `n` good records of an institution in a district, keys prefixed by `tag`.
pub fn good(tag: &str, inst: &str, district: &str, n: usize) -> Vec<String> {
    let picks = ["BP1|AK1", "AK2|AD1|KL3", "HA1|LO2", "KO1|AK3|BP2|X03", "KL1"];
    (0..n)
        .map(|i| {
            rec(
                &format!("{tag}-{i}"),
                &format!("{tag}-key-{i}"),
                &format!("2024-09-{:02}T08:15:00+07:00", 1 + i % 28),
                inst,
                district,
                picks[i % picks.len()],
            )
        })
        .collect()
}

pub fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let a = batch.column_by_name(name).unwrap_or_else(|| panic!("no column {name}"));
    let a = a.as_any().downcast_ref::<StringArray>().unwrap_or_else(|| panic!("{name} not utf8"));
    (0..a.len()).map(|i| if a.is_null(i) { None } else { Some(a.value(i).to_string()) }).collect()
}

pub fn ints(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    let a = batch.column_by_name(name).unwrap_or_else(|| panic!("no column {name}"));
    let a = a.as_any().downcast_ref::<Int64Array>().unwrap_or_else(|| panic!("{name} not int64"));
    (0..a.len()).map(|i| if a.is_null(i) { None } else { Some(a.value(i)) }).collect()
}

pub fn floats(batch: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    let a = batch.column_by_name(name).unwrap_or_else(|| panic!("no column {name}"));
    let a = a.as_any().downcast_ref::<Float64Array>().unwrap_or_else(|| panic!("{name} not float64"));
    (0..a.len()).map(|i| if a.is_null(i) { None } else { Some(a.value(i)) }).collect()
}

pub fn bools(batch: &RecordBatch, name: &str) -> Vec<Option<bool>> {
    let a = batch.column_by_name(name).unwrap_or_else(|| panic!("no column {name}"));
    let a = a.as_any().downcast_ref::<BooleanArray>().unwrap_or_else(|| panic!("{name} not bool"));
    (0..a.len()).map(|i| if a.is_null(i) { None } else { Some(a.value(i)) }).collect()
}
