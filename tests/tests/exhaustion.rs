//! Resource exhaustion: thousands of idle and slow connections to one member must not stop it
//! from serving its peers and other clients, the server must close them on its deadlines, and
//! client requests waiting at once are capped with a clear error.

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use paxos_host::http::MAX_WAITING_CLIENTS;
use paxos_tests::fixtures::assert_error_shape;
use paxos_tests::{Cluster, Json, Runtime, json, scenarios, wait_for, wait_until};

scenarios! {
    idle_and_slow_connections,
    slow_body,
    stalled_bodies_take_no_waiting_places,
    unread_answers_time_out,
    waiting_requests_are_capped,
}

/// How many connections flood one member: half idle, half sending a head a byte a second.
const FLOOD: usize = 5_000;
/// The flooded cluster's `client_timeout_ms`: long enough to open every connection and run the
/// checks while all of them are open, short enough to keep the scenario quick.
const FLOOD_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the flood writes its slow bytes and looks for closed connections.
const SWEEP: Duration = Duration::from_millis(200);
/// A head that takes over a minute to send at a byte a second.
const SLOW_HEAD: &[u8] = b"POST /client-request HTTP/1.1\r\nHost: flood\r\n\
    Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";

fn idle_and_slow_connections(runtime: Runtime) {
    let cluster = Cluster::builder(runtime)
        .tuning("client_timeout_ms", FLOOD_TIMEOUT.as_millis() as u64)
        .start();
    let leader = cluster.wait_for_leader();
    // A follower, so that what commits through it and what it applies crosses its port twice:
    // its own forwards out, and the leader's messages in.
    let target = (leader + 1) % cluster.len();
    let other = (leader + 2) % cluster.len();
    let pid = cluster.pid(target).expect("the target runs");
    // Returns once the member holds every connection as a socket, not in its listen backlog.
    let flood = Flood::open(cluster.members[target].listen, pid);

    // (a) Client commands through the flooded member and through the others succeed.
    for i in [target, other, leader] {
        let key = format!("during-flood-{i}");
        cluster.ok(i, &json!({"op": "put", "key": key, "value": "v"}));
        let read = cluster.ok(other, &json!({"op": "get", "key": key}));
        assert_eq!(read["value"], json!("v"), "a write through member {i}");
    }
    // (b) The flooded member keeps serving its peers: it applies what commits elsewhere.
    for n in 0..5 {
        let answer = cluster.ok(
            other,
            &json!({"op": "append", "key": "peers", "value": n.to_string()}),
        );
        let index = answer["index"].as_u64().expect("an index");
        wait_for(
            "the flooded member applied a write made through another member",
            Duration::from_secs(5),
            || applied_index(&cluster, target) >= Some(index),
        );
    }
    let summary = flood.summary();
    assert_eq!(
        summary.closed.len(),
        0,
        "the server closed connections before the checks were done; they must run while all \
         {FLOOD} are open"
    );

    // (c) The server closes the slow connections at the head deadline and the idle ones at the
    // same deadline, since a keep-alive connection waits for its next head on the same clock.
    let closed = wait_until(
        "the server closed every flooding connection",
        FLOOD_TIMEOUT + Duration::from_secs(20),
        || {
            let summary = flood.summary();
            (summary.closed.len() == FLOOD).then_some(summary.closed)
        },
    );
    for conn in &closed {
        let kind = if conn.slow { "slow" } else { "idle" };
        assert!(
            conn.lived >= FLOOD_TIMEOUT - SWEEP,
            "an {kind} connection closed after {:?}, before the {FLOOD_TIMEOUT:?} deadline",
            conn.lived
        );
        assert!(
            conn.answer.is_empty(),
            "an {kind} connection was answered {:?} rather than closed",
            String::from_utf8_lossy(&conn.answer)
        );
        if conn.slow {
            assert!(
                conn.sent >= 2,
                "a slow connection sent only {} bytes",
                conn.sent
            );
        }
    }
    cluster.ok(
        target,
        &json!({"op": "put", "key": "after-flood", "value": "v"}),
    );
}

/// A head sent whole, then its body a byte at a time: the server answers `408` or closes.
fn slow_body(runtime: Runtime) {
    let timeout = Duration::from_secs(2);
    let cluster = Cluster::builder(runtime)
        .tuning("client_timeout_ms", timeout.as_millis() as u64)
        .start();
    cluster.wait_for_leader();
    // Over 1 KiB, so that the threaded server's handler reads it rather than tiny_http before
    // the handler runs.
    let body = format!(
        r#"{{"op": "put", "key": "slow", "value": "{}"}}"#,
        "x".repeat(2000)
    );
    let mut stream = TcpStream::connect(cluster.members[0].listen).unwrap();
    let head = format!(
        "POST /client-request HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.set_nonblocking(true).unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut bytes = body.bytes();
    wait_for(
        "the server answered or closed a slow body",
        timeout + Duration::from_secs(10),
        || {
            if let Some(byte) = bytes.next() {
                // The server may close as soon as it answers; later bytes then fail to send.
                let _ = stream.write(&[byte]);
            }
            read_available(&mut stream, &mut answer) || parse_answer(&answer).is_some()
        },
    );
    assert!(
        started.elapsed() >= timeout,
        "the body was refused after {:?}, before the {timeout:?} deadline",
        started.elapsed()
    );
    if !answer.is_empty() {
        let (status, json) = parse_answer(&answer).expect("a whole answer before the close");
        assert_eq!(status, 408, "{json}");
        // `errors.json` has no 408 sample: the contract names no body deadline.
        let sentence = json
            .as_object()
            .filter(|o| o.len() == 1)
            .map(|o| &o["error"]);
        assert!(sentence.is_some_and(Json::is_string), "{json}");
    }
    let read = cluster.ok(0, &json!({"op": "get", "key": "slow"}));
    assert_eq!(read["value"], json!(null), "the slow command must not run");
}

/// More clients than may wait for their commands send a head and one byte of a longer body,
/// then stall. A request counts as waiting only once its body has arrived and parsed, so the
/// member keeps serving other clients and its peers; the stalled ones end at the body deadline.
fn stalled_bodies_take_no_waiting_places(runtime: Runtime) {
    const STALLED: usize = MAX_WAITING_CLIENTS as usize + 20;
    let timeout = Duration::from_secs(15);
    let cluster = Cluster::builder(runtime)
        .tuning("client_timeout_ms", timeout.as_millis() as u64)
        .start();
    let leader = cluster.wait_for_leader();
    let target = (leader + 1) % cluster.len();
    let pid = cluster.pid(target).expect("the target runs");
    let head = "POST /client-request HTTP/1.1\r\nHost: stall\r\n\
                Content-Type: application/json\r\nContent-Length: 2000\r\n\r\n{";
    let mut stalled = connect_paced(cluster.members[target].listen, pid, STALLED);
    let started = Instant::now();
    for (stream, _) in &mut stalled {
        stream.set_nonblocking(false).unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        stream.set_nonblocking(true).unwrap();
    }
    // Whether the member has taken the stalled requests in: the threaded server reads a body
    // this long in its handler on the connection's thread, the async one in its connection's
    // task.
    wait_for(
        "the member reads every stalled body",
        Duration::from_secs(10),
        || open_sockets(pid) >= STALLED,
    );
    for n in 0..5 {
        let command = json!({"op": "append", "key": "stalled", "value": n.to_string()});
        let answer = cluster.request(target, &command);
        assert_eq!(
            answer.status, 200,
            "a whole request among stalled ones: {}",
            answer.body
        );
    }
    assert!(
        started.elapsed() < timeout,
        "the checks outlived the stalled bodies' deadline, so they proved nothing"
    );
    let waiting = metric(&cluster, target, "paxos_client_requests_waiting");
    assert_eq!(waiting, 0.0, "stalled bodies counted as waiting requests");
    // Every stalled request ends by the body deadline, answered `408` or closed.
    let mut answers = vec![Vec::new(); stalled.len()];
    let mut closed = vec![false; stalled.len()];
    wait_for(
        "every stalled request ended",
        timeout + Duration::from_secs(20),
        || {
            for (i, (stream, _)) in stalled.iter_mut().enumerate() {
                closed[i] |= read_available(stream, &mut answers[i]);
            }
            closed
                .iter()
                .zip(&answers)
                .all(|(c, a)| *c || parse_answer(a).is_some())
        },
    );
    for answer in answers.iter().filter(|a| !a.is_empty()) {
        let (status, json) = parse_answer(answer).expect("a whole answer");
        assert_eq!(status, 408, "{json}");
    }
}

/// A client pipelines requests for a large value and never reads the answers. Once the socket's
/// buffers are full the server's write cannot go on; it gives up after the client timeout and
/// closes the connection, freeing its socket (and, on threads, its thread), and serves others
/// meanwhile.
fn unread_answers_time_out(runtime: Runtime) {
    let timeout = Duration::from_secs(3);
    let cluster = Cluster::builder(runtime)
        .tuning("client_timeout_ms", timeout.as_millis() as u64)
        .start();
    let leader = cluster.wait_for_leader();
    let big = "x".repeat(500 * 1024);
    cluster.ok(leader, &json!({"op": "put", "key": "big", "value": big}));
    let address = cluster.members[leader].listen;
    let mut stream = TcpStream::connect(address).unwrap();
    let get = br#"{"op": "get", "key": "big"}"#;
    let request = format!(
        "POST /client-request HTTP/1.1\r\nHost: unread\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{}",
        get.len(),
        std::str::from_utf8(get).unwrap()
    );
    // 80 answers of 500 KiB: far more than loopback's socket buffers hold.
    stream.write_all(request.repeat(80).as_bytes()).unwrap();
    let started = Instant::now();
    let client_port = stream.local_addr().unwrap().port();
    let held = || server_side_state(address.port(), client_port) == Some(ESTABLISHED);
    assert!(held(), "the member does not hold the connection");
    cluster.ok(
        leader,
        &json!({"op": "put", "key": "meanwhile", "value": "v"}),
    );
    wait_for(
        "the member closed the connection whose answers nobody read",
        timeout + Duration::from_secs(30),
        || !held(),
    );
    assert!(
        started.elapsed() >= timeout,
        "the connection closed after {:?}, before the {timeout:?} client timeout",
        started.elapsed()
    );
    drop(stream);
    cluster.ok(leader, &json!({"op": "put", "key": "after", "value": "v"}));
}

/// The TCP state `/proc/net/tcp` gives an established connection.
const ESTABLISHED: u8 = 1;

/// The state of the server's end of the loopback connection between `server_port` and
/// `client_port`, if it still exists: a server that closed its end shows another state (say,
/// FIN-WAIT with unsent data) or none, whatever the client has yet to read.
fn server_side_state(server_port: u16, client_port: u16) -> Option<u8> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let port = |address: &str| u16::from_str_radix(address.rsplit(':').next()?, 16).ok();
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (local, remote, state) = (fields.get(1)?, fields.get(2)?, fields.get(3)?);
        let ours = port(local) == Some(server_port) && port(remote) == Some(client_port);
        ours.then(|| u8::from_str_radix(state, 16).ok()).flatten()
    })
}

/// The value of an unlabelled sample in member `i`'s `/metrics`.
fn metric(cluster: &Cluster, i: usize, name: &str) -> f64 {
    let text = cluster
        .client
        .get(&cluster.url(i, "/metrics"))
        .unwrap()
        .body;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

/// With no majority nothing commits, so client requests wait; past the cap the rest are refused
/// at once with `503` and a sentence that says so.
fn waiting_requests_are_capped(runtime: Runtime) {
    const CAP: usize = MAX_WAITING_CLIENTS as usize;
    const EXTRA: usize = 40;
    let mut cluster = Cluster::builder(runtime)
        .tuning("request_timeout_ms", 60_000)
        .start();
    let leader = cluster.wait_for_leader();
    let target = (leader + 1) % cluster.len();
    for i in 0..cluster.len() {
        if i != target {
            cluster.kill(i);
        }
    }
    let pid = cluster.pid(target).expect("the target runs");
    let request = br#"{"op": "put", "key": "capped", "value": "v"}"#;
    let head = format!(
        "POST /client-request HTTP/1.1\r\nHost: cap\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        request.len()
    );
    let mut waiting = connect_paced(cluster.members[target].listen, pid, CAP + EXTRA);
    for (stream, _) in &mut waiting {
        stream.set_nonblocking(false).unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(request).unwrap();
        stream.set_nonblocking(true).unwrap();
    }
    // Answers that come back while the request timeout has not run out are refusals.
    let mut answers = vec![Vec::new(); waiting.len()];
    let refused = wait_until(
        "the requests past the cap were refused",
        Duration::from_secs(30),
        || {
            for ((stream, _), answer) in waiting.iter_mut().zip(&mut answers) {
                read_available(stream, answer);
            }
            let refused: Vec<(u16, Json)> =
                answers.iter().filter_map(|a| parse_answer(a)).collect();
            (refused.len() >= EXTRA).then_some(refused)
        },
    );
    // The first `CAP` wait (the request timeout is far off), so exactly the rest are refused,
    // each with the overload sentence.
    assert_eq!(refused.len(), EXTRA, "{refused:?}");
    for (status, json) in &refused {
        assert_eq!(*status, 503, "{json}");
        assert_error_shape(503, json);
        let sentence = json["error"].as_str().unwrap_or_default();
        assert!(sentence.contains("overloaded"), "{json}");
    }
    // The member still answers what does not wait on the log.
    assert!(cluster.status(target).is_some(), "/status under the cap");
}

/// Reads what `stream` (non-blocking) has into `answer`; whether the server closed it.
fn read_available(stream: &mut TcpStream, answer: &mut Vec<u8>) -> bool {
    let mut buf = [0; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // A reset is a close too.
            Err(_) => return true,
        }
    }
}

/// The status and JSON body of a whole HTTP answer in `bytes`, if they hold one.
fn parse_answer(bytes: &[u8]) -> Option<(u16, Json)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, serde_json::from_str(body).ok()?))
}

fn applied_index(cluster: &Cluster, i: usize) -> Option<u64> {
    cluster.status(i)?["applied_index"].as_u64()
}

/// Opens `n` non-blocking connections to `address`, served by process `pid`, each with the time
/// it was opened, and returns once the member holds them all.
///
/// Connections go in batches, each once the member has accepted most of the one before:
/// connecting faster than the member accepts overflows its listen backlog, and each dropped
/// handshake costs its client a second before the kernel retries it.
fn connect_paced(address: SocketAddr, pid: u32, n: usize) -> Vec<(TcpStream, Instant)> {
    const BATCH: usize = 100;
    let before = open_sockets(pid);
    let mut conns = Vec::with_capacity(n);
    while conns.len() < n {
        for _ in 0..BATCH.min(n - conns.len()) {
            let i = conns.len();
            let stream = TcpStream::connect_timeout(&address, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("connection {i}: {e}"));
            stream.set_nonblocking(true).unwrap();
            conns.push((stream, Instant::now()));
        }
        wait_for(
            "the member accepted a batch of connections",
            Duration::from_secs(10),
            || open_sockets(pid) + BATCH / 2 >= before + conns.len(),
        );
    }
    // The member's own listener and peer connections are sockets too, and some of those may
    // close meanwhile, so this bound is loose by those few.
    wait_for(
        "the member accepted every connection",
        Duration::from_secs(10),
        || open_sockets(pid) >= n,
    );
    conns
}

/// The number of sockets process `pid` has open (the threaded server holds two descriptors for
/// each connection, so descriptors are not counted).
fn open_sockets(pid: u32) -> usize {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    let sockets: HashSet<String> = entries
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .filter(|target| target.starts_with("socket:"))
        .collect();
    sockets.len()
}

/// [`FLOOD`] connections to one member, half idle and half sending [`SLOW_HEAD`] a byte a
/// second, driven by one thread until dropped.
struct Flood {
    summary: Arc<Mutex<Summary>>,
    stop: Arc<AtomicBool>,
    driver: Option<JoinHandle<()>>,
}

/// What the flood saw so far.
#[derive(Clone, Debug, Default)]
struct Summary {
    closed: Vec<Closed>,
}

/// A connection the server closed.
#[derive(Clone, Debug)]
struct Closed {
    slow: bool,
    /// From connecting to seeing the close.
    lived: Duration,
    /// Bytes of [`SLOW_HEAD`] sent.
    sent: usize,
    /// Whatever the server sent before closing.
    answer: Vec<u8>,
}

/// One flooding connection.
struct Conn {
    stream: TcpStream,
    slow: bool,
    opened: Instant,
    sent: usize,
    answer: Vec<u8>,
}

impl Flood {
    /// Opens the connections to `address`, served by process `pid`, and starts driving them
    /// once the member has accepted every one.
    fn open(address: SocketAddr, pid: u32) -> Flood {
        let conns: Vec<Conn> = connect_paced(address, pid, FLOOD)
            .into_iter()
            .enumerate()
            .map(|(i, (stream, opened))| Conn {
                stream,
                slow: i % 2 == 1,
                opened,
                sent: 0,
                answer: Vec::new(),
            })
            .collect();
        let summary = Arc::new(Mutex::new(Summary::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let driver = {
            let (summary, stop) = (Arc::clone(&summary), Arc::clone(&stop));
            thread::spawn(move || drive(conns, &summary, &stop))
        };
        Flood {
            summary,
            stop,
            driver: Some(driver),
        }
    }

    fn summary(&self) -> Summary {
        self.summary.lock().unwrap().clone()
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(driver) = self.driver.take()
            && let Err(panic) = driver.join()
            && !thread::panicking()
        {
            std::panic::resume_unwind(panic);
        }
    }
}

/// Every [`SWEEP`], sends each slow connection its next byte once a second has passed since its
/// last, and records the connections the server closed.
fn drive(mut conns: Vec<Conn>, summary: &Mutex<Summary>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) && !conns.is_empty() {
        let mut i = 0;
        while i < conns.len() {
            let conn = &mut conns[i];
            let due = conn.opened + Duration::from_secs(conn.sent as u64);
            let mut closed = read_available(&mut conn.stream, &mut conn.answer);
            if !closed && conn.slow && conn.sent < SLOW_HEAD.len() && Instant::now() >= due {
                match conn.stream.write(&SLOW_HEAD[conn.sent..=conn.sent]) {
                    Ok(written) => conn.sent += written,
                    Err(_) => closed = true,
                }
            }
            if closed {
                let conn = conns.swap_remove(i);
                summary.lock().unwrap().closed.push(Closed {
                    slow: conn.slow,
                    lived: conn.opened.elapsed(),
                    sent: conn.sent,
                    answer: conn.answer,
                });
            } else {
                i += 1;
            }
        }
        thread::sleep(SWEEP);
    }
}
