//! Scenario 10: how long a cluster takes to find itself, and how long a SIGTERM takes to end a
//! follower holding idle keep-alive connections; the repetitions alternate which server goes
//! first.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::idle;
use crate::plan::Plan;
use crate::progress::Progress;

use super::{RUNTIMES, Servers, follower, turns};

/// Discovery and shutdown times of one runtime, one entry per repetition.
#[derive(Clone, Debug, Serialize)]
pub struct LifecycleRow {
    pub runtime: &'static str,
    /// From the last member's start until all three have found themselves.
    pub discovery_ms: Vec<f64>,
    /// From SIGTERM to exit, with idle connections open.
    pub shutdown_ms: Vec<f64>,
    pub shutdown_idle_connections: usize,
    /// The role of the member stopped.
    pub shutdown_role: &'static str,
    /// Whether every shutdown exited with status 0.
    pub clean_exits: bool,
}

pub fn run(plan: &Plan, servers: &Servers) -> Vec<LifecycleRow> {
    let mut progress = Progress::new("discovery, shutdown", plan.lifecycle_reps * RUNTIMES.len());
    let mut rows: Vec<LifecycleRow> = RUNTIMES
        .iter()
        .map(|r| LifecycleRow {
            runtime: r.name(),
            discovery_ms: Vec::new(),
            shutdown_ms: Vec::new(),
            shutdown_idle_connections: plan.shutdown_connections,
            shutdown_role: "follower",
            clean_exits: true,
        })
        .collect();
    for rep in 0..plan.lifecycle_reps {
        for r in turns(rep, RUNTIMES.len()) {
            let runtime = RUNTIMES[r];
            // The default retry interval: discovery time is what a user of the defaults sees.
            let mut cluster = servers
                .builder(runtime)
                .tuning("discovery_retry_ms", 1000)
                .build();
            cluster.start_all();
            let last_started = Instant::now();
            paxos_tests::wait_for("every member found itself", Duration::from_secs(60), || {
                (0..cluster.len()).all(|i| {
                    cluster
                        .status(i)
                        .is_some_and(|s| s.get("self").is_some_and(|me| !me.is_null()))
                })
            });
            rows[r]
                .discovery_ms
                .push(last_started.elapsed().as_secs_f64() * 1000.0);

            let member = follower(&cluster);
            let target = cluster.members[member].listen.to_string();
            let held: Vec<_> = (0..plan.shutdown_connections)
                .map_while(|n| idle::open_idle(&target, n).ok())
                .collect();
            let asked = Instant::now();
            let status = cluster.terminate(member, Duration::from_secs(30));
            rows[r]
                .shutdown_ms
                .push(asked.elapsed().as_secs_f64() * 1000.0);
            rows[r].clean_exits &= status.success();
            drop(held);
            progress.step(runtime.name());
        }
    }
    progress.finish();
    rows
}
