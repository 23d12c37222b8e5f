//! Starts a one-member server inside the test process through the library's `run`, as a test or
//! bench that wants no child process would: it finds itself, commits commands, and stops cleanly.

use std::net::TcpListener;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use paxos_host::Config;
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
        thread::spawn(move || run(&listen, config, &dir, shutdown))
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
    let (status, body) = post(&agent, &url, r#"{"op":"get","key":"k"}"#);
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"ok":true,"value":"v","index":3,"modified":1}"#)
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
        thread::spawn(move || run(&listen, config, &dir, shutdown))
    };
    thread::sleep(Duration::from_millis(300));
    shutdown.cancel();
    server.join().unwrap().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
