//! Idle connections: the talk's memory chart, for our servers.
//!
//! The scenario holds N idle keep-alive connections to one member, each having sent one request
//! so the server has accepted it and holds whatever a connection costs it (a thread, a task,
//! buffers), and reads the member's memory and thread count at each N. It also times fresh
//! requests at each N: a server that is "holding" connections by no longer answering new ones
//! has not really held them. The watchers scenario climbs the same ladder with connections that
//! each wait on a watch of one key ([`open_watch`]): idle too, but with a request in flight, all
//! answered by one write ([`fan_out`]).

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::http::Conn;
use crate::procfs::{self, ProcSample, Resident};

/// One step of the idle-connection ladder.
#[derive(Clone, Debug, Serialize)]
pub struct IdlePoint {
    /// Connections requested at this step.
    pub n: usize,
    /// Connections actually open and answered at this step.
    pub held: usize,
    pub sample: ProcSample,
    /// The resident memory by kind (thread stacks, heap, the rest).
    pub resident: Resident,
    /// Median latency of fresh requests made while the connections were held, or `None` when
    /// no fresh request was answered.
    pub fresh_request_ms: Option<f64>,
    /// The member's `paxos_watches_waiting` at this step.
    pub watching: Option<u64>,
}

/// Climbs the ladder `steps` against `target`, served by process `pid`. Stops early, keeping
/// what it measured, when the server stops taking connections.
pub fn ladder(
    target: &str,
    pid: u32,
    steps: &[usize],
    open: impl Fn(&str, usize) -> std::io::Result<Conn>,
    progress: impl FnMut(usize),
) -> Vec<IdlePoint> {
    climb(target, pid, steps, open, progress).0
}

/// [`ladder`], handing back the connections still held at the top.
pub fn climb(
    target: &str,
    pid: u32,
    steps: &[usize],
    open: impl Fn(&str, usize) -> std::io::Result<Conn>,
    mut progress: impl FnMut(usize),
) -> (Vec<IdlePoint>, Vec<Conn>) {
    let mut conns: Vec<Conn> = Vec::new();
    let mut points = Vec::new();
    for &n in steps {
        let mut failed = false;
        while conns.len() < n {
            match open(target, conns.len()) {
                Ok(conn) => conns.push(conn),
                Err(_) => {
                    failed = true;
                    break;
                }
            }
            if conns.len().is_multiple_of(250) {
                progress(conns.len());
            }
        }
        // Every held connection has had one request answered, so the server has set it up
        // completely: the sample needs no settling time.
        let Some(sample) = procfs::sample(pid) else {
            break;
        };
        points.push(IdlePoint {
            n,
            held: conns.len(),
            sample,
            resident: procfs::resident(pid).unwrap_or_default(),
            fresh_request_ms: fresh_latency_ms(target),
            watching: watches_waiting(target),
        });
        progress(conns.len());
        if failed {
            break;
        }
    }
    (points, conns)
}

/// Opens one connection and has one request answered on it, leaving it open and idle.
pub fn open_idle(target: &str, _n: usize) -> std::io::Result<Conn> {
    let mut conn = Conn::connect(target, Duration::from_secs(5))?;
    match conn.get("/server_id")? {
        (200, _) => Ok(conn),
        (status, _) => Err(std::io::Error::other(format!("status {status}"))),
    }
}

/// The key every watcher waits on; nothing else writes it.
pub const WATCHED: &str = "watched";

/// Opens one connection as [`open_idle`] does, then leaves a watch of [`WATCHED`] waiting on it
/// for up to an hour, so the member holds a waiting request per connection until one write
/// answers them all.
pub fn open_watch(target: &str, n: usize) -> std::io::Result<Conn> {
    let mut conn = open_idle(target, n)?;
    conn.send("GET", &format!("/watch?key={WATCHED}&wait=3600"), b"")?;
    Ok(conn)
}

/// How long the watchers took to get their answers after one write of their key.
#[derive(Clone, Debug, Serialize)]
pub struct Fanout {
    pub watchers: usize,
    /// Watchers whose answer said the key changed.
    pub answered: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Calls `write` (one write of the watched key), then reads every watcher's answer on
/// [`READERS`] threads, each reading its share of the connections in turn: a watcher's time is
/// when its answer was read, at most a little after it arrived.
pub fn fan_out(conns: Vec<Conn>, write: impl FnOnce()) -> Fanout {
    const READERS: usize = 8;
    let watchers = conns.len();
    let mut shares: Vec<Vec<Conn>> = (0..READERS).map(|_| Vec::new()).collect();
    for (i, conn) in conns.into_iter().enumerate() {
        shares[i % READERS].push(conn);
    }
    let start = Instant::now();
    let mut times: Vec<Option<f64>> = std::thread::scope(|scope| {
        let readers: Vec<_> = shares
            .into_iter()
            .map(|share| {
                scope.spawn(move || {
                    share
                        .into_iter()
                        .map(|mut conn| {
                            let changed = match conn.read_response() {
                                Ok((200, body)) => {
                                    serde_json::from_slice::<serde_json::Value>(&body)
                                        .is_ok_and(|answer| answer["changed"] == true)
                                }
                                _ => false,
                            };
                            changed.then(|| start.elapsed().as_secs_f64() * 1000.0)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        write();
        readers
            .into_iter()
            .flat_map(|r| r.join().expect("a watch reader"))
            .collect()
    });
    times.retain(Option::is_some);
    let mut times: Vec<f64> = times.into_iter().flatten().collect();
    times.sort_by(f64::total_cmp);
    let at = |q: f64| {
        times
            .get(((times.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0.0)
    };
    Fanout {
        watchers,
        answered: times.len(),
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: times.last().copied().unwrap_or(0.0),
    }
}

/// The member's `paxos_watches_waiting`, read from a fresh connection; `None` without an answer.
pub fn watches_waiting(target: &str) -> Option<u64> {
    let mut conn = Conn::connect(target, Duration::from_secs(5)).ok()?;
    let (200, body) = conn.get("/metrics").ok()? else {
        return None;
    };
    let text = String::from_utf8(body).ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix("paxos_watches_waiting ")?
            .trim()
            .parse()
            .ok()
    })
}

/// The median of a few fresh requests (new connection, one read command each).
fn fresh_latency_ms(target: &str) -> Option<f64> {
    let mut times: Vec<f64> = (0..9)
        .filter_map(|_| {
            let start = Instant::now();
            let mut conn = Conn::connect(target, Duration::from_secs(5)).ok()?;
            match conn.request("POST", "/client-request", br#"{"op":"get","key":"idle"}"#) {
                Ok((200, _)) => Some(start.elapsed().as_secs_f64() * 1000.0),
                _ => None,
            }
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times.get(times.len() / 2).copied()
}
