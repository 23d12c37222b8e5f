//! Scenario 9: shutdown under full load. Closed-loop clients write through every member (client
//! `c` puts `0, 1, 2, ...` to its own key `s<c>` on member `c mod 3`) while the leader, on both
//! servers, gets a SIGTERM. The scenario times the leader's exit, counts what it did with the
//! requests that ended between the signal and its exit (answered, refused with a status, or cut
//! off), times how long until writes were acknowledged again, and finally reads every client's
//! key from a member left running: a value older than the last the client saw acknowledged
//! would be a lost write.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use paxos_tests::{Runtime, json};
use serde::Serialize;

use crate::http::Conn;
use crate::plan::Plan;
use crate::progress::Progress;

use super::{RUNTIMES, Servers, addrs};

/// One server's run.
#[derive(Clone, Debug, Serialize)]
pub struct ShutdownRun {
    pub runtime: &'static str,
    /// The role of the member stopped.
    pub role: &'static str,
    pub clients: usize,
    /// From SIGTERM until the process had exited.
    pub exit_ms: f64,
    pub clean_exit: bool,
    /// Requests to the stopped member that ended between the signal and its exit: answered
    /// `200`, answered with another status (`503` while stopping), or ended without an answer.
    pub grace_answered: u64,
    pub grace_refused: u64,
    pub grace_cut_off: u64,
    /// Acknowledged writes per second through all members before the signal.
    pub before_per_second: f64,
    /// From the signal until a write sent after it was acknowledged (by a member left running).
    pub writes_resumed_ms: Option<f64>,
    /// Writes acknowledged over the whole run.
    pub acknowledged: u64,
    /// Clients whose key, read at the end, holds a value older than the last acknowledged one.
    pub lost: usize,
    /// Clients whose key could not be read at the end.
    pub unread: usize,
}

/// How one request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Answered,
    Refused,
    CutOff,
}

/// One finished request.
#[derive(Clone, Copy, Debug)]
struct Event {
    member: usize,
    sent: Instant,
    ended: Instant,
    outcome: Outcome,
}

pub fn run(plan: &Plan, servers: &Servers) -> Vec<ShutdownRun> {
    let mut progress = Progress::new("shutdown under load", RUNTIMES.len());
    let mut runs = Vec::new();
    for runtime in RUNTIMES {
        runs.push(one(plan, servers, runtime));
        progress.step(runtime.name());
    }
    progress.finish();
    runs
}

fn one(plan: &Plan, servers: &Servers, runtime: Runtime) -> ShutdownRun {
    let mut cluster = servers.bench_cluster(runtime, None);
    let leader = cluster.wait_for_leader();
    let members = addrs(&cluster);
    let stop = AtomicBool::new(false);
    let clients = plan.shutdown_clients;
    let started = Instant::now();
    let mut signalled = started;
    let mut exit_ms = 0.0;
    let mut clean_exit = false;
    let per_client: Vec<(Vec<Event>, Option<u64>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let (members, stop) = (&members, &stop);
                scope.spawn(move || client(c, members, stop))
            })
            .collect();
        std::thread::sleep(plan.warmup + plan.shutdown_before);
        signalled = Instant::now();
        let status = cluster.terminate(leader, Duration::from_secs(30));
        exit_ms = signalled.elapsed().as_secs_f64() * 1000.0;
        clean_exit = status.success();
        std::thread::sleep(plan.shutdown_after);
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let exited = signalled + Duration::from_secs_f64(exit_ms / 1000.0);
    let events: Vec<&Event> = per_client.iter().flat_map(|(e, _)| e).collect();
    let in_grace = |e: &&&Event| e.member == leader && e.ended >= signalled && e.ended <= exited;
    let count = |outcome| {
        events
            .iter()
            .filter(in_grace)
            .filter(|e| e.outcome == outcome)
            .count() as u64
    };
    let measured_from = started + plan.warmup;
    let before = events
        .iter()
        .filter(|e| e.outcome == Outcome::Answered && e.ended >= measured_from)
        .filter(|e| e.ended < signalled)
        .count() as f64;
    let writes_resumed_ms = events
        .iter()
        .filter(|e| e.outcome == Outcome::Answered && e.sent > signalled)
        .map(|e| (e.ended - signalled).as_secs_f64() * 1000.0)
        .min_by(f64::total_cmp);

    // Every client's key, read through a member left running.
    let reader = (0..cluster.len()).find(|&i| i != leader).unwrap_or(0);
    let (mut lost, mut unread) = (0, 0);
    for (c, (_, last_acked)) in per_client.iter().enumerate() {
        let Some(acked) = *last_acked else {
            continue;
        };
        let answer = cluster.try_request(reader, &json!({"op": "get", "key": format!("s{c}")}));
        let value = answer
            .ok()
            .filter(|r| r.status == 200)
            .and_then(|r| r.json()["value"].as_str()?.parse::<u64>().ok());
        match value {
            Some(n) if n >= acked => {}
            Some(_) => lost += 1,
            None => unread += 1,
        }
    }
    ShutdownRun {
        runtime: runtime.name(),
        role: "leader",
        clients,
        exit_ms,
        clean_exit,
        grace_answered: count(Outcome::Answered),
        grace_refused: count(Outcome::Refused),
        grace_cut_off: count(Outcome::CutOff),
        before_per_second: before / plan.shutdown_before.as_secs_f64(),
        writes_resumed_ms,
        acknowledged: events
            .iter()
            .filter(|e| e.outcome == Outcome::Answered)
            .count() as u64,
        lost,
        unread,
    }
}

/// One client: puts `0, 1, 2, ...` to key `s<c>` on member `c mod 3` until `stop`; returns what
/// each request did and the last value acknowledged.
fn client(c: usize, members: &[String], stop: &AtomicBool) -> (Vec<Event>, Option<u64>) {
    let member = c % members.len();
    let target = &members[member];
    let mut conn: Option<Conn> = None;
    let mut events = Vec::new();
    let mut last_acked = None;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        let body = format!(r#"{{"op":"put","key":"s{c}","value":"{n}"}}"#);
        if conn.is_none() {
            conn = Conn::connect(target, Duration::from_secs(5)).ok();
        }
        let answer = match &mut conn {
            Some(open) => open.request("POST", "/client-request", body.as_bytes()),
            None => Err(std::io::Error::other("connection refused")),
        };
        let outcome = match answer {
            Ok((200, _)) => {
                last_acked = Some(n);
                Outcome::Answered
            }
            Ok(_) => Outcome::Refused,
            Err(_) => {
                conn = None;
                Outcome::CutOff
            }
        };
        events.push(Event {
            member,
            sent,
            ended: Instant::now(),
            outcome,
        });
        if outcome != Outcome::Answered {
            std::thread::sleep(Duration::from_millis(10));
        }
        n += 1;
    }
    (events, last_acked)
}
