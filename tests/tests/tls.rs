//! TLS (the config's `tls`): a cluster that speaks HTTPS to clients and between members, what it
//! refuses (plain HTTP, a client that never finishes its handshake, a member whose certificate
//! another CA signed, a certificate for another name or out of date, a client without a
//! certificate under `require_client_cert`), and bad TLS files at start. Certificates are made
//! at run time (`paxos_tests::tls`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use paxos_tests::cluster::run_to_exit;
use paxos_tests::http::ClientTls;
use paxos_tests::tempdir::TempDir;
use paxos_tests::tls::Certs;
use paxos_tests::{Client, Cluster, Config, Runtime, json, scenarios, wait_for, wait_until};

scenarios! {
    tls_cluster_serves_and_survives_a_leader_kill,
    plain_http_and_silent_clients_are_dropped,
    a_member_signed_by_another_ca_is_refused,
    bad_certificates_fail_discovery_saying_why,
    bad_tls_files_exit_2,
    require_client_cert_refuses_clients_without_one,
}

const SECRET: &str = "tls-suite-secret";
/// The head deadline these scenarios give members, which bounds a handshake.
const CLIENT_TIMEOUT_MS: u64 = 1500;
/// How long a member may take to drop a connection it should drop: the deadline and slack.
const DROP_BOUND: Duration = Duration::from_secs(10);

fn certs() -> (TempDir, Certs) {
    let dir = TempDir::new("tls-certs");
    let certs = Certs::make(dir.path());
    (dir, certs)
}

fn tls_cluster(runtime: Runtime, certs: &Certs, require_client_cert: bool) -> Cluster {
    Cluster::builder(runtime)
        .secret(SECRET)
        .tuning("client_timeout_ms", CLIENT_TIMEOUT_MS)
        .tls(certs, &certs.member, require_client_cert)
        .build()
}

/// The value of an unlabelled metric in `/metrics` of member `i`, read with `client`.
fn metric(cluster: &Cluster, client: &Client, i: usize, name: &str) -> Option<f64> {
    let response = client.get(&cluster.url(i, "/metrics")).ok()?;
    response.body.lines().find_map(|line| {
        let (metric, value) = line.split_once(' ')?;
        (metric == name).then(|| value.parse().ok()).flatten()
    })
}

fn tls_cluster_serves_and_survives_a_leader_kill(runtime: Runtime) {
    let (_dir, certs) = certs();
    let mut cluster = tls_cluster(runtime, &certs, false);
    cluster.start_all();
    let leader = cluster.wait_for_leader();
    assert!(cluster.url(leader, "/").starts_with("https://"));
    cluster.ok(leader, &json!({"op": "put", "key": "k", "value": "v1"}));
    let follower = (leader + 1) % cluster.len();
    let got = cluster.ok(follower, &json!({"op": "get", "key": "k"}));
    assert_eq!(got["value"], json!("v1"), "{got}");
    // Plain HTTP gets no answer from a TLS listener.
    let plain = Client::new(Duration::from_secs(5));
    let url = cluster
        .url(follower, "/status")
        .replacen("https://", "http://", 1);
    assert!(plain.get(&url).is_err(), "{url} answered plain HTTP");

    cluster.kill(leader);
    let next = cluster.wait_for_leader();
    assert_ne!(next, leader);
    cluster.ok(next, &json!({"op": "put", "key": "k", "value": "v2"}));
    let other = (0..cluster.len())
        .find(|&i| i != leader && i != next)
        .expect("a third member");
    let got = cluster.ok(other, &json!({"op": "get", "key": "k"}));
    assert_eq!(got["value"], json!("v2"), "{got}");
}

/// Reads from `stream` until the member closes it; returns what came and how long it took.
fn until_closed(stream: &mut TcpStream) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    stream.set_read_timeout(Some(DROP_BOUND)).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the member kept the connection open past {DROP_BOUND:?}: {e}"),
        }
    }
    (received, started.elapsed())
}

fn plain_http_and_silent_clients_are_dropped(runtime: Runtime) {
    let (_dir, certs) = certs();
    let mut cluster = tls_cluster(runtime, &certs, false);
    cluster.start_all();
    let leader = cluster.wait_for_leader();
    let i = (leader + 1) % cluster.len();
    let address = cluster.members[i].reach;
    let before = metric(
        &cluster,
        &cluster.client,
        i,
        "paxos_tls_handshake_failures_total",
    )
    .expect("the handshake failure metric");

    // Plain HTTP on the TLS port: closed at once (perhaps after a TLS alert), never answered.
    let mut plain = TcpStream::connect(address).unwrap();
    plain
        .write_all(b"GET /status HTTP/1.1\r\nHost: member\r\n\r\n")
        .unwrap();
    let (received, took) = until_closed(&mut plain);
    assert!(
        !received.starts_with(b"HTTP/1.1 200"),
        "plain HTTP was served: {}",
        String::from_utf8_lossy(&received)
    );
    assert!(took < DROP_BOUND, "plain HTTP held the connection {took:?}");

    // A client that connects and never starts its handshake: dropped at the head deadline.
    let mut silent: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(address).unwrap())
        .collect();
    let (_, took) = until_closed(&mut silent[0]);
    assert!(
        took >= Duration::from_millis(CLIENT_TIMEOUT_MS / 2),
        "a silent client was dropped after {took:?}, before the deadline"
    );
    for stream in &mut silent[1..] {
        until_closed(stream);
    }

    // The member serves on, and counted every failed handshake.
    cluster.ok(
        i,
        &json!({"op": "put", "key": "after", "value": "bad input"}),
    );
    wait_for(
        "the member counts the plain-HTTP and silent clients' handshakes",
        Duration::from_secs(10),
        || {
            metric(
                &cluster,
                &cluster.client,
                i,
                "paxos_tls_handshake_failures_total",
            )
            .is_some_and(|after| after >= before + 21.0)
        },
    );
}

fn a_member_signed_by_another_ca_is_refused(runtime: Runtime) {
    let (_dir, certs) = certs();
    let mut cluster = tls_cluster(runtime, &certs, false);
    // Member 2 trusts only the other CA, which signed its own certificate, so it finds itself;
    // the others trust only theirs.
    let stranger = json!({
        "cert": certs.stranger.cert,
        "key": certs.stranger.key,
        "ca": certs.other_ca,
    });
    let config: Config = cluster.config.clone().set("tls", stranger);
    cluster.set_member_config(2, config);
    cluster.start(0);
    cluster.start(1);
    let leader = cluster.wait_for_leader();
    cluster.start(2);
    let strangers = Client::with_tls(
        Duration::from_secs(5),
        Some(&ClientTls {
            ca: certs.other_ca.clone(),
            identity: None,
        }),
    );
    let failures = "paxos_tls_handshake_failures_total";
    // Member 2's listener sees the others refuse its certificate, and theirs see it refuse
    // theirs: the heartbeats each way fail in the handshake.
    wait_for(
        "member 2 counts failed handshakes of the others' posts",
        Duration::from_secs(20),
        || metric(&cluster, &strangers, 2, failures).is_some_and(|n| n > 0.0),
    );
    wait_for(
        "the leader counts failed handshakes of member 2's posts",
        Duration::from_secs(20),
        || metric(&cluster, &cluster.client, leader, failures).is_some_and(|n| n > 0.0),
    );
    let errors = metric(
        &cluster,
        &cluster.client,
        leader,
        "paxos_peer_send_errors_total",
    );
    assert!(errors.is_some_and(|n| n > 0.0), "{errors:?}");
    // The two that trust each other go on; member 2 never learns of a leader.
    cluster.ok(leader, &json!({"op": "put", "key": "k", "value": "v"}));
    let status = strangers
        .get(&cluster.url(2, "/status"))
        .expect("member 2 answers a client that trusts its CA")
        .json();
    assert_eq!(status["leader"], json!(null), "{status}");
}

/// Runs one member alone on `pair` until discovery gives up; returns its stderr.
fn lone_member(runtime: Runtime, certs: &Certs, pair: &paxos_tests::tls::Pair) -> String {
    let dir = TempDir::new("tls-lone");
    let port = paxos_tests::ports::free_port_on(&[std::net::Ipv4Addr::LOCALHOST]);
    let listen = format!("127.0.0.1:{port}");
    let config = Config::fast(vec![listen.clone()])
        .set("discovery_timeout_ms", 2000)
        .set("tls", certs.config(pair, false));
    let path = dir.path().join("cluster.json");
    config.write(&path);
    let data = dir.path().join("data");
    let (config_arg, data_arg) = (path.display().to_string(), data.display().to_string());
    let args = [
        "--config",
        &config_arg,
        "--listen",
        &listen,
        "--data-dir",
        &data_arg,
    ];
    let exit = run_to_exit(runtime, &args, dir.path(), Duration::from_secs(30));
    assert_eq!(exit.status.code(), Some(1), "stderr: {}", exit.stderr);
    exit.stderr
}

fn bad_certificates_fail_discovery_saying_why(runtime: Runtime) {
    let (_dir, certs) = certs();
    let wrong_name = lone_member(runtime, &certs, &certs.wrong_name);
    assert!(
        wrong_name.contains("could not find myself") && wrong_name.contains("not valid for name"),
        "{wrong_name}"
    );
    let expired = lone_member(runtime, &certs, &certs.expired);
    assert!(
        expired.contains("could not find myself") && expired.contains("expired"),
        "{expired}"
    );
}

fn bad_tls_files_exit_2(runtime: Runtime) {
    let (dir, certs) = certs();
    let run = |tls: serde_json::Value| {
        let config = Config::fast(vec!["127.0.0.1:1".to_owned()]).set("tls", tls);
        let path = dir.path().join("bad.json");
        config.write(&path);
        let config_arg = path.display().to_string();
        let args = ["--config", &config_arg, "--listen", "127.0.0.1:1"];
        let exit = run_to_exit(runtime, &args, dir.path(), Duration::from_secs(10));
        assert_eq!(exit.status.code(), Some(2), "stderr: {}", exit.stderr);
        assert_eq!(exit.stderr.trim().lines().count(), 1, "{}", exit.stderr);
        exit.stderr
    };
    let missing = run(json!({"cert": "nowhere.pem", "key": certs.member.key, "ca": certs.ca}));
    assert!(
        missing.contains("`tls.cert`") && missing.contains("nowhere.pem"),
        "{missing}"
    );
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not PEM at all\n").unwrap();
    let unparsable = run(json!({"cert": certs.member.cert, "key": garbage, "ca": certs.ca}));
    assert!(unparsable.contains("`tls.key`"), "{unparsable}");
    let mismatched = run(json!({
        "cert": certs.member.cert, "key": certs.stranger.key, "ca": certs.ca,
    }));
    assert!(
        mismatched.contains("is not the private key of"),
        "{mismatched}"
    );
}

fn require_client_cert_refuses_clients_without_one(runtime: Runtime) {
    let (_dir, certs) = certs();
    // The harness's client presents the member certificate, as members do to each other.
    let mut cluster = tls_cluster(runtime, &certs, true);
    cluster.start_all();
    let leader = cluster.wait_for_leader();
    cluster.ok(leader, &json!({"op": "put", "key": "k", "value": "v"}));
    let anonymous = Client::with_tls(
        Duration::from_secs(5),
        Some(&ClientTls {
            ca: certs.ca.clone(),
            identity: None,
        }),
    );
    let refused = anonymous.get(&cluster.url(leader, "/status"));
    assert!(
        refused.is_err(),
        "answered without a client certificate: {refused:?}"
    );
    let stranger = Client::with_tls(
        Duration::from_secs(5),
        Some(&ClientTls {
            ca: certs.ca.clone(),
            identity: Some(certs.stranger.clone()),
        }),
    );
    let refused = stranger.get(&cluster.url(leader, "/status"));
    assert!(
        refused.is_err(),
        "answered another CA's client certificate: {refused:?}"
    );
    wait_until(
        "the leader counts both refusals as failed handshakes",
        Duration::from_secs(10),
        || {
            metric(
                &cluster,
                &cluster.client,
                leader,
                "paxos_tls_handshake_failures_total",
            )
            .filter(|&n| n >= 2.0)
        },
    );
}
