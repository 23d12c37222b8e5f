//! Cancellation: clients that leave while their requests wait to commit. Whatever each runtime
//! can notice, a member must not keep what those requests held: every waiting place and every
//! descriptor comes back by the request timeout at the latest. (How much sooner each server
//! lets go is measured by the benchmark's abandoned-requests scenario, not asserted here.)

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use paxos_tests::{Cluster, Runtime, json, scenarios, wait_until};

scenarios! {
    abandoned_requests_are_freed,
}

const CLIENTS: usize = 40;
const REQUEST_TIMEOUT_MS: u64 = 2_000;
/// Descriptors the leader may open meanwhile: its peer links to the killed followers, retried.
const SLACK: usize = 6;

/// Member `i`'s metric `name` (a plain gauge or counter).
fn metric(cluster: &Cluster, i: usize, name: &str) -> Option<u64> {
    let page = cluster.client.get(&cluster.url(i, "/metrics")).ok()?;
    page.body
        .lines()
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .parse::<f64>()
                .ok()
        })
        .map(|v| v as u64)
}

/// How many descriptors process `pid` has open.
fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count())
}

fn abandoned_requests_are_freed(runtime: Runtime) {
    let mut cluster = Cluster::builder(runtime)
        .tuning("request_timeout_ms", REQUEST_TIMEOUT_MS)
        .start();
    let leader = cluster.wait_for_leader();
    cluster.ok(leader, &json!({"op": "put", "key": "before", "value": "x"}));
    // Without its followers nothing the leader proposes can commit: every put waits.
    for i in (0..cluster.len()).filter(|&i| i != leader) {
        cluster.kill(i);
    }
    let pid = cluster.pid(leader).expect("the leader runs");
    let address = cluster.members[leader].listen;
    let body = r#"{"op":"put","key":"abandoned","value":"v"}"#;
    let clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| {
            let mut stream = TcpStream::connect(address).expect("connect to the leader");
            write!(
                stream,
                "POST /client-request HTTP/1.1\r\nHost: {address}\r\nContent-Type: \
                 application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            stream
        })
        .collect();
    let waiting = "paxos_client_requests_waiting";
    wait_until(
        &format!("the leader counts {CLIENTS} requests waiting"),
        Duration::from_secs(10),
        || (metric(&cluster, leader, waiting)? == CLIENTS as u64).then_some(()),
    );
    // The descriptors of the peer links to the killed followers come and go as the leader
    // retries them, so the check counts what is released, with room for a few of those.
    let during = open_descriptors(pid);
    // Every client leaves at once, none having read an answer.
    drop(clients);
    let bound = Duration::from_millis(REQUEST_TIMEOUT_MS) + Duration::from_secs(5);
    wait_until("every waiting place is given back", bound, || {
        (metric(&cluster, leader, waiting)? == 0).then_some(())
    });
    wait_until(
        "the abandoned connections' descriptors are closed",
        bound,
        || (open_descriptors(pid) + CLIENTS <= during + SLACK).then_some(()),
    );
    // The member still serves: a read it can answer on its own.
    let read = json!({"op": "get", "key": "before", "consistency": "serializable"});
    assert_eq!(cluster.ok(leader, &read)["value"], json!("x"));
}
