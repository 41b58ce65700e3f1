//! berakhlak: the nightly pipeline that turns raw BerAKHLAK survey dumps into district,
//! provincial and national indices, published as a partitioned Parquet warehouse.
//!
//! Data flows one way, and the modules follow it:
//! [`ingest`] → [`validate`] → [`dedupe`] → [`score`] → [`estimate`] → [`publish`]
//! (with [`quarantine`] beside publish for what was rejected). [`pipeline`] wires the stages
//! together for the `aggregate` and `validate` commands.

pub mod catalogue;
pub mod cli;
pub mod config;
pub mod dedupe;
pub mod error;
pub mod estimate;
pub mod ingest;
pub mod pipeline;
pub mod progress;
pub mod publish;
pub mod quarantine;
pub mod reference;
pub mod score;
pub mod testhooks;
pub mod validate;

pub use error::{Error, ExitCode, Result};
pub mod generate;
