//! Idle connections: the talk's memory chart, for our servers.
//!
//! The scenario holds N idle keep-alive connections to one member, each having sent one request
//! so the server has accepted it and holds whatever a connection costs it (a thread, a task,
//! buffers), and reads the member's memory and thread count at each N. It also times fresh
//! requests at each N: a server that is "holding" connections by no longer answering new ones
//! has not really held them. The watchers scenario climbs the same ladder with connections that
//! each wait on a watch ([`open_watch`]): idle too, but with a request in flight.

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
    mut progress: impl FnMut(usize),
) -> Vec<IdlePoint> {
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
    points
}

/// Opens one connection and has one request answered on it, leaving it open and idle.
pub fn open_idle(target: &str, _n: usize) -> std::io::Result<Conn> {
    let mut conn = Conn::connect(target, Duration::from_secs(5))?;
    match conn.get("/server_id")? {
        (200, _) => Ok(conn),
        (status, _) => Err(std::io::Error::other(format!("status {status}"))),
    }
}

/// Opens one connection as [`open_idle`] does, then leaves a watch waiting on it: of a key of
/// its own (`n`) that nobody writes, for an hour, so the member holds a waiting request per
/// connection until the ladder lets go.
pub fn open_watch(target: &str, n: usize) -> std::io::Result<Conn> {
    let mut conn = open_idle(target, n)?;
    conn.send("GET", &format!("/watch?key=watched-{n}&wait=3600"), b"")?;
    Ok(conn)
}

/// The member's `paxos_watches_waiting`, read from a fresh connection; `None` without an answer.
fn watches_waiting(target: &str) -> Option<u64> {
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
