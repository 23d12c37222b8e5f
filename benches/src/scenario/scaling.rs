//! Scenario 5: scaling with cores. The throughput cell (`put`, clients on every member) with the
//! servers pinned to 1, 2, 4, ... CPUs (the plan's counts that fit the machine), each on a fresh
//! cluster started under `taskset`, so that a server sizes itself to the CPUs it has (tokio
//! starts a worker per pinned CPU). The load generator runs on the CPUs each setting leaves
//! over when every setting leaves some (a bigger machine), and unpinned in every setting
//! otherwise (on 2 cores, where the 2-CPU setting leaves none), so that from one setting to the
//! next only the servers' CPUs change. Each round runs every (CPUs, server) pair, in an order
//! that reverses from round to round.

use serde::Serialize;

use crate::cpus::{CpuSet, LoadPinned};
use crate::load::{Api, Closed, Latencies, LoadResult, Spent, Workload};
use crate::plan::Plan;
use crate::progress::Progress;

use super::{RUNTIMES, Servers, addrs, max_threads, pids, turns};

/// One server on one set of CPUs.
#[derive(Clone, Debug, Serialize)]
pub struct ScalingRow {
    pub runtime: &'static str,
    /// The servers' CPUs, as `taskset -c` takes them.
    pub cpus: String,
    pub cpu_count: usize,
    /// Where the load generator ran.
    pub load_generator: String,
    pub clients: usize,
    pub requests_per_second: f64,
    #[serde(flatten)]
    pub latency: Latencies,
    pub cpu_ms_per_request: f64,
    pub context_switches_per_request: f64,
    pub threads: u64,
}

/// The CPU sets the scenario runs on: the first `n` of the CPUs the servers may use, for each
/// of the plan's counts that fits.
pub fn settings(plan: &Plan, servers: &Servers) -> Vec<CpuSet> {
    let base = servers.cpus.clone().unwrap_or_else(CpuSet::allowed);
    let mut sets: Vec<CpuSet> = Vec::new();
    for &n in &plan.scaling_cpus {
        let set = base.first(n);
        if set.len() == n && !sets.contains(&set) {
            sets.push(set);
        }
    }
    sets
}

pub fn run(plan: &Plan, servers: &Servers) -> Vec<ScalingRow> {
    let sets = settings(plan, servers);
    let allowed = CpuSet::allowed();
    let load_beside = sets.iter().all(|set| !allowed.minus(set).is_empty());
    let load_on = |set: &CpuSet| match load_beside {
        true => allowed.minus(set),
        false => allowed.clone(),
    };
    let describe = |set: &CpuSet| match load_beside {
        true => format!("on CPUs {}", allowed.minus(set)),
        false => "unpinned".to_owned(),
    };
    let pairs: Vec<(usize, usize)> = (0..sets.len())
        .flat_map(|s| (0..RUNTIMES.len()).map(move |r| (s, r)))
        .collect();
    let mut progress = Progress::new("scaling with cores", pairs.len() * plan.rounds);
    let mut merged: Vec<Option<(LoadResult, Spent, u64)>> = vec![None; pairs.len()];
    for round in 0..plan.rounds {
        for p in turns(round, pairs.len()) {
            let (s, r) = pairs[p];
            let (set, runtime) = (&sets[s], RUNTIMES[r]);
            let cluster = servers.bench_builder(runtime, None, Some(set)).start();
            let _pinned = LoadPinned::on(&load_on(set));
            let pids = pids(&cluster);
            let (result, spent) = Closed {
                api: Api::TwinPaxos,
                targets: &addrs(&cluster),
                clients: plan.scaling_clients,
                workload: Workload::Put,
                warmup: plan.warmup,
                duration: plan.cell,
            }
            .run(&pids);
            let threads = max_threads(&pids);
            match &mut merged[p] {
                Some((total, total_spent, most)) => {
                    total.merge(&result);
                    total_spent.add(spent);
                    *most = (*most).max(threads);
                }
                slot @ None => *slot = Some((result, spent, threads)),
            }
            progress.step(&format!("{} on CPUs {set}", runtime.name()));
        }
    }
    progress.finish();
    pairs
        .iter()
        .zip(merged)
        .filter_map(|(&(s, r), merged)| {
            let (result, spent, threads) = merged?;
            let answered = result.ok.max(1) as f64;
            Some(ScalingRow {
                runtime: RUNTIMES[r].name(),
                cpus: sets[s].to_string(),
                cpu_count: sets[s].len(),
                load_generator: describe(&sets[s]),
                clients: plan.scaling_clients,
                requests_per_second: result.throughput(),
                latency: result.latencies(),
                cpu_ms_per_request: spent.cpu_seconds * 1000.0 / answered,
                context_switches_per_request: spent.context_switches as f64 / answered,
                threads,
            })
        })
        .collect()
}
