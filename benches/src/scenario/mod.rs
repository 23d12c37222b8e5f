//! The scenarios: each starts real clusters of both servers, measures, and returns rows.
//!
//! Where order could favour one server (the machine warms up, the disk's cache fills), the
//! scenario runs in rounds, threaded then async then threaded then async, and merges each
//! server's rounds.

use std::time::{Duration, Instant};

use paxos_tests::{Cluster, Runtime};
use serde::Serialize;

use crate::bare::{self, BarePoint, Waiter};
use crate::etcd::Etcd;
use crate::idle::{self, IdlePoint};
use crate::load::{self, Api, LoadResult, Spent, Workload};
use crate::plan::Plan;
use crate::procfs;
use crate::progress::Progress;

pub const RUNTIMES: [Runtime; 2] = [Runtime::Threaded, Runtime::Async];

/// Where the clients send their commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// Client `i` talks to member `i mod 3`: followers forward to the leader.
    Spread,
    /// Every client talks to the leader.
    Leader,
}

/// One cell of the throughput table.
#[derive(Clone, Debug, Serialize)]
pub struct ThroughputRow {
    pub runtime: &'static str,
    pub workload: Workload,
    pub clients: usize,
    pub placement: Placement,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub errors: u64,
    /// CPU seconds the whole cluster spent per 1,000 answered requests.
    pub cpu_seconds_per_1k: f64,
    /// Context switches of all the cluster's threads per answered request.
    pub context_switches_per_request: f64,
}

impl ThroughputRow {
    fn new(
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
            p50_ms: result.quantile_ms(0.5),
            p90_ms: result.quantile_ms(0.9),
            p99_ms: result.quantile_ms(0.99),
            p999_ms: result.quantile_ms(0.999),
            errors: result.errors,
            cpu_seconds_per_1k: spent.cpu_seconds / (answered / 1000.0),
            context_switches_per_request: spent.context_switches as f64 / answered,
        }
    }
}

/// One cell of the throughput table: what, how many clients, sent where.
type Cell = (Workload, usize, Placement);

/// One open-loop run.
#[derive(Clone, Debug, Serialize)]
pub struct OpenLoopRow {
    pub runtime: &'static str,
    /// The fraction of this server's measured saturation rate.
    pub load_fraction: f64,
    pub offered_per_second: f64,
    pub answered_per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub errors: u64,
}

/// Discovery and shutdown times of one runtime, one entry per repetition.
#[derive(Clone, Debug, Serialize)]
pub struct LifecycleRow {
    pub runtime: &'static str,
    /// From the last member's start until all three have found themselves.
    pub discovery_ms: Vec<f64>,
    /// From SIGTERM to exit, with idle connections open.
    pub shutdown_ms: Vec<f64>,
    pub shutdown_idle_connections: usize,
    /// Whether every shutdown exited with status 0.
    pub clean_exits: bool,
}

/// The idle-connection ladder of one runtime.
#[derive(Clone, Debug, Serialize)]
pub struct IdleSeries {
    pub runtime: &'static str,
    pub points: Vec<IdlePoint>,
}

/// One server variant under the same load.
#[derive(Clone, Debug, Serialize)]
pub struct VariantRow {
    pub runtime: &'static str,
    /// `PAXOS_VARIANT`, or the design's default.
    pub variant: &'static str,
    pub clients: usize,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub errors: u64,
    /// CPU seconds the whole cluster spent per 1,000 answered requests.
    pub cpu_seconds_per_1k: f64,
    /// Context switches of the cluster's threads (those alive at the end) per answered request.
    pub context_switches_per_request: f64,
    /// The most threads any member had at the end of the run.
    pub threads: u64,
}

/// The variants scenario 6 compares: each server as designed, and the roads not taken.
const VARIANTS: [(Runtime, Option<&str>, &str); 5] = [
    (
        Runtime::Threaded,
        None,
        "each request on its connection's thread (as designed)",
    ),
    (
        Runtime::Threaded,
        Some("handler-pool"),
        "rouille's dispatch to a pool of 512 handler threads",
    ),
    (
        Runtime::Threaded,
        Some("per-request-threads"),
        "rouille's dispatch to a thread per request (its default)",
    ),
    (Runtime::Async, None, "multi-thread scheduler (as designed)"),
    (
        Runtime::Async,
        Some("current-thread"),
        "current-thread scheduler",
    ),
];

/// A cluster tuned for measuring: default protocol timing, the suite's quick discovery.
fn bench_cluster(runtime: Runtime) -> Cluster {
    variant_cluster(runtime, None)
}

/// A cluster that lets idle connections be: the default client timeout (30 s) would close the
/// first connections of the ladder before it reaches the top, and the ladder's 8,000 connections
/// and the probes beside them need room under the connection bound.
fn idle_cluster(runtime: Runtime) -> Cluster {
    Cluster::builder(runtime)
        .tuning("client_timeout_ms", 3_600_000)
        .tuning("max_connections", 10_000)
        .start()
}

fn variant_cluster(runtime: Runtime, variant: Option<&str>) -> Cluster {
    let builder = Cluster::builder(runtime)
        .tuning("heartbeat_ms", 100)
        .tuning("election_timeout_ms", 1000);
    match variant {
        Some(variant) => builder.env("PAXOS_VARIANT", variant),
        None => builder,
    }
    .start()
}

fn addrs(cluster: &Cluster) -> Vec<String> {
    cluster
        .members
        .iter()
        .map(|m| m.listen.to_string())
        .collect()
}

fn pids(cluster: &Cluster) -> Vec<u32> {
    (0..cluster.len()).filter_map(|i| cluster.pid(i)).collect()
}

/// Scenario 1: closed-loop throughput and latency.
pub fn throughput(plan: &Plan) -> Vec<ThroughputRow> {
    let cells: Vec<Cell> = plan
        .workloads
        .iter()
        .flat_map(|&w| {
            plan.clients
                .iter()
                .flat_map(move |&c| plan.placements.iter().map(move |&p| (w, c, p)))
        })
        .collect();
    let mut progress = Progress::new("throughput", cells.len() * 2 * plan.rounds);
    let mut merged: Vec<Vec<(LoadResult, Spent)>> = vec![Vec::new(); RUNTIMES.len()];
    for _round in 0..plan.rounds {
        for (r, &runtime) in RUNTIMES.iter().enumerate() {
            progress.note(&format!("starting a {} cluster", runtime.name()));
            let cluster = bench_cluster(runtime);
            let members = addrs(&cluster);
            let pids = pids(&cluster);
            for (c, &(workload, clients, placement)) in cells.iter().enumerate() {
                let targets = match placement {
                    Placement::Spread => members.clone(),
                    Placement::Leader => vec![members[cluster.wait_for_leader()].clone()],
                };
                let (result, spent) = load::closed_loop(
                    Api::TwinPaxos,
                    &targets,
                    clients,
                    workload,
                    plan.warmup,
                    plan.cell,
                    &pids,
                );
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
    rows
}

/// Scenario 2: open loop at fractions of each server's saturation rate. The rate is the one the
/// closed loop measured for `put` from clients on every member, at the concurrency closest to the
/// open loop's own number of connections: a rate reached with 256 connections is no saturation
/// point for 64.
pub fn open_loop(plan: &Plan, throughput: &[ThroughputRow]) -> Vec<OpenLoopRow> {
    let mut progress = Progress::new("open loop", plan.load_fractions.len() * RUNTIMES.len());
    let mut rows = Vec::new();
    for runtime in RUNTIMES {
        let saturation = throughput
            .iter()
            .filter(|r| {
                r.runtime == runtime.name()
                    && r.workload == Workload::Put
                    && r.placement == Placement::Spread
            })
            .min_by_key(|r| r.clients.abs_diff(plan.open_loop_workers))
            .map_or(0.0, |r| r.requests_per_second);
        if saturation <= 0.0 {
            continue;
        }
        let cluster = bench_cluster(runtime);
        let members = addrs(&cluster);
        for &fraction in &plan.load_fractions {
            let rate = saturation * fraction;
            let result = load::open_loop(
                Api::TwinPaxos,
                &members,
                plan.open_loop_workers,
                Workload::Put,
                rate,
                plan.open_loop,
            );
            rows.push(OpenLoopRow {
                runtime: runtime.name(),
                load_fraction: fraction,
                offered_per_second: rate,
                answered_per_second: result.ok as f64 / result.elapsed.as_secs_f64().max(1e-9),
                p50_ms: result.quantile_ms(0.5),
                p90_ms: result.quantile_ms(0.9),
                p99_ms: result.quantile_ms(0.99),
                p999_ms: result.quantile_ms(0.999),
                errors: result.errors,
            });
            progress.step(&format!("{} at {:.0}%", runtime.name(), fraction * 100.0));
        }
    }
    progress.finish();
    rows
}

/// Scenario 3: idle keep-alive connections to one member.
pub fn idle_connections(plan: &Plan) -> Vec<IdleSeries> {
    let total: usize = plan.idle_steps.len() * RUNTIMES.len();
    let mut progress = Progress::new("idle connections", total);
    let mut series = Vec::new();
    for runtime in RUNTIMES {
        let cluster = idle_cluster(runtime);
        let target = cluster.members[0].listen.to_string();
        let Some(pid) = cluster.pid(0) else {
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
            points,
        });
    }
    progress.finish();
    series
}

/// Scenario 4: N idle std threads against N idle tokio tasks, each in a fresh process.
pub fn bare(plan: &Plan) -> Result<Vec<BarePoint>, String> {
    let mut progress = Progress::new("threads vs tasks", plan.bare_steps.len() * 2);
    let mut points = Vec::new();
    for &n in &plan.bare_steps {
        for waiter in [Waiter::Threads, Waiter::Tasks] {
            points.push(bare::measure(waiter, n)?);
            progress.step(&format!("{} {n}", waiter.name()));
        }
    }
    progress.finish();
    Ok(points)
}

/// Scenario 5: discovery time and shutdown time with idle connections.
pub fn lifecycle(plan: &Plan) -> Vec<LifecycleRow> {
    let mut progress = Progress::new("discovery, shutdown", plan.lifecycle_reps * RUNTIMES.len());
    let mut rows: Vec<LifecycleRow> = RUNTIMES
        .iter()
        .map(|r| LifecycleRow {
            runtime: r.name(),
            discovery_ms: Vec::new(),
            shutdown_ms: Vec::new(),
            shutdown_idle_connections: plan.shutdown_connections,
            clean_exits: true,
        })
        .collect();
    for _ in 0..plan.lifecycle_reps {
        for (r, &runtime) in RUNTIMES.iter().enumerate() {
            // The default retry interval: discovery time is what a user of the defaults sees.
            let mut cluster = Cluster::builder(runtime)
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

            let target = cluster.members[0].listen.to_string();
            let held: Vec<_> = (0..plan.shutdown_connections)
                .map_while(|_| idle::open_idle(&target).ok())
                .collect();
            let asked = Instant::now();
            let status = cluster.terminate(0, Duration::from_secs(30));
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

/// Scenario 6: the variants that could change the answer, `put` from clients on every member.
pub fn variants(plan: &Plan) -> Vec<VariantRow> {
    let mut progress = Progress::new("variants", VARIANTS.len());
    let mut rows = Vec::new();
    for (runtime, variant, label) in VARIANTS {
        let cluster = variant_cluster(runtime, variant);
        let pids = pids(&cluster);
        let (result, spent) = load::closed_loop(
            Api::TwinPaxos,
            &addrs(&cluster),
            plan.variant_clients,
            Workload::Put,
            plan.warmup,
            plan.cell * 2,
            &pids,
        );
        let threads = pids
            .iter()
            .filter_map(|&pid| procfs::sample(pid))
            .map(|s| s.threads)
            .max()
            .unwrap_or(0);
        let answered = result.ok.max(1) as f64;
        rows.push(VariantRow {
            runtime: runtime.name(),
            variant: label,
            clients: plan.variant_clients,
            requests_per_second: result.throughput(),
            p50_ms: result.quantile_ms(0.5),
            p99_ms: result.quantile_ms(0.99),
            p999_ms: result.quantile_ms(0.999),
            errors: result.errors,
            cpu_seconds_per_1k: spent.cpu_seconds / (answered / 1000.0),
            context_switches_per_request: spent.context_switches as f64 / answered,
            threads,
        });
        progress.step(label);
    }
    progress.finish();
    rows
}

/// Scenario 8: the same `put` and `get` cells against a 3-member etcd, when one can be started.
/// Returns no rows when `etcd` is not installed.
pub fn etcd_reference(plan: &Plan) -> Result<Vec<ThroughputRow>, String> {
    let Some(etcd) = Etcd::start()? else {
        eprintln!("etcd reference     skipped: no `etcd` on the PATH (Debian: etcd-server)");
        return Ok(Vec::new());
    };
    let workloads = [Workload::Put, Workload::Get];
    let mut progress = Progress::new("etcd reference", workloads.len() * plan.clients.len());
    let pids = etcd.pids();
    let mut rows = Vec::new();
    for workload in workloads {
        for &clients in &plan.clients {
            let duration = plan.cell * plan.rounds as u32;
            let (result, spent) = load::closed_loop(
                Api::Etcd,
                &etcd.clients,
                clients,
                workload,
                plan.warmup,
                duration,
                &pids,
            );
            let cell = (workload, clients, Placement::Spread);
            rows.push(ThroughputRow::new("etcd", cell, &result, spent));
            progress.step(&format!("etcd {} x{clients}", workload.name()));
        }
    }
    progress.finish();
    Ok(rows)
}

/// One focused closed-loop run (`paxos-bench closed`): a fresh cluster of `runtime`, run as
/// `variant` (or as designed), and `clients` clients sending `workload` to every member.
pub fn focused(
    runtime: Runtime,
    variant: Option<&str>,
    clients: usize,
    workload: Workload,
    warmup: Duration,
    duration: Duration,
) -> (LoadResult, Spent, u64) {
    let cluster = variant_cluster(runtime, variant);
    let pids = pids(&cluster);
    let (result, spent) = load::closed_loop(
        Api::TwinPaxos,
        &addrs(&cluster),
        clients,
        workload,
        warmup,
        duration,
        &pids,
    );
    let threads = pids
        .iter()
        .filter_map(|&pid| procfs::sample(pid))
        .map(|s| s.threads)
        .max()
        .unwrap_or(0);
    (result, spent, threads)
}
