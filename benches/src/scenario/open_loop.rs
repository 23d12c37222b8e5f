//! Scenario 2: the open loop, `put` from clients on every member at fixed rates, latency timed
//! from each request's due time (so a stall cannot hide by slowing the clients down).
//!
//! Both servers run at the same absolute rates, fractions of the slower server's saturation, so
//! "p99 at 75%" compares like with like; the faster server also runs at the same fractions of
//! its own saturation. A saturation rate is the closed loop's `put` rate at the concurrency
//! closest to the open loop's own number of connections (a rate reached with 256 connections is
//! no saturation point for 64). Both clusters stay up through the scenario, and each fraction
//! runs both servers, in an order that alternates from fraction to fraction.

use serde::Serialize;

use crate::load::{self, Api, Latencies, Placement, Workload};
use crate::plan::Plan;
use crate::progress::Progress;

use super::throughput::ThroughputRow;
use super::{RUNTIMES, Servers, addrs, turns};

/// One open-loop run.
#[derive(Clone, Debug, Serialize)]
pub struct OpenLoopRow {
    pub runtime: &'static str,
    /// The offered rate as a fraction of this server's own saturation rate.
    pub fraction_of_own: f64,
    /// The offered rate as a fraction of the slower server's saturation rate.
    pub fraction_of_slower: f64,
    pub offered_per_second: f64,
    pub answered_per_second: f64,
    #[serde(flatten)]
    pub latency: Latencies,
}

pub fn run(plan: &Plan, servers: &Servers, throughput: &[ThroughputRow]) -> Vec<OpenLoopRow> {
    let saturation: Vec<f64> = RUNTIMES
        .iter()
        .map(|runtime| {
            throughput
                .iter()
                .filter(|r| {
                    r.runtime == runtime.name()
                        && r.workload == Workload::Put
                        && r.placement == Placement::Spread
                })
                .min_by_key(|r| r.clients.abs_diff(plan.open_loop_workers))
                .map_or(0.0, |r| r.requests_per_second)
        })
        .collect();
    let slower = saturation.iter().copied().fold(f64::INFINITY, f64::min);
    if !(slower.is_finite() && slower > 0.0) {
        return Vec::new();
    }
    // Each fraction: both servers at the slower's rate, and the faster at its own too.
    let runs_per_fraction: usize = saturation
        .iter()
        .map(|&s| if s > slower { 2 } else { 1 })
        .sum();
    let mut progress = Progress::new("open loop", plan.load_fractions.len() * runs_per_fraction);
    let clusters: Vec<_> = RUNTIMES
        .iter()
        .map(|&runtime| servers.bench_cluster(runtime, None))
        .collect();
    let mut rows = Vec::new();
    for (k, &fraction) in plan.load_fractions.iter().enumerate() {
        for r in turns(k, RUNTIMES.len()) {
            let own = saturation[r];
            let mut rates = vec![slower * fraction];
            if own > slower {
                rates.push(own * fraction);
            }
            let members = addrs(&clusters[r]);
            for rate in rates {
                let result = load::open_loop(
                    Api::TwinPaxos,
                    &members,
                    plan.open_loop_workers,
                    Workload::Put,
                    rate,
                    plan.open_loop,
                );
                rows.push(OpenLoopRow {
                    runtime: RUNTIMES[r].name(),
                    fraction_of_own: rate / own,
                    fraction_of_slower: rate / slower,
                    offered_per_second: rate,
                    answered_per_second: result.ok as f64 / result.elapsed.as_secs_f64().max(1e-9),
                    latency: result.latencies(),
                });
                progress.step(&format!("{} at {rate:.0}/s", RUNTIMES[r].name()));
            }
        }
    }
    progress.finish();
    rows.sort_by(|a, b| {
        (a.runtime != "threaded", a.offered_per_second)
            .partial_cmp(&(b.runtime != "threaded", b.offered_per_second))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    rows
}
