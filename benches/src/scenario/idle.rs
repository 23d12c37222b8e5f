//! Scenarios 6 and 6b: idle keep-alive connections to one member, a follower on both servers,
//! bare or each with a watch waiting on it (see [`crate::idle`] for the ladder), and 6b's
//! watchers spread over the three members (see [`crate::spread`]).

use paxos_tests::{Cluster, Runtime, json};
use serde::Serialize;

use crate::idle::{self, Fanout, IdlePoint};
use crate::load::{Api, Closed, Workload};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::spread::{self, SPREAD_WATCHED, Spread};

use super::{RUNTIMES, Servers, addrs, follower, pids};

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

/// The idle-connection ladder on a follower of a fresh cluster of each runtime.
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
        let points = idle::ladder(&target, pid, &plan.idle_steps, idle::open_idle, |held| {
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

/// The watchers ladder of one runtime, and what the watchers cost the writes and one write
/// took to reach them all.
#[derive(Clone, Debug, Serialize)]
pub struct WatchSeries {
    pub ladder: IdleSeries,
    /// `put` at [`Plan::variant_clients`] clients spread over the members with no watcher
    /// waiting, the mean of a run before the ladder and one after the fan-out (so that a drift
    /// of the machine between them lands on both sides of the ratio), and with every watcher of
    /// the top step waiting.
    pub put_without: f64,
    pub put_with: f64,
    /// One write of the watched key, with every watcher of the top step waiting.
    pub fanout: Fanout,
    /// As many watchers again, spread evenly over the three members of a fresh cluster (whose
    /// memory no earlier watcher has grown), and one write of theirs.
    pub spread: Option<Spread>,
}

/// A cluster that lets watchers wait: as [`idle_cluster`], with room for as many watches as
/// connections, and for an hour's wait.
fn watch_cluster(servers: &Servers, runtime: Runtime) -> Cluster {
    servers
        .builder(runtime)
        .tuning("client_timeout_ms", 3_600_000)
        .tuning("max_connections", 10_000)
        .tuning("max_watches", 9_000)
        .tuning("max_watch_wait_ms", 3_600_000)
        .start()
}

/// The same ladder with a watch of one key waiting on every connection (room for as many
/// watches as connections, and for an hour's wait); then `put` throughput with them waiting,
/// against none, and one write of their key; then as many watchers of another key spread over
/// the three members, and one write of that.
pub fn run_watchers(plan: &Plan, servers: &Servers) -> Vec<WatchSeries> {
    let mut progress = Progress::new("idle watchers", plan.idle_steps.len() * RUNTIMES.len());
    let mut series = Vec::new();
    for runtime in RUNTIMES {
        let cluster = watch_cluster(servers, runtime);
        let member = follower(&cluster);
        let target = cluster.members[member].listen.to_string();
        let Some(pid) = cluster.pid(member) else {
            continue;
        };
        let (members, processes) = (addrs(&cluster), pids(&cluster));
        let puts = || {
            let load = Closed {
                api: Api::TwinPaxos,
                targets: &members,
                clients: plan.variant_clients,
                workload: Workload::Put,
                warmup: plan.warmup,
                duration: plan.cell,
            };
            load.run(&processes).0.throughput()
        };
        let before = puts();
        let (points, conns) =
            idle::climb(&target, pid, &plan.idle_steps, idle::open_watch, |held| {
                progress.note(&format!("{} watching {held}", runtime.name()));
            });
        for _ in &points {
            progress.step(runtime.name());
        }
        let put_with = puts();
        let leader = cluster.wait_for_leader();
        let write = json!({"op": "put", "key": idle::WATCHED, "value": "changed"});
        let top = conns.len();
        let fanout = idle::fan_out(conns, || {
            cluster.ok(leader, &write);
        });
        let put_without = (before + puts()) / 2.0;
        drop(cluster);
        progress.note(&format!("{} watching {top} over three", runtime.name()));
        let cluster = watch_cluster(servers, runtime);
        let (leader, targets, processes) =
            (cluster.wait_for_leader(), addrs(&cluster), pids(&cluster));
        let write = json!({"op": "put", "key": SPREAD_WATCHED, "value": "changed"});
        let spread = spread::spread(&targets, &processes, top, || {
            cluster.ok(leader, &write);
        });
        series.push(WatchSeries {
            ladder: IdleSeries {
                runtime: runtime.name(),
                role: "follower",
                points,
            },
            put_without,
            put_with,
            fanout,
            spread,
        });
    }
    progress.finish();
    series
}
