//! Scenario 8: abandoned requests. With no majority (both followers killed, so nothing can
//! commit), N clients each send a `put` to the leader that is left and, once it waits, close
//! their connection. The scenario reads what the leader holds right after and at intervals
//! until the request timeout has passed: threads, open descriptors (one per connection still
//! held), requests still counted as waiting (`paxos_client_requests_waiting`: a handler that has
//! not ended), and resident memory. A server that notices the close drops the request at once;
//! one that finds out only when it writes the answer holds it until the timeout. The readings go
//! on until the timeout has passed and every figure is back, or for at most the plan's linger
//! more (7 s in the full plan: the threaded server's idle connection threads linger 5 s).
//!
//! At most `MAX_WAITING_CLIENTS` (480) requests wait on a member; past that a server refuses a
//! request `503` at once, before its client closes, so the table says how many were waiting.

use std::time::{Duration, Instant};

use paxos_tests::{Cluster, Runtime};
use serde::Serialize;

use crate::http::Conn;
use crate::plan::Plan;
use crate::procfs;
use crate::progress::Progress;

use super::{RUNTIMES, Servers};

/// How far from its baseline a figure may be and count as back: a few descriptors and threads
/// for the metrics reads themselves.
const SLACK: u64 = 4;

/// What the member held at one moment.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Held {
    /// Milliseconds since the clients closed their connections (negative: before).
    pub at_ms: f64,
    pub threads: u64,
    pub open_fds: u64,
    /// Client requests the member still counts as waiting (handlers that have not ended).
    pub waiting: u64,
    pub rss_kib: u64,
}

/// One server's run.
#[derive(Clone, Debug, Serialize)]
pub struct CancellationRun {
    pub runtime: &'static str,
    /// The role of the member the clients asked.
    pub role: &'static str,
    pub clients: usize,
    pub request_timeout_ms: u64,
    /// How long at most the readings went on once the timeout had passed.
    pub linger_ms: u64,
    /// From the first request sent until every client had closed.
    pub sent_to_closed_ms: f64,
    /// Before any request was sent.
    pub baseline: Held,
    /// Just before the clients closed: every request sent and waiting (or refused).
    pub before_close: Held,
    /// From the close on, at intervals until the timeout has passed.
    pub samples: Vec<Held>,
    /// When the member no longer counted any request as waiting, in ms after the close.
    pub waiting_released_ms: Option<f64>,
    /// When its open descriptors were back within a few of the baseline.
    pub fds_released_ms: Option<f64>,
    /// When its threads were back within a few of the baseline.
    pub threads_released_ms: Option<f64>,
}

pub fn run(plan: &Plan, servers: &Servers) -> Vec<CancellationRun> {
    let mut progress = Progress::new("abandoned requests", RUNTIMES.len());
    let mut runs = Vec::new();
    for runtime in RUNTIMES {
        if let Some(run) = one(plan, servers, runtime, &progress) {
            runs.push(run);
        }
        progress.step(runtime.name());
    }
    progress.finish();
    runs
}

fn one(
    plan: &Plan,
    servers: &Servers,
    runtime: Runtime,
    progress: &Progress,
) -> Option<CancellationRun> {
    let timeout_ms = plan.cancel_timeout.as_millis() as u64;
    let mut cluster = servers
        .bench_builder(runtime, None, servers.cpus.as_ref())
        .tuning("request_timeout_ms", timeout_ms)
        .start();
    let leader = cluster.wait_for_leader();
    for i in 0..cluster.len() {
        if i != leader {
            cluster.kill(i);
        }
    }
    let pid = cluster.pid(leader)?;
    let target = cluster.members[leader].listen.to_string();
    // Let the kills settle (the leader's senders find their peers gone).
    std::thread::sleep(Duration::from_millis(300));
    let baseline = held(&cluster, leader, pid, 0.0)?;

    progress.note(&format!(
        "{}: sending {} puts",
        runtime.name(),
        plan.cancel_clients
    ));
    let first_sent = Instant::now();
    let mut conns = Vec::with_capacity(plan.cancel_clients);
    for client in 0..plan.cancel_clients {
        let Ok(mut conn) = Conn::connect(&target, Duration::from_secs(5)) else {
            break;
        };
        let body = format!(r#"{{"op":"put","key":"abandoned-{client}","value":"v"}}"#);
        if conn
            .send("POST", "/client-request", body.as_bytes())
            .is_ok()
        {
            conns.push(conn);
        }
    }
    // Until the member counts every request it will keep as waiting (it refuses those past its
    // cap at once): the count stops growing.
    let mut waiting = 0;
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(100));
        let now = waiting_now(&cluster, leader).unwrap_or(0);
        if now == waiting && now > 0 {
            break;
        }
        waiting = now;
    }
    let before_close = held(&cluster, leader, pid, 0.0)?;
    drop(conns);
    let closed = Instant::now();
    let sent_to_closed_ms = (closed - first_sent).as_secs_f64() * 1000.0;

    // Until the timeout has passed and everything is back, or, at the latest, the plan's linger
    // past it (the full plan's gives idle threads time to end: tiny_http's pool keeps a thread
    // 5 s after its connection).
    let mut samples = Vec::new();
    let timed_out = first_sent + plan.cancel_timeout + Duration::from_millis(500);
    let latest = timed_out + plan.cancel_linger;
    loop {
        let at_ms = closed.elapsed().as_secs_f64() * 1000.0;
        let sample = held(&cluster, leader, pid, at_ms);
        if let Some(sample) = sample {
            samples.push(sample);
        }
        let back = sample.is_some_and(|s| {
            s.waiting == 0
                && s.open_fds <= baseline.open_fds + SLACK
                && s.threads <= baseline.threads + SLACK
        });
        let now = Instant::now();
        if sample.is_none() || now >= latest || (now >= timed_out && back) {
            break;
        }
        std::thread::sleep(plan.cancel_sample_every);
    }
    let released = |done: &dyn Fn(&Held) -> bool| -> Option<f64> {
        // The first sample from which on every sample is done.
        let last_busy = samples.iter().rposition(|s| !done(s));
        match last_busy {
            None => samples.first().map(|s| s.at_ms),
            Some(i) => samples.get(i + 1).map(|s| s.at_ms),
        }
    };
    let waiting_released_ms = released(&|s| s.waiting == 0);
    let fds_released_ms = released(&|s| s.open_fds <= baseline.open_fds + SLACK);
    let threads_released_ms = released(&|s| s.threads <= baseline.threads + SLACK);
    Some(CancellationRun {
        runtime: runtime.name(),
        role: "leader (both followers killed)",
        clients: plan.cancel_clients,
        request_timeout_ms: timeout_ms,
        linger_ms: plan.cancel_linger.as_millis() as u64,
        sent_to_closed_ms,
        baseline,
        before_close,
        samples,
        waiting_released_ms,
        fds_released_ms,
        threads_released_ms,
    })
}

/// What member `i` (process `pid`) holds now.
fn held(cluster: &Cluster, i: usize, pid: u32, at_ms: f64) -> Option<Held> {
    // Read the waiting count first, so that the metrics request's own connection has come and
    // gone (mostly) before the descriptors are counted.
    let waiting = waiting_now(cluster, i).unwrap_or(0);
    let sample = procfs::sample(pid)?;
    Some(Held {
        at_ms,
        threads: sample.threads,
        open_fds: procfs::open_fds(pid).unwrap_or(0),
        waiting,
        rss_kib: sample.rss_kib,
    })
}

/// `paxos_client_requests_waiting` from member `i`'s `/metrics`.
pub fn waiting_now(cluster: &Cluster, i: usize) -> Option<u64> {
    let response = cluster.client.get(&cluster.url(i, "/metrics")).ok()?;
    response
        .body
        .lines()
        .find_map(|l| l.strip_prefix("paxos_client_requests_waiting "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}
