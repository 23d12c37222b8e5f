//! Scenario 4: each server as designed and the roads not taken (`PAXOS_VARIANT`), `put` from
//! clients on every member, with CPU and context switches per request: the threaded rows part
//! the framework's cost (rouille's dispatch) from the model's (threads against tasks). Each round
//! runs every variant on a fresh cluster, in an order that reverses from round to round.

use paxos_tests::Runtime;
use serde::Serialize;

use crate::load::{Api, Closed, Latencies, LoadResult, Spent, Workload};
use crate::plan::Plan;
use crate::progress::Progress;

use super::{Servers, addrs, max_threads, pids, turns};

/// One server variant under the same load.
#[derive(Clone, Debug, Serialize)]
pub struct VariantRow {
    pub runtime: &'static str,
    /// `PAXOS_VARIANT`, or the design's default.
    pub variant: &'static str,
    pub clients: usize,
    pub requests_per_second: f64,
    #[serde(flatten)]
    pub latency: Latencies,
    /// CPU seconds the whole cluster spent per 1,000 answered requests.
    pub cpu_seconds_per_1k: f64,
    /// Context switches of the cluster's threads (those alive at the end) per answered request.
    pub context_switches_per_request: f64,
    /// The most threads any member had at the end of a run.
    pub threads: u64,
}

/// The variants scenario 4 compares: each server as designed, and the roads not taken.
pub const VARIANTS: [(Runtime, Option<&str>, &str); 5] = [
    (
        Runtime::Threaded,
        None,
        "each request on its connection's thread (as designed)",
    ),
    (
        Runtime::Threaded,
        Some("handler-pool"),
        "rouille's dispatch to a pool of 512 handler threads",
    ),
    (
        Runtime::Threaded,
        Some("per-request-threads"),
        "rouille's dispatch to a thread per request (its default)",
    ),
    (Runtime::Async, None, "multi-thread scheduler (as designed)"),
    (
        Runtime::Async,
        Some("current-thread"),
        "current-thread scheduler",
    ),
];

pub fn run(plan: &Plan, servers: &Servers) -> Vec<VariantRow> {
    let mut progress = Progress::new("variants", VARIANTS.len() * plan.rounds);
    let mut merged: Vec<Option<(LoadResult, Spent, u64)>> = vec![None; VARIANTS.len()];
    // The whole scenario runs each variant for twice a throughput cell, split over the rounds.
    let duration = plan.cell * 2 / plan.rounds.max(1) as u32;
    for round in 0..plan.rounds {
        for v in turns(round, VARIANTS.len()) {
            let (runtime, variant, label) = VARIANTS[v];
            let cluster = servers.bench_cluster(runtime, variant);
            let pids = pids(&cluster);
            let (result, spent) = Closed {
                api: Api::TwinPaxos,
                targets: &addrs(&cluster),
                clients: plan.variant_clients,
                workload: Workload::Put,
                warmup: plan.warmup,
                duration,
            }
            .run(&pids);
            let threads = max_threads(&pids);
            match &mut merged[v] {
                Some((total, total_spent, most)) => {
                    total.merge(&result);
                    total_spent.add(spent);
                    *most = (*most).max(threads);
                }
                None => merged[v] = Some((result, spent, threads)),
            }
            progress.step(label);
        }
    }
    progress.finish();
    VARIANTS
        .iter()
        .zip(merged)
        .filter_map(|(&(runtime, _, label), merged)| {
            let (result, spent, threads) = merged?;
            let answered = result.ok.max(1) as f64;
            Some(VariantRow {
                runtime: runtime.name(),
                variant: label,
                clients: plan.variant_clients,
                requests_per_second: result.throughput(),
                latency: result.latencies(),
                cpu_seconds_per_1k: spent.cpu_seconds / (answered / 1000.0),
                context_switches_per_request: spent.context_switches as f64 / answered,
                threads,
            })
        })
        .collect()
}
