//! Self-discovery: members find themselves among aliased config entries whatever the start order,
//! and a member that is not in its config gives up in time, saying what it tried.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use paxos_tests::cluster::run_to_exit;
use paxos_tests::fixtures::assert_status_shape;
use paxos_tests::gate::Gate;
use paxos_tests::ports::free_port;
use paxos_tests::tempdir::TempDir;
use paxos_tests::{Client, Cluster, Config, Runtime, json, scenarios, shuffled, wait_until};

scenarios! {
    discovery_with_aliases,
    requests_wait_for_discovery,
    discovery_failure,
}

fn discovery_with_aliases(runtime: Runtime) {
    let mut cluster = Cluster::builder(runtime)
        .hosts(&["localhost", "127.0.0.1", "127.0.0.2"])
        // The early request must outlive the wait for a second member.
        .tuning("request_timeout_ms", 15_000)
        .build();
    let order = shuffled(cluster.len());
    eprintln!("start order: {order:?}");
    let [first, second, late] = order[..] else {
        unreachable!()
    };

    // The first member alone: it can answer HTTP, but it cannot commit anything. The early
    // request is sent from before the member starts, again and again until its connection is
    // accepted, so it arrives as early as possible; it must wait until a majority exists.
    // (`requests_wait_for_discovery` shows a request waiting for discovery itself.) It is
    // exactly-once, so a retry after an unclear failure cannot apply it twice.
    let early_url = cluster.url(first, "/client-request");
    let early_client = cluster.client.clone();
    let t0 = Instant::now();
    let early = std::thread::spawn(move || {
        let command = json!({"op": "append", "key": "early", "value": "x",
                             "client_id": "early", "seq": 1});
        loop {
            match early_client.post_json(&early_url, &command) {
                Ok(answer) => return (Ok(answer), t0.elapsed()),
                Err(e) if t0.elapsed() > Duration::from_secs(10) => return (Err(e), t0.elapsed()),
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    });
    cluster.start(first);
    let role_when_asked = wait_until(
        "the first member answers /status",
        Duration::from_secs(10),
        || cluster.status(first).map(|s| s["role"].clone()),
    );
    eprintln!(
        "the early request goes to member {first}, whose role was {role_when_asked} right after"
    );

    // The second member a second later: now a majority exists.
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !early.is_finished(),
        "the early request was answered before a majority existed: {:?}",
        early.join().unwrap().0
    );
    let second_started = t0.elapsed();
    cluster.start(second);
    let (answer, waited) = early.join().unwrap();
    let answer = answer.unwrap_or_else(|e| panic!("the early request failed: {e}"));
    assert_eq!(
        (answer.status, answer.json()["value"].clone()),
        (200, json!(["x"])),
        "the early request (sent while the member's role was {role_when_asked:?}) was not served: {}",
        answer.body
    );
    assert!(
        waited >= second_started,
        "the early request was answered after {waited:?}, before a second member started"
    );

    // The last member seconds late.
    std::thread::sleep(Duration::from_secs(2));
    cluster.start(late);
    let leader = cluster.wait_for_leader();
    let target = cluster.commit_index(leader).expect("the leader's status");
    cluster.wait_for_commit(late, target, Duration::from_secs(20));

    // Every member found itself under its own spelling, and all serve.
    let servers: Vec<String> = cluster.members.iter().map(|m| m.entry.clone()).collect();
    for i in 0..cluster.len() {
        let status = cluster.status(i).expect("status");
        assert_status_shape(&status);
        assert_eq!(
            status["self"],
            json!(cluster.members[i].entry),
            "member {i}: {status}"
        );
        assert_eq!(status["servers"], json!(servers), "member {i}: {status}");
        assert_eq!(status["runtime"], json!(runtime.name()));
        assert_eq!(
            cluster.ok(
                i,
                &json!({"op": "append", "key": "early", "value": format!("m{i}")})
            )["value"]
                .as_array()
                .map(Vec::len),
            Some(i + 2),
            "member {i} appended to the wrong list"
        );
    }
    let ids: std::collections::HashSet<String> = (0..cluster.len())
        .map(|i| {
            cluster.status(i).unwrap()["server_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), cluster.len(), "members share a server id");
}

/// A client request that arrives while its member still looks for itself waits for discovery,
/// as in the seed talk, and is served once the member has found itself. The member's config
/// entry is a closed [`Gate`], so discovery cannot end until the scenario opens it: the request
/// provably arrived, and waited, during discovery.
fn requests_wait_for_discovery(runtime: Runtime) {
    let dir = TempDir::new("discovery-wait");
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut gate = Gate::closed(listen);
    let config = Config::fast(vec![gate.entry()]).set("request_timeout_ms", 15_000);
    let config_path = dir.path().join("cluster.json");
    config.write(&config_path);
    let data_dir = dir.path().join("data");
    let child = std::process::Command::new(runtime.binary())
        .args(["--config", config_path.to_str().unwrap()])
        .args(["--listen", &listen.to_string()])
        .args(["--data-dir", data_dir.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _member = KillOnDrop(child);
    let client = Client::default();
    let url = |path: &str| format!("http://{listen}{path}");
    let role = || Some(client.get(&url("/status")).ok()?.json()["role"].clone());
    let discovering = json!("discovering");
    wait_until("the member serves /status", Duration::from_secs(10), role);
    let early = {
        let (client, url) = (client.clone(), url("/client-request"));
        std::thread::spawn(move || {
            client.post_json(&url, &json!({"op": "put", "key": "early", "value": "x"}))
        })
    };
    wait_until(
        "the early request waits in the member",
        Duration::from_secs(10),
        || (waiting(&client, &url("/metrics")) == Some(1.0)).then_some(()),
    );
    assert_eq!(
        role(),
        Some(discovering),
        "the member found itself through a closed gate"
    );
    assert!(
        !early.is_finished(),
        "the early request was answered during discovery"
    );
    gate.open();
    let answer = early
        .join()
        .unwrap()
        .expect("an answer to the early request");
    assert_eq!(answer.status, 200, "the early request: {}", answer.body);
    let status = client.get(&url("/status")).unwrap().json();
    assert_eq!(status["self"], json!(gate.entry()), "{status}");
}

/// `paxos_client_requests_waiting` in the `/metrics` at `url`.
fn waiting(client: &Client, url: &str) -> Option<f64> {
    let text = client.get(url).ok()?.body;
    text.lines().find_map(|l| {
        l.strip_prefix("paxos_client_requests_waiting ")?
            .parse()
            .ok()
    })
}

/// A member process run outside the cluster harness, killed when the scenario ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn discovery_failure(runtime: Runtime) {
    let dir = TempDir::new("discovery-failure");
    // Two entries nobody listens on, and one that accepts connections but never answers: none
    // of them is the server.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let entries = vec![
        format!("127.0.0.1:{}", free_port()),
        format!("localhost:{}", free_port()),
        format!("127.0.0.1:{}", silent.local_addr().unwrap().port()),
    ];
    let timeout_ms = 2_000;
    let config = Config::fast(entries.clone())
        .set("discovery_timeout_ms", timeout_ms)
        .set("discovery_retry_ms", 200);
    let config_path = dir.path().join("cluster.json");
    config.write(&config_path);
    let listen = format!("127.0.0.1:{}", free_port());
    let data_dir = dir.path().join("data");
    let exit = run_to_exit(
        runtime,
        &[
            "--config",
            config_path.to_str().unwrap(),
            "--listen",
            &listen,
            "--data-dir",
            data_dir.to_str().unwrap(),
        ],
        dir.path(),
        Duration::from_secs(30),
    );
    let said = format!("{}{}", exit.stdout, exit.stderr);
    assert_eq!(exit.status.code(), Some(1), "exit status; output:\n{said}");
    let limit = Duration::from_millis(timeout_ms) + Duration::from_secs(3);
    assert!(
        exit.elapsed >= Duration::from_millis(timeout_ms) - Duration::from_millis(100),
        "gave up after {:?}, before its discovery timeout of {timeout_ms} ms",
        exit.elapsed
    );
    assert!(
        exit.elapsed <= limit,
        "gave up after {:?}, well after its discovery timeout of {timeout_ms} ms",
        exit.elapsed
    );
    for entry in &entries {
        assert!(
            exit.stderr.contains(entry.as_str()),
            "the message does not list {entry}, which it tried; stderr:\n{}",
            exit.stderr
        );
    }
    drop(silent);
    // The control: the same binary with itself in the config gets past discovery.
    let mut alone = Cluster::builder(runtime).size(1).build();
    alone.start(0);
    let found = wait_until(
        "a one-member cluster finds itself",
        Duration::from_secs(20),
        || alone.status(0)?["self"].as_str().map(str::to_owned),
    );
    assert_eq!(found, alone.members[0].entry);
}
