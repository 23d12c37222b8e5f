//! How much of each scenario to run: the full comparison or the quick pass CI runs.

use std::time::Duration;

use crate::load::{Placement, Workload};

/// The sizes of every scenario.
#[derive(Clone, Debug)]
pub struct Plan {
    pub name: &'static str,
    pub workloads: Vec<Workload>,
    pub clients: Vec<usize>,
    pub placements: Vec<Placement>,
    /// Rounds of the scenarios that alternate their order (throughput, variants, hello,
    /// scaling, tls): see `scenario::ORDER`.
    pub rounds: usize,
    pub warmup: Duration,
    /// Counted time of one throughput cell in one round.
    pub cell: Duration,
    /// Clients of the `put` cell (spread over the members) the per-thread table is read over.
    pub threads_clients: usize,
    pub load_fractions: Vec<f64>,
    pub open_loop: Duration,
    pub open_loop_workers: usize,
    pub idle_steps: Vec<usize>,
    pub bare_steps: Vec<usize>,
    pub lifecycle_reps: usize,
    pub shutdown_connections: usize,
    /// Closed-loop clients for the variants scenario.
    pub variant_clients: usize,
    /// Closed-loop clients of the TLS rows (the 64 in both plans: the cost of TLS
    /// at the load the other rows compare at, not at a size CI picked).
    pub tls_clients: usize,
    /// Client counts of the hello-world rows.
    pub hello_clients: Vec<usize>,
    /// How many CPUs the servers get in the scaling scenario, of those that fit the machine.
    pub scaling_cpus: Vec<usize>,
    pub scaling_clients: usize,
    /// Abandoned requests: how many, the servers' request timeout, how often to look, and how
    /// long at most to go on looking once the timeout has passed.
    pub cancel_clients: usize,
    pub cancel_timeout: Duration,
    pub cancel_sample_every: Duration,
    pub cancel_linger: Duration,
    /// Shutdown under load: clients, and how long they write before the signal and after the
    /// exit.
    pub shutdown_clients: usize,
    pub shutdown_before: Duration,
    pub shutdown_after: Duration,
}

impl Plan {
    /// Every scenario at full size: about 9 minutes on 2 cores (10 with etcd).
    pub fn full() -> Plan {
        Plan {
            name: "full",
            workloads: vec![
                Workload::Put,
                Workload::Get,
                Workload::GetSerializable,
                Workload::Append,
            ],
            clients: vec![1, 16, 64, 256],
            placements: vec![Placement::Spread, Placement::Leader],
            rounds: 2,
            warmup: Duration::from_millis(500),
            cell: Duration::from_millis(2500),
            threads_clients: 64,
            load_fractions: vec![0.25, 0.5, 0.75],
            open_loop: Duration::from_secs(5),
            open_loop_workers: 64,
            idle_steps: (0..=8).map(|k| k * 1000).collect(),
            bare_steps: (0..=10).map(|k| k * 1000).collect(),
            lifecycle_reps: 3,
            shutdown_connections: 1000,
            variant_clients: 64,
            tls_clients: 64,
            hello_clients: vec![1, 64],
            scaling_cpus: vec![1, 2, 4, 8, 16, 32, 64],
            scaling_clients: 64,
            cancel_clients: 1000,
            cancel_timeout: Duration::from_secs(5),
            cancel_sample_every: Duration::from_millis(250),
            cancel_linger: Duration::from_secs(7),
            shutdown_clients: 64,
            shutdown_before: Duration::from_millis(1500),
            shutdown_after: Duration::from_millis(2500),
        }
    }

    /// Every scenario, small: about a minute, so CI keeps the benchmark from rotting.
    pub fn quick() -> Plan {
        Plan {
            name: "quick",
            workloads: vec![Workload::Put, Workload::Get, Workload::Append],
            clients: vec![1, 16],
            placements: vec![Placement::Spread],
            rounds: 1,
            warmup: Duration::from_millis(200),
            cell: Duration::from_millis(700),
            threads_clients: 16,
            load_fractions: vec![0.5],
            open_loop: Duration::from_secs(2),
            open_loop_workers: 16,
            idle_steps: vec![0, 250, 500],
            bare_steps: vec![0, 1000],
            lifecycle_reps: 1,
            shutdown_connections: 100,
            variant_clients: 16,
            tls_clients: 64,
            hello_clients: vec![1, 64],
            scaling_cpus: vec![1, 2],
            scaling_clients: 64,
            cancel_clients: 100,
            cancel_timeout: Duration::from_secs(2),
            cancel_sample_every: Duration::from_millis(250),
            cancel_linger: Duration::from_secs(1),
            shutdown_clients: 16,
            shutdown_before: Duration::from_millis(500),
            shutdown_after: Duration::from_millis(1500),
        }
    }
}
