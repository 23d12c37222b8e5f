//! `paxos-bench closed`: one focused closed-loop cell on a fresh cluster, for comparing two
//! builds A B A B (point `PAXOS_TESTS_BIN_DIR` at either build's servers) or one server on
//! different CPUs (`--cpus`).

use std::time::Duration;

use paxos_tests::Runtime;

use crate::cpus::{CpuSet, LoadPinned};
use crate::load::{Api, Closed, LoadResult, Spent, Workload};

use super::{Servers, addrs, max_threads, pids};

/// What one focused cell is.
#[derive(Clone, Debug)]
pub struct Focus<'a> {
    pub runtime: Runtime,
    pub variant: Option<&'a str>,
    pub clients: usize,
    pub workload: Workload,
    pub warmup: Duration,
    pub duration: Duration,
    /// The servers' CPUs; the load generator runs on the others.
    pub cpus: Option<CpuSet>,
}

/// Runs the cell: `clients` clients sending `workload` to every member of a fresh cluster of
/// `runtime`, run as `variant` (or as designed). Returns the load's result, what the cluster
/// spent, and the most threads a member had at the end.
pub fn run(focus: &Focus<'_>) -> (LoadResult, Spent, u64) {
    let servers = Servers {
        cpus: focus.cpus.clone(),
    };
    let cluster = servers.bench_cluster(focus.runtime, focus.variant);
    let _pinned = focus.cpus.as_ref().map(LoadPinned::beside);
    let pids = pids(&cluster);
    let (result, spent) = Closed {
        api: Api::TwinPaxos,
        targets: &addrs(&cluster),
        clients: focus.clients,
        workload: focus.workload,
        warmup: focus.warmup,
        duration: focus.duration,
    }
    .run(&pids);
    (result, spent, max_threads(&pids))
}
