//! The integration suite harness (being written).
