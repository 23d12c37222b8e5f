//! Starts a one-member server inside the test process through the library's `run`, as a test or
//! bench that wants no child process would: it finds itself, commits commands, and stops cleanly.

use std::path::PathBuf;
use std::time::Duration;

use paxos_async::{Shutdown, run};
use paxos_host::Config;
use tokio::net::TcpListener;

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
        async move { run(listener, config, &dir, shutdown).await }
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
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
    let (status, body) = post(&client, &url, r#"{"op":"get","key":"k"}"#).await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"ok":true,"value":"v","index":3,"modified":1}"#)
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
        async move { run(listener, config, &dir, shutdown).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    shutdown.cancel();
    server.await.unwrap().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
