//! Judging what clients saw: a history of operations and a linearizability checker for it.
//!
//! The core's simulator records its clients here, and so does the nemesis runner, which drives
//! real clusters over HTTP: both histories are judged by the same search. Outside the core's own
//! tests this module is behind the `check` feature, so the servers do not carry it.

mod history;
pub mod linearizability;

pub use history::{History, OpRecord};
