//! Starts a one-member server inside the test process through the library's `run`, as a test or
//! bench that wants no child process would: it finds itself, commits commands, and stops cleanly,
//! leaving no thread behind.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use paxos_host::{Config, SHUTDOWN_GRACE};
use paxos_threaded::{Shutdown, run};

fn free_port() -> u16 {
    // rouille binds by address, so the port is picked here and released just before `run`.
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("paxos-threaded-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn post(agent: &ureq::Agent, url: &str, body: &str) -> (u16, String) {
    let mut response = agent
        .post(url)
        .content_type("application/json")
        .send(body)
        .unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

#[test]
fn a_single_member_commits_and_stops() {
    let listen = format!("127.0.0.1:{}", free_port());
    let config = Config::with_servers(vec![listen.clone()]);
    let dir = data_dir("single");
    let shutdown = Shutdown::new();
    let server = {
        let (listen, dir, shutdown) = (listen.clone(), dir.clone(), shutdown.clone());
        thread::spawn(move || run(&listen, config, None, &dir, shutdown))
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let url = format!("http://{listen}/client-request");
    // The first request may race the listener's start; retry until it is up.
    let mut answer = None;
    for _ in 0..100 {
        match agent
            .post(&url)
            .content_type("application/json")
            .send(r#"{"op":"put","key":"k","value":"v"}"#)
        {
            Ok(mut response) => {
                answer = Some((
                    response.status().as_u16(),
                    response.body_mut().read_to_string().unwrap(),
                ));
                break;
            }
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
    assert_eq!(
        answer,
        Some((
            200,
            r#"{"ok":true,"value":"v","index":1,"modified":1}"#.to_owned()
        ))
    );
    let (status, body) = post(&agent, &url, r#"{"op":"append","key":"k","value":"x"}"#);
    assert_eq!(status, 400, "{body}");
    // A get takes no slot: its index is the read index, the refused append's slot.
    let (status, body) = post(&agent, &url, r#"{"op":"get","key":"k"}"#);
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"ok":true,"value":"v","index":2,"modified":1}"#)
    );

    shutdown.cancel();
    server.join().unwrap().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn stopping_during_discovery_is_a_clean_exit() {
    let listen = format!("127.0.0.1:{}", free_port());
    // The only entry is not this server, and answers nothing: discovery would take a minute.
    let config = Config::with_servers(vec![format!("127.0.0.1:{}", free_port())]);
    let dir = data_dir("discovering");
    let shutdown = Shutdown::new();
    let server = {
        let (dir, shutdown) = (dir.clone(), shutdown.clone());
        thread::spawn(move || run(&listen, config, None, &dir, shutdown))
    };
    thread::sleep(Duration::from_millis(300));
    shutdown.cancel();
    server.join().unwrap().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Set in the process `no_thread_outlives_run` starts to run itself alone.
const ALONE: &str = "PAXOS_IN_PROCESS_ALONE";

/// The threads of this process.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// Writes `request` and reads one answer: its status line and its body (by `Content-Length`).
fn exchange(stream: &mut TcpStream, request: &str) -> (String, String) {
    stream.write_all(request.as_bytes()).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        let n = stream.read(&mut buffer).expect("read an answer");
        assert!(n > 0, "closed before the whole answer arrived");
        received.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&received).into_owned();
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let length: usize = text[..end]
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")?
                    .trim()
                    .parse()
                    .ok()
            })
            .expect("a Content-Length");
        if received.len() >= end + 4 + length {
            let status = text.lines().next().unwrap_or_default().to_owned();
            return (status, text[end + 4..end + 4 + length].to_owned());
        }
    }
}

/// Connects and asks `GET path` with keep-alive, leaving the connection open.
fn get(address: &str, path: &str) -> (TcpStream, String, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n");
    let (status, body) = exchange(&mut stream, &request);
    (stream, status, body)
}

/// Reads until the server closes the connection; what arrived, and when the end came.
fn until_closed(stream: &mut TcpStream) -> (String, Instant) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut bytes = Vec::new();
    // A reset is a close too.
    let _ = stream.read_to_end(&mut bytes);
    (String::from_utf8_lossy(&bytes).into_owned(), Instant::now())
}

/// Bytes the server has received on the connection from `client` to port `server` and not yet
/// read (the receive queue of its socket in `/proc/net/tcp`).
fn unread(server: u16, client: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port = |address: &str| u16::from_str_radix(address.rsplit(':').next()?, 16).ok();
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (local, remote, queues) = (fields.get(1)?, fields.get(2)?, fields.get(4)?);
        let ours = port(local) == Some(server) && port(remote) == Some(client);
        ours.then(|| u64::from_str_radix(queues.split(':').nth(1)?, 16).ok())
            .flatten()
    })
}

/// Polls `condition` every 10 ms until it holds; fails after 10 s.
fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// A log that keeps every line written to it, for the test to read.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn no_thread_outlives_run() {
    // The other tests of this binary start and end threads of their own meanwhile, so the count
    // is taken in a process of its own, which runs this test alone.
    if std::env::var_os(ALONE).is_none() {
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["no_thread_outlives_run", "--exact", "--test-threads=1"])
            .args(["--nocapture"])
            .env(ALONE, "1")
            .output()
            .unwrap();
        let output =
            String::from_utf8_lossy(&child.stdout) + String::from_utf8_lossy(&child.stderr);
        assert!(child.status.success(), "{output}");
        assert!(output.contains("1 passed"), "{output}");
        return;
    }
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let before = threads();

    let listen = format!("127.0.0.1:{}", free_port());
    let port = listen.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    // The second member never answers, so nothing commits: a command waits until the server
    // stops.
    let mut config =
        Config::with_servers(vec![listen.clone(), format!("127.0.0.1:{}", free_port())]);
    config.request_timeout_ms = 60_000;
    let dir = data_dir("threads");
    let shutdown = Shutdown::new();
    let server = {
        let (listen, dir, shutdown) = (listen.clone(), dir.clone(), shutdown.clone());
        thread::spawn(move || run(&listen, config, None, &dir, shutdown))
    };
    wait_for("the server found itself", || {
        TcpStream::connect(&listen).is_ok() && !get(&listen, "/status").2.contains("discovering")
    });

    // Idle: keep-alive connections, each after one answered request.
    let mut idle: Vec<TcpStream> = (0..3).map(|_| get(&listen, "/server_id").0).collect();
    // Waiting for its command to commit.
    let mut waiting = TcpStream::connect(&listen).unwrap();
    let command = r#"{"op":"put","key":"k","value":"v"}"#;
    let request = format!(
        "POST /client-request HTTP/1.1\r\nHost: {listen}\r\nContent-Length: {}\r\n\r\n{command}",
        command.len()
    );
    waiting.write_all(request.as_bytes()).unwrap();
    wait_for("the command waits", || {
        get(&listen, "/metrics")
            .2
            .contains("paxos_client_requests_waiting 1\n")
    });
    // Stalled in its body. It counts as in flight once its handler reads the body, which the
    // second part shows: the server cannot read it before it has read the whole head.
    let mut stalled = TcpStream::connect(&listen).unwrap();
    let client = stalled.local_addr().unwrap().port();
    let head =
        format!("POST /client-request HTTP/1.1\r\nHost: {listen}\r\nContent-Length: 2000\r\n\r\n");
    for part in [head + "{", "\"op\"".to_owned()] {
        stalled.write_all(part.as_bytes()).unwrap();
        wait_for("the server reads the stalled request", || {
            unread(port, client) == Some(0)
        });
    }

    let stopping = Instant::now();
    shutdown.cancel();
    for connection in &mut idle {
        let (answer, closed) = until_closed(connection);
        assert_eq!(
            answer, "",
            "an idle connection got an answer nobody asked for"
        );
        assert!(
            closed - stopping < SHUTDOWN_GRACE,
            "an idle connection waited for the grace"
        );
    }
    let (answer, answered) = until_closed(&mut waiting);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("shutting down"), "{answer}");
    assert!(
        answered - stopping < SHUTDOWN_GRACE,
        "the waiting request waited for the grace"
    );
    let (answer, closed) = until_closed(&mut stalled);
    assert_eq!(answer, "", "the stalled request was answered");
    assert!(
        closed - stopping >= SHUTDOWN_GRACE,
        "the stalled request was cut before the grace"
    );
    server.join().unwrap().unwrap();

    assert_eq!(threads(), before, "threads outlived run");
    let log = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("left=1"), "{log}");
    std::fs::remove_dir_all(&dir).unwrap();
}
