//! Scenario: what TLS costs each runtime. `put` and `get` at the plan's TLS client count, spread
//! over the members, on a cluster with TLS off and one with TLS on (HTTPS to clients and mutual
//! TLS between members, `crate::tls`), for both servers. Each round runs the four clusters
//! (threaded off, threaded on, async off, async on) in an order that reverses from round to
//! round, as the variants scenario does, so off and on alternate and a drift lands on both.

use paxos_tests::Runtime;
use serde::Serialize;

use crate::load::{Api, Closed, Latencies, LoadResult, Spent, Workload};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::tls::BenchTls;

use super::{RUNTIMES, Servers, addrs, pids, turns};

/// The operations the TLS rows measure.
pub const WORKLOADS: [Workload; 2] = [Workload::Put, Workload::Get];

/// One server, TLS off or on, one operation.
#[derive(Clone, Debug, Serialize)]
pub struct TlsRow {
    pub runtime: &'static str,
    pub tls: bool,
    pub workload: Workload,
    pub clients: usize,
    pub requests_per_second: f64,
    #[serde(flatten)]
    pub latency: Latencies,
    /// CPU seconds the whole cluster spent per 1,000 answered requests.
    pub cpu_seconds_per_1k: f64,
    /// Context switches of the cluster's threads per answered request.
    pub context_switches_per_request: f64,
}

/// The four clusters of a round, in the order of a round that is not reversed.
const CLUSTERS: [(Runtime, bool); 4] = [
    (RUNTIMES[0], false),
    (RUNTIMES[0], true),
    (RUNTIMES[1], false),
    (RUNTIMES[1], true),
];

pub fn run(plan: &Plan, servers: &Servers) -> Result<Vec<TlsRow>, String> {
    let tls = BenchTls::make()?;
    let mut progress = Progress::new("tls", CLUSTERS.len() * WORKLOADS.len() * plan.rounds);
    let mut merged: Vec<Vec<(LoadResult, Spent)>> = vec![Vec::new(); CLUSTERS.len()];
    for round in 0..plan.rounds {
        for c in turns(round, CLUSTERS.len()) {
            let (runtime, on) = CLUSTERS[c];
            let label = format!("{} TLS {}", runtime.name(), if on { "on" } else { "off" });
            progress.note(&format!("starting a {label} cluster"));
            let cluster = servers.bench_cluster_tls(runtime, on.then_some(&tls));
            let pids = pids(&cluster);
            let targets = addrs(&cluster);
            for (w, &workload) in WORKLOADS.iter().enumerate() {
                let load = Closed {
                    api: Api::TwinPaxos,
                    targets: &targets,
                    clients: plan.tls_clients,
                    workload,
                    warmup: plan.warmup,
                    duration: plan.cell,
                };
                let (result, spent) = load.run_tls(&pids, on.then_some(&tls.client));
                match merged[c].get_mut(w) {
                    Some((total, total_spent)) => {
                        total.merge(&result);
                        total_spent.add(spent);
                    }
                    None => merged[c].push((result, spent)),
                }
                progress.step(&format!("{label} {}", workload.name()));
            }
        }
    }
    progress.finish();
    let mut rows = Vec::new();
    for (&(runtime, on), cells) in CLUSTERS.iter().zip(&merged) {
        for (&workload, (result, spent)) in WORKLOADS.iter().zip(cells) {
            let answered = result.ok.max(1) as f64;
            rows.push(TlsRow {
                runtime: runtime.name(),
                tls: on,
                workload,
                clients: plan.tls_clients,
                requests_per_second: result.throughput(),
                latency: result.latencies(),
                cpu_seconds_per_1k: spent.cpu_seconds / (answered / 1000.0),
                context_switches_per_request: spent.context_switches as f64 / answered,
            });
        }
    }
    Ok(rows)
}

/// The row of `runtime`, `workload`, TLS `on` or off, if measured.
pub fn row<'a>(
    rows: &'a [TlsRow],
    runtime: &str,
    workload: Workload,
    on: bool,
) -> Option<&'a TlsRow> {
    rows.iter()
        .find(|r| r.runtime == runtime && r.workload == workload && r.tls == on)
}
