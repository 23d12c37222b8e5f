//! The report: `report.md` with tables and the talk's claims against our figures, SVG plots, and
//! the raw JSON everything was computed from.
//!
//! - this file: [`Results`], what a run measured, and [`write`], which lays the report out;
//! - `claims`: the talk's claims, answered from the figures;
//! - `sections`: one section per scenario, each opening with its method in a sentence;
//! - `tls`: the TLS section, TLS off against on per server;
//! - `charts`: the SVG charts.

mod charts;
mod claims;
mod sections;
mod spread;
mod tls;

use std::fmt::Write;
use std::fs;
use std::path::Path;

use serde::Serialize;

use crate::bare::BarePoint;
use crate::scenario::cancellation::CancellationRun;
use crate::scenario::hello::HelloRow;
use crate::scenario::idle::{IdleSeries, WatchSeries};
use crate::scenario::lifecycle::LifecycleRow;
use crate::scenario::open_loop::OpenLoopRow;
use crate::scenario::scaling::ScalingRow;
use crate::scenario::shutdown::ShutdownRun;
use crate::scenario::threads::ThreadTable;
use crate::scenario::throughput::ThroughputRow;
use crate::scenario::tls::TlsRow;
use crate::scenario::variants::VariantRow;
use crate::shape::TwinDiff;

/// Everything one `paxos-bench` run measured. A scenario left out (`--only`) has no rows.
#[derive(Debug, Serialize)]
pub struct Results {
    pub plan: &'static str,
    pub date: String,
    pub machine: String,
    /// Where the servers and the load generator ran (`--cpus`).
    pub pinning: String,
    pub throughput: Vec<ThroughputRow>,
    pub threads: Vec<ThreadTable>,
    pub hello: Vec<HelloRow>,
    pub variants: Vec<VariantRow>,
    /// `put` and `get` with TLS off and on.
    pub tls: Vec<TlsRow>,
    pub scaling: Vec<ScalingRow>,
    pub open_loop: Vec<OpenLoopRow>,
    pub idle: Vec<IdleSeries>,
    /// The idle ladder again, each connection waiting on a watch.
    pub watchers: Vec<WatchSeries>,
    pub bare: Vec<BarePoint>,
    pub cancellation: Vec<CancellationRun>,
    pub shutdown_under_load: Vec<ShutdownRun>,
    pub lifecycle: Vec<LifecycleRow>,
    pub shape: Option<TwinDiff>,
}

/// Writes `report.md`, the plots and `results.json` into `dir`.
pub fn write(dir: &Path, results: &Results) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let put = |name: &str, text: String| {
        fs::write(dir.join(name), text).map_err(|e| format!("writing {name}: {e}"))
    };
    let json = serde_json::to_string_pretty(results).map_err(|e| e.to_string())?;
    put("results.json", json)?;
    let charts = charts::charts(results);
    for (name, chart) in &charts {
        put(&format!("{name}.svg"), chart.to_svg())?;
    }
    let drawn: Vec<&str> = charts.iter().map(|(name, _)| *name).collect();
    put("report.md", markdown(results, &drawn))
}

fn markdown(results: &Results, charts: &[&str]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Twin Paxos: threads versus async, measured\n");
    let _ = writeln!(
        md,
        "Plan `{}`, {}. Machine: {}. Every figure comes from real server processes on \
         loopback (release builds, fsync on), driven by one load generator for both.\n",
        results.plan, results.date, results.machine
    );
    let _ = writeln!(
        md,
        "How it was measured, for every scenario below: {}. Where order could favour one \
         server, {}; each section says how it ran. Every latency counts every request sent, \
         answered or failed (a failure timed until it failed), and the errors stand beside it: \
         a count, and the median time a failed request took.\n",
        results.pinning,
        crate::scenario::ORDER
    );
    let _ = writeln!(md, "## The talk's claims, answered\n");
    claims::claims(&mut md, results);
    sections::all(&mut md, results, charts);
    md
}
