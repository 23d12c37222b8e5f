//! Scenarios 6 and 6b: idle keep-alive connections to one member, a follower on both servers,
//! bare or each with a watch waiting on it (see [`crate::idle`] for the ladder).

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

/// The idle-connection ladder, on each runtime.
pub fn run(plan: &Plan, servers: &Servers) -> Vec<IdleSeries> {
    climb(
        "idle connections",
        plan,
        |runtime| idle_cluster(servers, runtime),
        idle::open_idle,
    )
}

/// The same ladder with a watch waiting on every connection: room for as many watches as
/// connections, and for an hour's wait.
pub fn run_watchers(plan: &Plan, servers: &Servers) -> Vec<IdleSeries> {
    let cluster = |runtime| {
        servers
            .builder(runtime)
            .tuning("client_timeout_ms", 3_600_000)
            .tuning("max_connections", 10_000)
            .tuning("max_watches", 9_000)
            .tuning("max_watch_wait_ms", 3_600_000)
            .start()
    };
    climb("idle watchers", plan, cluster, idle::open_watch)
}

/// Climbs the ladder on a follower of a fresh cluster of each runtime, opening each
/// connection with `open`.
fn climb(
    name: &str,
    plan: &Plan,
    start: impl Fn(Runtime) -> Cluster,
    open: fn(&str, usize) -> std::io::Result<crate::http::Conn>,
) -> Vec<IdleSeries> {
    let total: usize = plan.idle_steps.len() * RUNTIMES.len();
    let mut progress = Progress::new(name, total);
    let mut series = Vec::new();
    for runtime in RUNTIMES {
        let cluster = start(runtime);
        let member = follower(&cluster);
        let target = cluster.members[member].listen.to_string();
        let Some(pid) = cluster.pid(member) else {
            continue;
        };
        let mut last_n = 0;
        let points = idle::ladder(&target, pid, &plan.idle_steps, open, |held| {
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
