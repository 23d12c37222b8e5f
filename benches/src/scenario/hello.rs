//! Scenario 3: hello world per HTTP stack (see [`crate::hello`]), closed loop at each of the
//! plan's client counts on one server process, with the same load generator and the same
//! request bytes as the Paxos cells: what the stack and its dispatch cost before any Paxos. Each
//! round starts every stack afresh, in an order that reverses from round to round.

use serde::Serialize;

use crate::hello::{self, STACKS, Stack};
use crate::load::{Api, Closed, Latencies, LoadResult, Spent, Workload};
use crate::plan::Plan;
use crate::progress::Progress;

use super::{Servers, max_threads, turns};

/// One stack at one concurrency.
#[derive(Clone, Debug, Serialize)]
pub struct HelloRow {
    pub stack: Stack,
    /// The Paxos server whose model the stack is (`threaded` or `async`).
    pub model: &'static str,
    pub clients: usize,
    pub requests_per_second: f64,
    #[serde(flatten)]
    pub latency: Latencies,
    pub cpu_ms_per_request: f64,
    /// Context switches of the server's threads alive at the end, per answered request.
    pub context_switches_per_request: f64,
    pub threads: u64,
}

pub fn run(plan: &Plan, servers: &Servers) -> Result<Vec<HelloRow>, String> {
    let mut progress = Progress::new("hello world", STACKS.len() * plan.rounds);
    let launcher: Vec<String> = servers
        .cpus
        .as_ref()
        .map(|c| c.launcher().to_vec())
        .unwrap_or_default();
    let cells = STACKS.len() * plan.hello_clients.len();
    let mut merged: Vec<Option<(LoadResult, Spent, u64)>> = vec![None; cells];
    for round in 0..plan.rounds {
        for s in turns(round, STACKS.len()) {
            let stack = STACKS[s];
            let child = hello::Child::start(stack, &launcher)?;
            let pids = [child.pid()];
            let targets = [child.address.clone()];
            for (c, &clients) in plan.hello_clients.iter().enumerate() {
                let (result, spent) = Closed {
                    api: Api::TwinPaxos,
                    targets: &targets,
                    clients,
                    workload: Workload::Put,
                    warmup: plan.warmup,
                    duration: plan.cell,
                }
                .run(&pids);
                let threads = max_threads(&pids);
                match &mut merged[s * plan.hello_clients.len() + c] {
                    Some((total, total_spent, most)) => {
                        total.merge(&result);
                        total_spent.add(spent);
                        *most = (*most).max(threads);
                    }
                    slot @ None => *slot = Some((result, spent, threads)),
                }
            }
            progress.step(stack.name());
        }
    }
    progress.finish();
    let mut rows = Vec::new();
    for (s, stack) in STACKS.iter().enumerate() {
        for (c, &clients) in plan.hello_clients.iter().enumerate() {
            let Some((result, spent, threads)) = merged[s * plan.hello_clients.len() + c].take()
            else {
                continue;
            };
            let answered = result.ok.max(1) as f64;
            rows.push(HelloRow {
                stack: *stack,
                model: stack.model(),
                clients,
                requests_per_second: result.throughput(),
                latency: result.latencies(),
                cpu_ms_per_request: spent.cpu_seconds * 1000.0 / answered,
                context_switches_per_request: spent.context_switches as f64 / answered,
                threads,
            });
        }
    }
    Ok(rows)
}
