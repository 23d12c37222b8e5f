//! Scenario 1: closed-loop throughput and latency of every cell (operation, clients, placement),
//! in rounds whose order alternates ([`super::ORDER`]); one fresh cluster per server per round.
//! The per-thread table ([`super::threads`]) is read over one of its cells.

use serde::Serialize;

use crate::load::{Api, Closed, Latencies, LoadResult, Placement, Spent, SpentWindow, Workload};
use crate::plan::Plan;
use crate::progress::Progress;

use super::threads::{ThreadTable, ThreadWindow};
use super::{RUNTIMES, Servers, addrs, pids, turns};

/// One cell of the throughput table.
#[derive(Clone, Debug, Serialize)]
pub struct ThroughputRow {
    pub runtime: &'static str,
    pub workload: Workload,
    pub clients: usize,
    pub placement: Placement,
    pub requests_per_second: f64,
    #[serde(flatten)]
    pub latency: Latencies,
    /// CPU seconds the whole cluster spent per 1,000 answered requests.
    pub cpu_seconds_per_1k: f64,
    /// Context switches of all the cluster's threads per answered request.
    pub context_switches_per_request: f64,
}

impl ThroughputRow {
    pub fn new(
        runtime: &'static str,
        (workload, clients, placement): Cell,
        result: &LoadResult,
        spent: Spent,
    ) -> ThroughputRow {
        let answered = result.ok.max(1) as f64;
        ThroughputRow {
            runtime,
            workload,
            clients,
            placement,
            requests_per_second: result.throughput(),
            latency: result.latencies(),
            cpu_seconds_per_1k: spent.cpu_seconds / (answered / 1000.0),
            context_switches_per_request: spent.context_switches as f64 / answered,
        }
    }
}

/// One cell of the throughput table: what, how many clients, sent where.
pub type Cell = (Workload, usize, Placement);

/// What scenario 1 measured: the table, and the threads of each server over one cell.
#[derive(Debug, Default)]
pub struct Throughput {
    pub rows: Vec<ThroughputRow>,
    pub threads: Vec<ThreadTable>,
}

pub fn run(plan: &Plan, servers: &Servers) -> Throughput {
    let cells: Vec<Cell> = plan
        .workloads
        .iter()
        .flat_map(|&w| {
            plan.clients
                .iter()
                .flat_map(move |&c| plan.placements.iter().map(move |&p| (w, c, p)))
        })
        .collect();
    // The cell the per-thread table is read over.
    let threads_cell: Cell = (Workload::Put, plan.threads_clients, Placement::Spread);
    let mut progress = Progress::new("throughput", cells.len() * 2 * plan.rounds);
    let mut merged: Vec<Vec<(LoadResult, Spent)>> = vec![Vec::new(); RUNTIMES.len()];
    let mut threads: Vec<Option<ThreadTable>> = vec![None; RUNTIMES.len()];
    for round in 0..plan.rounds {
        for r in turns(round, RUNTIMES.len()) {
            let runtime = RUNTIMES[r];
            progress.note(&format!("starting a {} cluster", runtime.name()));
            let cluster = servers.bench_cluster(runtime, None);
            let members = addrs(&cluster);
            let pids = pids(&cluster);
            let leader = cluster.wait_for_leader();
            for (c, &cell) in cells.iter().enumerate() {
                let (workload, clients, placement) = cell;
                let targets = match placement {
                    Placement::Spread => members.clone(),
                    Placement::Leader => vec![members[cluster.wait_for_leader()].clone()],
                };
                let load = Closed {
                    api: Api::TwinPaxos,
                    targets: &targets,
                    clients,
                    workload,
                    warmup: plan.warmup,
                    duration: plan.cell,
                };
                let (result, spent) = if cell == threads_cell {
                    let mut window = (SpentWindow::new(&pids), ThreadWindow::new(&pids, leader));
                    let result = load.run_with(&mut window);
                    let (spent, thread_window) = window;
                    let table = thread_window.table(runtime, clients, &result);
                    match &mut threads[r] {
                        Some(total) => total.merge(&table),
                        None => threads[r] = Some(table),
                    }
                    (result, spent.spent)
                } else {
                    load.run(&pids)
                };
                match merged[r].get_mut(c) {
                    Some((total, total_spent)) => {
                        total.merge(&result);
                        total_spent.add(spent);
                    }
                    None => merged[r].push((result, spent)),
                }
                progress.step(&format!(
                    "{} {} x{clients} {:?}",
                    runtime.name(),
                    workload.name(),
                    placement
                ));
            }
        }
    }
    progress.finish();
    let mut rows = Vec::new();
    for (r, runtime) in RUNTIMES.iter().enumerate() {
        for (&cell, (result, spent)) in cells.iter().zip(&merged[r]) {
            rows.push(ThroughputRow::new(runtime.name(), cell, result, *spent));
        }
    }
    Throughput {
        rows,
        threads: threads.into_iter().flatten().collect(),
    }
}

/// The `put` cell from clients on every member at `clients`, of `runtime`, if measured.
pub fn put_cell<'a>(
    rows: &'a [ThroughputRow],
    runtime: &str,
    clients: usize,
) -> Option<&'a ThroughputRow> {
    cell(rows, runtime, Workload::Put, clients)
}

/// The row of `workload` at `clients` clients spread over the members, for `runtime`.
pub fn cell<'a>(
    rows: &'a [ThroughputRow],
    runtime: &str,
    workload: Workload,
    clients: usize,
) -> Option<&'a ThroughputRow> {
    rows.iter().find(|r| {
        r.runtime == runtime
            && r.workload == workload
            && r.placement == Placement::Spread
            && r.clients == clients
    })
}
