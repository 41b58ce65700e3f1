//! Integration tests: drive the real `berakhlak` binary in a temporary directory per test.
//!
//! One test binary (faster to link) with modules per concern; fixtures are written by the
//! tests themselves and named after the defect they carry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
