//! The cluster config file of `docs/configuration.md`, with the suite's fast tuning.

use std::path::Path;

use serde_json::{Map, Value as Json, json};

/// A cluster config: `servers`, an optional `secret` and tuning fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub servers: Vec<String>,
    pub secret: Option<String>,
    /// Tuning fields such as `heartbeat_ms`, written as they are.
    pub tuning: Map<String, Json>,
}

impl Config {
    /// A config with the suite's tuning: elections and discovery retries in a fraction of a
    /// second instead of the defaults' seconds, so scenarios run fast.
    pub fn fast(servers: Vec<String>) -> Config {
        let tuning = json!({
            "heartbeat_ms": 50,
            "election_timeout_ms": 400,
            "discovery_retry_ms": 150,
            "discovery_timeout_ms": 30_000,
            "request_timeout_ms": 5_000,
        });
        let Json::Object(tuning) = tuning else {
            unreachable!()
        };
        Config {
            servers,
            secret: None,
            tuning,
        }
    }

    /// Sets one tuning field.
    pub fn set(mut self, field: &str, value: impl Into<Json>) -> Config {
        self.tuning.insert(field.to_owned(), value.into());
        self
    }

    pub fn to_json(&self) -> Json {
        let mut object = Map::new();
        object.insert("servers".into(), json!(self.servers));
        if let Some(secret) = &self.secret {
            object.insert("secret".into(), json!(secret));
        }
        object.extend(self.tuning.clone());
        Json::Object(object)
    }

    pub fn write(&self, path: &Path) {
        let text = serde_json::to_string_pretty(&self.to_json()).expect("a config serializes");
        std::fs::write(path, text)
            .unwrap_or_else(|e| panic!("cannot write config {}: {e}", path.display()));
    }
}
