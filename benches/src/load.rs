//! The load generator: closed-loop and open-loop clients over raw keep-alive connections.
//!
//! Closed loop: N clients, each sends a request, waits for the answer, sends the next; it finds
//! a server's throughput at that concurrency. Open loop: requests are due at a fixed rate
//! whatever the server does, and each latency is measured from the time the request was *due*,
//! not sent, so a stalled server cannot hide its stall by slowing the clients down
//! (coordinated omission).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::etcd::base64;
use crate::http::Conn;
use crate::procfs;

/// Which command the clients send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    Put,
    Get,
    Append,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::Get => "get",
            Workload::Append => "append",
        }
    }

    /// The path and body of request number `n` of client `client`. Appends rotate through keys
    /// of their own, because an append answers the whole list and a few ever-growing lists would
    /// measure JSON size instead of the server.
    fn request(self, api: Api, client: usize, n: u64) -> (&'static str, Vec<u8>) {
        let key = format!("k{}", client % 16);
        let value = format!("v{client}-{n}");
        let (path, body) = match (api, self) {
            (Api::TwinPaxos, Workload::Put) => (
                "/client-request",
                format!(r#"{{"op":"put","key":"{key}","value":"{value}"}}"#),
            ),
            (Api::TwinPaxos, Workload::Get) => (
                "/client-request",
                format!(r#"{{"op":"get","key":"{key}"}}"#),
            ),
            (Api::TwinPaxos, Workload::Append) => {
                let list = n / 100;
                let body = format!(r#"{{"op":"append","key":"a{client}-{list}","value":"{n}"}}"#);
                ("/client-request", body)
            }
            (Api::Etcd, Workload::Get) => (
                "/v3/kv/range",
                format!(r#"{{"key":"{}"}}"#, base64(key.as_bytes())),
            ),
            // etcd has no append; the reference row runs `put` and `get` only.
            (Api::Etcd, Workload::Put | Workload::Append) => (
                "/v3/kv/put",
                format!(
                    r#"{{"key":"{}","value":"{}"}}"#,
                    base64(key.as_bytes()),
                    base64(value.as_bytes())
                ),
            ),
        };
        (path, body.into_bytes())
    }
}

/// Whose API the requests speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// `POST /client-request` of `docs/api.md`.
    TwinPaxos,
    /// etcd v3's JSON gateway (`/v3/kv/put`, `/v3/kv/range`, linearizable reads by default).
    Etcd,
}

/// What one load run measured.
#[derive(Clone, Debug)]
pub struct LoadResult {
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Latencies of successful requests, in microseconds.
    pub latency: Histogram<u64>,
}

impl LoadResult {
    fn empty() -> LoadResult {
        LoadResult {
            ok: 0,
            errors: 0,
            elapsed: Duration::ZERO,
            latency: new_histogram(),
        }
    }

    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The clients' results of one run together; the caller sets how long the run took.
    fn sum(results: &[LoadResult]) -> LoadResult {
        let mut total = LoadResult::empty();
        for result in results {
            total.merge(result);
        }
        total
    }

    /// Adds another run's counts (for A B A B rounds of the same cell).
    pub fn merge(&mut self, other: &LoadResult) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
    }

    /// A latency quantile in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
}

pub fn new_histogram() -> Histogram<u64> {
    // One microsecond to one hour, three significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

const TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `clients` closed-loop clients for `warmup + duration`, client `i` talking to
/// `targets[i % targets.len()]`; only the last `duration` is counted.
///
/// Also returns what the processes `pids` spent during the counted window.
pub fn closed_loop(
    api: Api,
    targets: &[String],
    clients: usize,
    workload: Workload,
    warmup: Duration,
    duration: Duration,
    pids: &[u32],
) -> (LoadResult, Spent) {
    let start = Instant::now();
    let measure_from = start + warmup;
    let stop_at = measure_from + duration;
    let meter = || Spent::now(pids);
    let mut spent = Spent::default();
    let results: Vec<LoadResult> = thread::scope(|scope| {
        // The meter: reads what the servers spent when counting starts and when it stops.
        scope.spawn(|| {
            thread::sleep(measure_from.saturating_duration_since(Instant::now()));
            let before = meter();
            thread::sleep(stop_at.saturating_duration_since(Instant::now()));
            spent = meter().since(before);
        });
        let handles: Vec<_> = (0..clients)
            .map(|client| {
                let target = &targets[client % targets.len()];
                scope.spawn(move || {
                    let mut result = LoadResult::empty();
                    let mut conn = None;
                    let mut n = 0u64;
                    loop {
                        let sent = Instant::now();
                        if sent >= stop_at {
                            break;
                        }
                        n += 1;
                        let (path, body) = workload.request(api, client, n);
                        let outcome = send(&mut conn, target, path, &body);
                        if sent < measure_from {
                            continue;
                        }
                        record(&mut result, outcome, sent.elapsed());
                    }
                    result
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut total = LoadResult::sum(&results);
    total.elapsed = duration;
    (total, spent)
}

/// CPU time and context switches of a set of processes: a reading, or a difference of two.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Spent {
    pub cpu_seconds: f64,
    pub context_switches: u64,
}

impl Spent {
    fn now(pids: &[u32]) -> Spent {
        Spent {
            cpu_seconds: pids.iter().filter_map(|&p| procfs::cpu_seconds(p)).sum(),
            context_switches: pids
                .iter()
                .filter_map(|&p| procfs::context_switches(p))
                .sum(),
        }
    }

    fn since(self, before: Spent) -> Spent {
        Spent {
            cpu_seconds: self.cpu_seconds - before.cpu_seconds,
            context_switches: self
                .context_switches
                .saturating_sub(before.context_switches),
        }
    }

    /// Adds another window's spending (for A B A B rounds of the same cell).
    pub fn add(&mut self, other: Spent) {
        self.cpu_seconds += other.cpu_seconds;
        self.context_switches += other.context_switches;
    }
}

/// Sends `rate` requests a second for `duration` from `workers` connections, spread over
/// `targets`, measuring each latency from the moment the request was due.
pub fn open_loop(
    api: Api,
    targets: &[String],
    workers: usize,
    workload: Workload,
    rate: f64,
    duration: Duration,
) -> LoadResult {
    let total_requests = (rate * duration.as_secs_f64()).max(1.0) as u64;
    let interval = Duration::from_secs_f64(1.0 / rate.max(1e-3));
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now() + Duration::from_millis(50);
    let results: Vec<LoadResult> = thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                let target = &targets[worker % targets.len()];
                let next = Arc::clone(&next);
                scope.spawn(move || {
                    let mut result = LoadResult::empty();
                    let mut conn = None;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total_requests {
                            break;
                        }
                        let due = start + interval.mul_f64(i as f64);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            thread::sleep(wait);
                        }
                        let (path, body) = workload.request(api, worker, i);
                        let outcome = send(&mut conn, target, path, &body);
                        record(&mut result, outcome, due.elapsed());
                    }
                    result
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut total = LoadResult::sum(&results);
    total.elapsed = start.elapsed();
    total
}

/// Sends one command, reconnecting when the connection is gone. `Ok` only for a `200`.
fn send(conn: &mut Option<Conn>, target: &str, path: &str, body: &[u8]) -> Result<(), ()> {
    if conn.is_none() {
        *conn = Some(Conn::connect(target, TIMEOUT).map_err(|_| ())?);
    }
    let answer = conn.as_mut().map(|c| c.request("POST", path, body));
    match answer {
        Some(Ok((200, _))) => Ok(()),
        Some(Ok(_)) => Err(()),
        _ => {
            *conn = None;
            Err(())
        }
    }
}

fn record(result: &mut LoadResult, outcome: Result<(), ()>, latency: Duration) {
    match outcome {
        Ok(()) => {
            result.ok += 1;
            let micros = u64::try_from(latency.as_micros())
                .unwrap_or(u64::MAX)
                .max(1);
            let _ = result.latency.record(micros.min(3_600_000_000));
        }
        Err(()) => {
            result.errors += 1;
            // Back off briefly, so a dead target does not make the client spin at full speed.
            thread::sleep(Duration::from_millis(10));
        }
    }
}
