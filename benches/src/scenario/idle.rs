//! Scenario 6: idle keep-alive connections to one member, a follower on both servers (see
//! [`crate::idle`] for the ladder).

use paxos_tests::{Cluster, Runtime};
use serde::Serialize;

use crate::idle::{self, IdlePoint};
use crate::plan::Plan;
use crate::progress::Progress;

use super::{RUNTIMES, Servers, follower};

/// The idle-connection ladder of one runtime.
#[derive(Clone, Debug, Serialize)]
pub struct IdleSeries {
    pub runtime: &'static str,
    /// The role of the member that held the connections.
    pub role: &'static str,
    pub points: Vec<IdlePoint>,
}

/// A cluster that lets idle connections be: the default client timeout (30 s) would close the
/// first connections of the ladder before it reaches the top, and the ladder's 8,000 connections
/// and the probes beside them need room under the connection bound.
pub fn idle_cluster(servers: &Servers, runtime: Runtime) -> Cluster {
    servers
        .builder(runtime)
        .tuning("client_timeout_ms", 3_600_000)
        .tuning("max_connections", 10_000)
        .start()
}

pub fn run(plan: &Plan, servers: &Servers) -> Vec<IdleSeries> {
    let total: usize = plan.idle_steps.len() * RUNTIMES.len();
    let mut progress = Progress::new("idle connections", total);
    let mut series = Vec::new();
    for runtime in RUNTIMES {
        let cluster = idle_cluster(servers, runtime);
        let member = follower(&cluster);
        let target = cluster.members[member].listen.to_string();
        let Some(pid) = cluster.pid(member) else {
            continue;
        };
        let mut last_n = 0;
        let points = idle::ladder(&target, pid, &plan.idle_steps, |held| {
            if held >= last_n {
                progress.note(&format!("{} holding {held}", runtime.name()));
                last_n = held;
            }
        });
        for _ in &points {
            progress.step(runtime.name());
        }
        series.push(IdleSeries {
            runtime: runtime.name(),
            role: "follower",
            points,
        });
    }
    progress.finish();
    series
}
