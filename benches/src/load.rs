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
use rustls::ClientConfig;
use serde::Serialize;

use crate::etcd::base64;
use crate::http::Conn;
use crate::procfs;

/// Which command the clients send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    Put,
    /// A linearizable read: the leader confirms it leads, no log slot.
    Get,
    /// A serializable read: answered from the member's own store at once.
    GetSerializable,
    Append,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::Get => "get",
            Workload::GetSerializable => "get-serializable",
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
            (Api::TwinPaxos, Workload::GetSerializable) => (
                "/client-request",
                format!(r#"{{"op":"get","key":"{key}","consistency":"serializable"}}"#),
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
            (Api::Etcd, Workload::GetSerializable) => (
                "/v3/kv/range",
                format!(
                    r#"{{"key":"{}","serializable":true}}"#,
                    base64(key.as_bytes())
                ),
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

/// Where the clients send their commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// Client `i` talks to member `i mod 3`: followers forward to the leader.
    Spread,
    /// Every client talks to the leader.
    Leader,
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
///
/// Every request sent in the counted window is timed, answered or not: a failed one (an error
/// status, a timeout, a refused or reset connection) until it failed. A server that fails
/// requests slowly cannot look faster by leaving them out, and one that fails them fast shows
/// its errors beside every latency.
#[derive(Clone, Debug)]
pub struct LoadResult {
    /// Requests answered `200`.
    pub ok: u64,
    /// Requests that failed.
    pub errors: u64,
    pub elapsed: Duration,
    /// Latencies of every request, answered or failed, in microseconds.
    pub latency: Histogram<u64>,
    /// Latencies of the failed requests alone, in microseconds.
    pub failed: Histogram<u64>,
}

impl LoadResult {
    pub fn empty() -> LoadResult {
        LoadResult {
            ok: 0,
            errors: 0,
            elapsed: Duration::ZERO,
            latency: new_histogram(),
            failed: new_histogram(),
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
        let _ = self.failed.add(&other.failed);
    }

    /// A latency quantile of every request, answered or failed, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    /// The quantiles the report shows, with the errors beside them.
    pub fn latencies(&self) -> Latencies {
        Latencies {
            p50_ms: self.quantile_ms(0.5),
            p90_ms: self.quantile_ms(0.9),
            p99_ms: self.quantile_ms(0.99),
            p999_ms: self.quantile_ms(0.999),
            errors: self.errors,
            failed_p50_ms: (self.errors > 0)
                .then(|| self.failed.value_at_quantile(0.5) as f64 / 1000.0),
        }
    }
}

/// Latency quantiles over every request of a run, answered or failed, and how many failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Latencies {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    /// Requests that failed; they are in the quantiles too.
    pub errors: u64,
    /// The median time a failed request took to fail, when any did.
    pub failed_p50_ms: Option<f64>,
}

impl Latencies {
    /// The errors as the report shows them beside a latency: `0`, or `12 (in 5001 ms)`, the
    /// median time one took to fail.
    pub fn errors_cell(&self) -> String {
        match self.failed_p50_ms {
            Some(ms) if self.errors > 0 => format!("{} (in {ms:.0} ms)", self.errors),
            _ => self.errors.to_string(),
        }
    }
}

pub fn new_histogram() -> Histogram<u64> {
    // One microsecond to one hour, three significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// One closed-loop run: `clients` clients for `warmup + duration`, client `i` talking to
/// `targets[i % targets.len()]`; only the last `duration` is counted.
#[derive(Clone, Copy, Debug)]
pub struct Closed<'a> {
    pub api: Api,
    pub targets: &'a [String],
    pub clients: usize,
    pub workload: Workload,
    pub warmup: Duration,
    pub duration: Duration,
}

/// What a load run reads from the servers when its counted window opens and when it closes.
pub trait Window: Send {
    fn open(&mut self);
    fn close(&mut self);
}

/// Two windows read together.
impl<A: Window, B: Window> Window for (A, B) {
    fn open(&mut self) {
        self.0.open();
        self.1.open();
    }

    fn close(&mut self) {
        self.0.close();
        self.1.close();
    }
}

/// What the processes `pids` spent over the counted window.
#[derive(Debug)]
pub struct SpentWindow<'a> {
    pids: &'a [u32],
    before: Spent,
    pub spent: Spent,
}

impl<'a> SpentWindow<'a> {
    pub fn new(pids: &'a [u32]) -> SpentWindow<'a> {
        SpentWindow {
            pids,
            before: Spent::default(),
            spent: Spent::default(),
        }
    }
}

impl Window for SpentWindow<'_> {
    fn open(&mut self) {
        self.before = Spent::now(self.pids);
    }

    fn close(&mut self) {
        self.spent = Spent::now(self.pids).since(self.before);
    }
}

impl Closed<'_> {
    /// Runs the clients; also returns what the processes `pids` spent during the counted window.
    pub fn run(&self, pids: &[u32]) -> (LoadResult, Spent) {
        let mut window = SpentWindow::new(pids);
        let result = self.run_with(&mut window);
        (result, window.spent)
    }

    /// Runs the clients over TLS with `tls` (plain HTTP with `None`); also returns what the
    /// processes `pids` spent during the counted window.
    pub fn run_tls(&self, pids: &[u32], tls: Option<&Arc<ClientConfig>>) -> (LoadResult, Spent) {
        let mut window = SpentWindow::new(pids);
        let result = self.run_over(&mut window, tls);
        (result, window.spent)
    }

    /// Runs the clients, reading `window` when counting starts and when it stops.
    pub fn run_with(&self, window: &mut dyn Window) -> LoadResult {
        self.run_over(window, None)
    }

    /// [`Closed::run_with`], over TLS with `tls` when given.
    fn run_over(&self, window: &mut dyn Window, tls: Option<&Arc<ClientConfig>>) -> LoadResult {
        let Closed {
            api,
            targets,
            clients,
            workload,
            warmup,
            duration,
        } = *self;
        let start = Instant::now();
        let measure_from = start + warmup;
        let stop_at = measure_from + duration;
        let results: Vec<LoadResult> = thread::scope(|scope| {
            // The meter: reads the servers when counting starts and when it stops.
            scope.spawn(|| {
                thread::sleep(measure_from.saturating_duration_since(Instant::now()));
                window.open();
                thread::sleep(stop_at.saturating_duration_since(Instant::now()));
                window.close();
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
                            let outcome = send_over(&mut conn, target, tls, path, &body);
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
        total
    }
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
pub fn send(conn: &mut Option<Conn>, target: &str, path: &str, body: &[u8]) -> Result<(), ()> {
    send_over(conn, target, None, path, body)
}

/// [`send`], a new connection being over TLS with `tls` when given.
fn send_over(
    conn: &mut Option<Conn>,
    target: &str,
    tls: Option<&Arc<ClientConfig>>,
    path: &str,
    body: &[u8],
) -> Result<(), ()> {
    if conn.is_none() {
        *conn = Some(Conn::open(target, TIMEOUT, tls).map_err(|_| ())?);
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

/// Counts and times one request, failed or not.
pub fn record(result: &mut LoadResult, outcome: Result<(), ()>, latency: Duration) {
    let micros = u64::try_from(latency.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, 3_600_000_000);
    let _ = result.latency.record(micros);
    match outcome {
        Ok(()) => result.ok += 1,
        Err(()) => {
            result.errors += 1;
            let _ = result.failed.record(micros);
            // Back off briefly, so a dead target does not make the client spin at full speed.
            thread::sleep(Duration::from_millis(10));
        }
    }
}
