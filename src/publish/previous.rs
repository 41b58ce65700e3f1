//! Reads the previous year's published values for the year-on-year columns (SPEC 5.3).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, Float64Array, StringArray};

use super::layout;
use super::parquet::read_file;
use crate::error::{Error, Result};
use crate::estimate::Previous;

/// Loads `year`'s published tables from the warehouse; tables that are absent give empty maps.
pub fn load(warehouse: &Path, year: i32) -> Result<Previous> {
    Ok(Previous {
        institutions: read_table(warehouse, "institution_index", year, "institution_code", false)?
            .into_iter()
            .map(|(k, (v, _))| (k, v))
            .collect(),
        districts: read_table(warehouse, "district_index", year, "district_code", true)?,
        provinces: read_table(warehouse, "province_index", year, "province_code", true)?,
        national: read_table(warehouse, "national_index", year, "country_code", true)?,
    })
}

fn parquet_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            parquet_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    Ok(())
}

type Values = HashMap<String, (Option<f64>, Option<f64>)>;

fn read_table(warehouse: &Path, table: &str, year: i32, key: &str, with_mean: bool) -> Result<Values> {
    let dir = layout::year_dir(warehouse, table, year);
    let mut files = Vec::new();
    match parquet_files(&dir, &mut files) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Values::new()),
        Err(e) => return Err(Error::io(&dir, "listing the previous year's table", e)),
    }
    files.sort();
    let mut out = Values::new();
    for file in files {
        let bad = |message: String| Error::PreviousYear { path: file.clone(), message };
        for batch in read_file(&file).map_err(bad)? {
            let column = |name: &str| batch.column_by_name(name).ok_or_else(|| bad(format!("no column {name}")));
            let keys = column(key)?
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| bad(format!("{key} is not a string column")))?;
            let floats = |name: &str| -> Result<Float64Array> {
                column(name)?
                    .as_any()
                    .downcast_ref::<Float64Array>()
                    .cloned()
                    .ok_or_else(|| bad(format!("{name} is not a float64 column")))
            };
            let index = floats("index_overall")?;
            let mean = if with_mean { Some(floats("inst_mean_overall")?) } else { None };
            let get = |a: &Float64Array, i: usize| if a.is_null(i) { None } else { Some(a.value(i)) };
            for i in 0..batch.num_rows() {
                if keys.is_null(i) {
                    continue;
                }
                let m = mean.as_ref().and_then(|m| get(m, i));
                out.insert(keys.value(i).to_string(), (get(&index, i), m));
            }
        }
    }
    Ok(out)
}
