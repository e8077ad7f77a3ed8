//! Scorers: how a finished attempt is verified.
//!
//! [`checks`] holds the deterministic scorers (`exit_code`, `file_exists`,
//! `regex_match`, `json_path`) as plain functions.

pub mod checks;
