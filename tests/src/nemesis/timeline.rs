//! The fault timeline: every fault injected and undone, one JSON line each in `faults.jsonl`,
//! with counts of the faults by kind for the summary.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use serde_json::{Value as Json, json};

#[derive(Debug)]
pub struct Timeline {
    file: BufWriter<File>,
    epoch: Instant,
    counts: BTreeMap<String, u64>,
}

impl Timeline {
    /// Writes the timeline to `path`; times are seconds since `epoch`.
    pub fn create(path: &Path, epoch: Instant) -> Timeline {
        let file =
            File::create(path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        Timeline {
            file: BufWriter::new(file),
            epoch,
            counts: BTreeMap::new(),
        }
    }

    /// Records a fault of kind `kind` (counted), with `detail` (a JSON object).
    pub fn fault(&mut self, kind: &str, detail: Json) {
        *self.counts.entry(kind.to_owned()).or_default() += 1;
        self.event(kind, detail);
    }

    /// Records an event that is not a fault, such as a restart or a heal.
    pub fn event(&mut self, event: &str, detail: Json) {
        let mut line = json!({
            "t": (self.epoch.elapsed().as_secs_f64() * 1e3).round() / 1e3,
            "event": event,
        });
        if let (Some(line), Json::Object(detail)) = (line.as_object_mut(), detail) {
            line.extend(detail);
        }
        // Written through at once, so the file is whole however the run ends.
        let _ = writeln!(self.file, "{line}").and_then(|()| self.file.flush());
    }

    /// How many faults of each kind were injected.
    pub fn counts(&self) -> &BTreeMap<String, u64> {
        &self.counts
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}
