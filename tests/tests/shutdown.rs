//! Graceful shutdown: SIGTERM or SIGINT ends a member promptly with status 0, even with idle
//! keep-alive connections open.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use paxos_tests::{Cluster, Runtime, json, scenarios};

scenarios! {
    graceful_shutdown_with_idle_connections,
}

/// How long the harness waits for a member to exit after the signal before it fails the test.
const GRACE: Duration = Duration::from_secs(5);
/// How long a member may take to exit with idle connections open: less than the grace it gives
/// connections in the middle of a request, since idle ones must not be waited for.
const PROMPT: Duration = paxos_host::SHUTDOWN_GRACE;

/// Sends one complete keep-alive `GET` and reads its whole answer, leaving the connection open.
fn keep_alive_get(stream: &mut TcpStream, host: &str, path: &str) -> String {
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n\r\n"
    )
    .unwrap();
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        let n = stream.read(&mut buffer).expect("read an answer");
        assert!(
            n > 0,
            "the connection closed before the whole answer arrived"
        );
        received.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&received);
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let head = text[..end].to_ascii_lowercase();
        let body = &received[end + 4..];
        if let Some(length) = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
        {
            if body.len() >= length {
                return text.into_owned();
            }
        } else if head.contains("transfer-encoding: chunked") {
            if body.ends_with(b"0\r\n\r\n") {
                return text.into_owned();
            }
        } else {
            panic!("a keep-alive answer without a length: {head}");
        }
    }
}

/// Opens `count` connections to `addr`; on every other one, one keep-alive request is answered.
fn open_connections(addr: &str, count: usize) -> Vec<TcpStream> {
    (0..count)
        .map(|c| {
            let mut stream = TcpStream::connect(addr).expect("connect");
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            if c % 2 == 0 {
                let answer = keep_alive_get(&mut stream, addr, "/status");
                assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            }
            stream
        })
        .collect()
}

fn graceful_shutdown_with_idle_connections(runtime: Runtime) {
    let mut cluster = Cluster::builder(runtime).start();
    let leader = cluster.wait_for_leader();
    let follower = (leader + 1) % cluster.len();
    let third = (leader + 2) % cluster.len();
    cluster.ok(follower, &json!({"op": "put", "key": "k", "value": "v"}));

    // A follower, with SIGTERM.
    let addr = cluster.members[follower].listen.to_string();
    let connections = open_connections(&addr, 6);
    let (status, took) = timed(|| cluster.terminate(follower, GRACE));
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
    assert!(
        took < PROMPT,
        "idle connections held up the exit for {took:?}"
    );
    drop(connections);
    // The other two still serve.
    cluster.ok(third, &json!({"op": "put", "key": "k", "value": "w"}));

    // The leader, with SIGINT, holding connections too.
    let addr = cluster.members[leader].listen.to_string();
    let connections = open_connections(&addr, 6);
    let (status, took) = timed(|| cluster.interrupt(leader, GRACE));
    assert_eq!(status.code(), Some(0), "exit status after SIGINT");
    assert!(
        took < PROMPT,
        "idle connections held up the exit for {took:?}"
    );
    drop(connections);
}

/// Runs `f` and returns what it returned and how long it took.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = std::time::Instant::now();
    let value = f();
    (value, started.elapsed())
}
