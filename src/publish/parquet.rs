//! Parquet writing and reading: rows → Arrow arrays → one zstd file with run metadata.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as Codec, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::schema::{Cell, Column, Kind};
use crate::config::Compression;
use crate::error::{Error, Result};

/// Metadata written into every file.
#[derive(Debug, Clone)]
pub struct FileMeta {
    /// `berakhlak.run_id`.
    pub run_id: String,
    /// `berakhlak.version`.
    pub version: String,
    /// `berakhlak.config_sha256`.
    pub config_sha256: String,
    /// Codec.
    pub compression: Compression,
}

fn arrow_type(kind: Kind) -> DataType {
    match kind {
        Kind::Str => DataType::Utf8,
        Kind::Int => DataType::Int64,
        Kind::Float => DataType::Float64,
        Kind::Bool => DataType::Boolean,
    }
}

/// Builds the Arrow batch of `rows` under `columns`.
pub fn to_batch<R>(columns: &[Column<R>], rows: &[R]) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    let schema = Arc::new(Schema::new(
        columns.iter().map(|c| Field::new(c.name.as_str(), arrow_type(c.kind), c.nullable)).collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .map(|c| -> ArrayRef {
            let cells = rows.iter().map(|r| (c.get)(r));
            match c.kind {
                Kind::Str => {
                    Arc::new(cells.map(|v| if let Cell::Str(s) = v { s } else { None }).collect::<StringArray>())
                }
                Kind::Int => {
                    Arc::new(cells.map(|v| if let Cell::Int(i) = v { i } else { None }).collect::<Int64Array>())
                }
                Kind::Float => {
                    Arc::new(cells.map(|v| if let Cell::Float(f) = v { f } else { None }).collect::<Float64Array>())
                }
                Kind::Bool => {
                    Arc::new(cells.map(|v| if let Cell::Bool(b) = v { b } else { None }).collect::<BooleanArray>())
                }
            }
        })
        .collect();
    RecordBatch::try_new(schema, arrays)
}

/// Writes `rows` to a new file at `path` (mode `mode`), closes the footer and fsyncs the file.
/// Returns the number of rows written.
pub fn write_file<R>(path: &Path, columns: &[Column<R>], rows: &[R], meta: &FileMeta, mode: u32) -> Result<u64> {
    let perr = |e: &dyn std::fmt::Display| Error::Parquet { path: path.to_path_buf(), message: e.to_string() };
    let batch = to_batch(columns, rows).map_err(|e| perr(&e))?;
    let codec = match meta.compression {
        Compression::Zstd => Codec::ZSTD(ZstdLevel::try_new(3).map_err(|e| perr(&e))?),
        Compression::Snappy => Codec::SNAPPY,
        Compression::None => Codec::UNCOMPRESSED,
    };
    let props = WriterProperties::builder()
        .set_compression(codec)
        .set_dictionary_enabled(true)
        .set_created_by(format!("berakhlak {}", meta.version))
        .set_key_value_metadata(Some(vec![
            KeyValue::new("berakhlak.run_id".to_string(), meta.run_id.clone()),
            KeyValue::new("berakhlak.version".to_string(), meta.version.clone()),
            KeyValue::new("berakhlak.config_sha256".to_string(), meta.config_sha256.clone()),
        ]))
        .build();
    crate::testhooks::step();
    if let Some(e) = crate::testhooks::write_error(path) {
        return Err(Error::io(path, "creating", e));
    }
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::io(path, "creating", e))?;
    let handle = file.try_clone().map_err(|e| Error::io(path, "creating", e))?;
    let mut writer = ArrowWriter::try_new(handle, batch.schema(), Some(props)).map_err(|e| perr(&e))?;
    writer.write(&batch).map_err(|e| perr(&e))?;
    writer.close().map_err(|e| perr(&e))?;
    file.sync_all().map_err(|e| Error::io(path, "syncing", e))?;
    Ok(batch.num_rows() as u64)
}

/// Reads every row of a Parquet file as batches.
pub fn read_file(path: &Path) -> std::result::Result<Vec<RecordBatch>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| e.to_string())?
        .build()
        .map_err(|e| e.to_string())?;
    reader.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| e.to_string())
}
