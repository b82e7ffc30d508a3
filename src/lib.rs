//! dirsync: reads a directory (LDAPS or an LDIF export), applies the rules of its config and
//! ships a Retarus Email Security MAP file — fail-closed: any error means nothing is shipped.
//!
//! The modules follow the pipeline: `source` → `model` → `rules` → `mapfile` → `guard` →
//! `upload` → `state`; `run` strings them together, `check` tests each, `cli` and `config`
//! are the admin's side of it.

pub mod check;
pub mod cli;
pub mod config;
pub mod error;
pub mod exchange;
pub mod fsutil;
pub mod glob;
pub mod guard;
pub mod logging;
pub mod mapfile;
pub mod model;
pub mod net;
pub mod problems;
pub mod report;
pub mod rules;
pub mod run;
pub mod secret;
pub mod source;
pub mod stamp;
pub mod state;
pub mod upload;
