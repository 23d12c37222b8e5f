//! Starts a one-member server inside the test process through the library's `run`, as a test or
//! bench that wants no child process would: it finds itself, commits commands, and stops cleanly,
//! leaving no task behind.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use paxos_async::{Shutdown, run};
use paxos_host::{Config, SHUTDOWN_GRACE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn listener() -> (TcpListener, String) {
    // The caller binds, so port 0 works and the address is read back.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    (listener, address)
}

fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("paxos-async-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn post(client: &reqwest::Client, url: &str, body: &'static str) -> (u16, String) {
    let response = client.post(url).body(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_member_commits_and_stops() {
    let (listener, address) = listener().await;
    let config = Config::with_servers(vec![address.clone()]);
    let dir = data_dir("single");
    let shutdown = Shutdown::new();
    let server = tokio::spawn({
        let (dir, shutdown) = (dir.clone(), shutdown.clone());
        async move { run(listener, config, None, &dir, shutdown).await }
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .tls_backend_preconfigured(paxos_host::tls::client_config(None).as_ref().clone())
        .build()
        .unwrap();
    let url = format!("http://{address}/client-request");
    // The listener is bound already, so the first request cannot be refused.
    let answer = post(&client, &url, r#"{"op":"put","key":"k","value":"v"}"#).await;
    assert_eq!(
        answer,
        (
            200,
            r#"{"ok":true,"value":"v","index":1,"modified":1}"#.to_owned()
        )
    );
    let (status, body) = post(&client, &url, r#"{"op":"append","key":"k","value":"x"}"#).await;
    assert_eq!(status, 400, "{body}");
    // A get takes no slot: its index is the read index, the refused append's slot.
    let (status, body) = post(&client, &url, r#"{"op":"get","key":"k"}"#).await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"ok":true,"value":"v","index":2,"modified":1}"#)
    );

    shutdown.cancel();
    server.await.unwrap().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_during_discovery_is_a_clean_exit() {
    let (listener, _) = listener().await;
    // The only entry is not this server, and answers nothing: discovery would take a minute.
    let (elsewhere, other) = self::listener().await;
    drop(elsewhere);
    let config = Config::with_servers(vec![other]);
    let dir = data_dir("discovering");
    let shutdown = Shutdown::new();
    let server = tokio::spawn({
        let (dir, shutdown) = (dir.clone(), shutdown.clone());
        async move { run(listener, config, None, &dir, shutdown).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    shutdown.cancel();
    server.await.unwrap().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The tasks alive in this test's runtime.
fn tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Writes `request` and reads one answer: its status line and its body (by `Content-Length`).
async fn exchange(stream: &mut TcpStream, request: &str) -> (String, String) {
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        let n = stream.read(&mut buffer).await.expect("read an answer");
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
async fn get(address: &str, path: &str) -> (TcpStream, String, String) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n");
    let (status, body) = exchange(&mut stream, &request).await;
    (stream, status, body)
}

/// Reads until the server closes the connection; what arrived, and when the end came.
async fn until_closed(stream: &mut TcpStream) -> (String, Instant) {
    let mut bytes = Vec::new();
    let reading = stream.read_to_end(&mut bytes);
    // A reset is a close too.
    let _ = tokio::time::timeout(Duration::from_secs(10), reading).await;
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
async fn wait_for<F: Future<Output = bool>>(what: &str, mut condition: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
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

// One thread, so that a task's end is complete (counted, logged) before any other task runs.
#[tokio::test(flavor = "current_thread")]
async fn no_task_outlives_run() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _log = tracing::subscriber::set_default(subscriber);
    let before = tasks();

    let (listener, listen) = listener().await;
    let port = listener.local_addr().unwrap().port();
    // The second member never answers, so nothing commits: a command waits until the server
    // stops.
    let (elsewhere, other) = self::listener().await;
    drop(elsewhere);
    let mut config = Config::with_servers(vec![listen.clone(), other]);
    config.request_timeout_ms = 60_000;
    let dir = data_dir("tasks");
    let shutdown = Shutdown::new();
    let server = tokio::spawn({
        let (dir, shutdown) = (dir.clone(), shutdown.clone());
        async move { run(listener, config, None, &dir, shutdown).await }
    });
    wait_for("the server found itself", || async {
        !get(&listen, "/status").await.2.contains("discovering")
    })
    .await;

    // Idle: keep-alive connections, each after one answered request.
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(get(&listen, "/server_id").await.0);
    }
    // Waiting for its command to commit.
    let mut waiting = TcpStream::connect(&listen).await.unwrap();
    let command = r#"{"op":"put","key":"k","value":"v"}"#;
    let request = format!(
        "POST /client-request HTTP/1.1\r\nHost: {listen}\r\nContent-Length: {}\r\n\r\n{command}",
        command.len()
    );
    waiting.write_all(request.as_bytes()).await.unwrap();
    wait_for("the command waits", || async {
        get(&listen, "/metrics")
            .await
            .2
            .contains("paxos_client_requests_waiting 1\n")
    })
    .await;
    // Stalled in its body. It counts as in flight once its handler reads the body, which the
    // second part shows: the server cannot read it before it has read the whole head.
    let mut stalled = TcpStream::connect(&listen).await.unwrap();
    let client = stalled.local_addr().unwrap().port();
    let head =
        format!("POST /client-request HTTP/1.1\r\nHost: {listen}\r\nContent-Length: 2000\r\n\r\n");
    for part in [head + "{", "\"op\"".to_owned()] {
        stalled.write_all(part.as_bytes()).await.unwrap();
        wait_for("the server reads the stalled request", || async {
            unread(port, client) == Some(0)
        })
        .await;
    }

    let stopping = Instant::now();
    shutdown.cancel();
    for connection in &mut idle {
        let (answer, closed) = until_closed(connection).await;
        assert_eq!(
            answer, "",
            "an idle connection got an answer nobody asked for"
        );
        assert!(
            closed - stopping < SHUTDOWN_GRACE,
            "an idle connection waited for the grace"
        );
    }
    let (answer, answered) = until_closed(&mut waiting).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("shutting down"), "{answer}");
    assert!(
        answered - stopping < SHUTDOWN_GRACE,
        "the waiting request waited for the grace"
    );
    let (answer, closed) = until_closed(&mut stalled).await;
    assert_eq!(answer, "", "the stalled request was answered");
    assert!(
        closed - stopping >= SHUTDOWN_GRACE,
        "the stalled request was cut before the grace"
    );
    server.await.unwrap().unwrap();

    assert_eq!(tasks(), before, "tasks outlived run");
    let log = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("left=1"), "{log}");
    std::fs::remove_dir_all(&dir).unwrap();
}
