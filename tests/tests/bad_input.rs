//! Bad input from clients, from the command line and from the config file: clear errors with the
//! right status, and a cluster that still serves afterwards.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use paxos_tests::cluster::{Exit, run_to_exit};
use paxos_tests::fixtures::assert_error_shape;
use paxos_tests::http::raw_post;
use paxos_tests::ports::free_port;
use paxos_tests::tempdir::TempDir;
use paxos_tests::{Cluster, Config, Json, Response, Runtime, json, scenarios};

scenarios! {
    bad_requests,
    size_limits,
    bad_config_files,
    no_secret_where_others_reach,
    usage_errors,
    busy_listen_port,
}

/// Panics unless `response` is `status` with an error body of the fixtures' shape.
fn assert_error(what: &str, response: Result<Response, String>, status: u16) {
    let response = response.unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
    assert_eq!(response.status, status, "{what}: {}", response.body);
    assert!(
        response.is_json(),
        "{what}: content type {:?}",
        response.content_type
    );
    assert_error_shape(status, &response.json());
}

fn bad_requests(runtime: Runtime) {
    let cluster = Cluster::builder(runtime).start();
    let leader = cluster.wait_for_leader();
    let client = &cluster.client;
    let mut writes = 0;
    for i in [leader, (leader + 1) % cluster.len()] {
        let request_url = cluster.url(i, "/client-request");
        let still_serves = |writes: &mut usize| {
            *writes += 1;
            let answer = cluster.ok(i, &json!({"op": "append", "key": "alive", "value": "x"}));
            assert_eq!(answer["value"].as_array().map(Vec::len), Some(*writes));
        };
        let cases: [(&str, &[u8]); 6] = [
            ("malformed JSON", b"{\"op\": \"put\", "),
            ("not JSON at all", b"\xff\xfe garbage"),
            ("unknown op", br#"{"op": "frobnicate", "key": "k"}"#),
            ("missing key", br#"{"op": "get"}"#),
            ("missing value", br#"{"op": "put", "key": "k"}"#),
            (
                "mistyped field",
                br#"{"op": "put", "key": "k", "value": 5}"#,
            ),
        ];
        for (what, body) in cases {
            assert_error(what, client.post(&request_url, body, &[]), 400);
            still_serves(&mut writes);
        }

        // 2 MiB: over the 1 MiB limit, refused whole and not applied.
        let huge = format!(
            r#"{{"op": "put", "key": "huge", "value": "{}"}}"#,
            "x".repeat(2 << 20)
        );
        // Sent over a plain socket that reads the answer even if the server answers before it
        // read the whole body and closes, which makes `ureq` see a broken pipe.
        let addr = cluster.members[i].listen.to_string();
        let answer = raw_post(
            &addr,
            "/client-request",
            huge.as_bytes(),
            Duration::from_secs(10),
        );
        assert_error("a 2 MiB body", answer, 413);
        still_serves(&mut writes);
        assert_eq!(
            cluster.ok(i, &json!({"op": "get", "key": "huge"}))["value"],
            json!(null)
        );

        assert_error("unknown path", client.get(&cluster.url(i, "/nope")), 404);
        assert_error(
            "unknown path, POST",
            client.post(&cluster.url(i, "/client-request/extra"), b"{}", &[]),
            404,
        );
        still_serves(&mut writes);

        assert_error("GET /client-request", client.get(&request_url), 405);
        assert_error(
            "POST /status",
            client.post(&cluster.url(i, "/status"), b"{}", &[]),
            405,
        );
        assert_error(
            "DELETE /server_id",
            client.delete(&cluster.url(i, "/server_id")),
            405,
        );
        assert_error(
            "PUT /metrics",
            client.put(&cluster.url(i, "/metrics"), b"{}"),
            405,
        );
        still_serves(&mut writes);

        // What a peer sends is no excuse either.
        let peer = client
            .post(
                &cluster.url(i, "/paxos/messages"),
                b"{\"version\": 1, \"from\": ",
                &[],
            )
            .expect("an answer to a malformed envelope");
        assert_eq!(peer.status, 400, "malformed envelope: {}", peer.body);
        still_serves(&mut writes);
    }
    for i in 0..cluster.len() {
        assert!(
            cluster.status(i).is_some(),
            "member {i} stopped serving /status"
        );
    }
}

/// Keys and client ids up to 1 KiB, values up to 512 KiB, lists up to 1 MiB: one byte more is a
/// `400` that says which limit, and changes nothing.
fn size_limits(runtime: Runtime) {
    // Megabyte messages take a debug build on a busy host longer than the suite's fast election
    // timeout; a slower one keeps the leader in place.
    let cluster = Cluster::builder(runtime)
        .tuning("election_timeout_ms", 2_000)
        .start();
    let i = (cluster.wait_for_leader() + 1) % cluster.len();
    let url = cluster.url(i, "/client-request");
    let refused = |what: &str, command: Json, sentence: &str| {
        let response = cluster.client.post_json(&url, &command);
        assert_error(what, response.clone(), 400);
        let error = response.unwrap().error_sentence();
        assert!(error.starts_with(sentence), "{what}: {error}");
    };
    let (key, long_key) = ("k".repeat(1024), "k".repeat(1025));
    cluster.ok(i, &json!({"op": "put", "key": key, "value": "v"}));
    refused(
        "a 1025-byte key",
        json!({"op": "put", "key": long_key, "value": "v"}),
        "field `key` is 1025 bytes long; it may be at most 1024 bytes (1 KiB)",
    );
    refused(
        "a 1025-byte client id",
        json!({"op": "get", "key": "k", "client_id": long_key, "seq": 1}),
        "field `client_id` is 1025 bytes long",
    );
    let (half, over) = ("v".repeat(512 * 1024), "v".repeat(512 * 1024 + 1));
    cluster.ok(i, &json!({"op": "put", "key": "big", "value": half}));
    refused(
        "a value one byte over 512 KiB",
        json!({"op": "put", "key": "big", "value": over}),
        "field `value` is 524289 bytes long; it may be at most 524288 bytes (512 KiB)",
    );
    assert_eq!(
        cluster.ok(i, &json!({"op": "get", "key": "big"}))["value"],
        json!(half),
        "the refused put changed the key"
    );

    // Two appends of 512 KiB fill a list to its 1 MiB; one more byte is refused at apply time.
    for _ in 0..2 {
        cluster.ok(i, &json!({"op": "append", "key": "full", "value": half}));
    }
    refused(
        "an append past 1 MiB",
        json!({"op": "append", "key": "full", "value": "x"}),
        "appending to key `full` would make its list 1048577 bytes long; a list may hold at most \
         1048576 bytes (1 MiB)",
    );
    let list = cluster.ok(i, &json!({"op": "get", "key": "full"}))["value"].clone();
    assert_eq!(
        list,
        json!([half, half]),
        "the refused append changed the list"
    );
    cluster.ok(i, &json!({"op": "append", "key": "other", "value": "x"}));
}

/// Runs the server with `args` and checks it exits 2 with one line on stderr containing each
/// of `names`.
fn assert_usage_error(runtime: Runtime, dir: &Path, args: &[&str], names: &[&str]) -> Exit {
    let exit = run_to_exit(runtime, args, dir, Duration::from_secs(10));
    assert_eq!(
        exit.status.code(),
        Some(2),
        "{args:?}: exit status; stderr:\n{}",
        exit.stderr
    );
    let lines: Vec<&str> = exit
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{args:?}: stderr is not one line:\n{}",
        exit.stderr
    );
    for name in names {
        assert!(
            lines[0].contains(name),
            "{args:?}: stderr does not name {name}: {}",
            lines[0]
        );
    }
    exit
}

fn bad_config_files(runtime: Runtime) {
    let dir = TempDir::new("bad-config");
    let listen_port = free_port();
    let listen = format!("127.0.0.1:{listen_port}");
    let me = json!([listen]);
    let configs = [
        ("not-json.json", "{\"servers\": [".to_owned()),
        ("empty-servers.json", json!({"servers": []}).to_string()),
        (
            "duplicate.json",
            json!({"servers": [listen, listen]}).to_string(),
        ),
        (
            "unknown-field.json",
            json!({"servers": me, "hartbeat_ms": 5}).to_string(),
        ),
        ("not-an-object.json", json!(["127.0.0.1:1"]).to_string()),
        (
            "too-many.json",
            json!({"servers": (1..=10).map(|p| format!("127.0.0.1:{p}")).collect::<Vec<_>>()})
                .to_string(),
        ),
        (
            "mistyped.json",
            json!({"servers": me, "heartbeat_ms": "fast"}).to_string(),
        ),
    ];
    let data_dir = dir.path().join("data");
    for (name, text) in configs {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let path = path.to_str().unwrap();
        let args = [
            "--config",
            path,
            "--listen",
            &listen,
            "--data-dir",
            data_dir.to_str().unwrap(),
        ];
        assert_usage_error(runtime, dir.path(), &args, &[path]);
    }
    let missing = dir.path().join("missing.json");
    let missing = missing.to_str().unwrap();
    let args = [
        "--config",
        missing,
        "--listen",
        &listen,
        "--data-dir",
        data_dir.to_str().unwrap(),
    ];
    assert_usage_error(runtime, dir.path(), &args, &[missing]);
    // The control: a good config file gets further: the server finds itself and leads.
    let good = dir.path().join("good.json");
    Config::fast(vec![listen.clone()]).write(&good);
    let good = good.to_str().unwrap();
    serves(
        runtime,
        &["--config", good, "--listen", &listen],
        &listen,
        &data_dir,
    );
}

/// Without a `secret`, a server starts only where nobody else can reach it, unless its config
/// says `insecure`: an open port without the secret lets anyone pose as a member.
fn no_secret_where_others_reach(runtime: Runtime) {
    let dir = TempDir::new("exposure");
    let port = free_port();
    let me = format!("127.0.0.1:{port}");
    let data_dir = dir.path().join("data");
    let write = |name: &str, config: Json| {
        let path = dir.path().join(name);
        std::fs::write(&path, config.to_string()).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let open = format!("0.0.0.0:{port}");
    let local = write("local.json", json!({"servers": [me]}));
    let exposed = [
        (local.as_str(), open.as_str(), open.as_str()),
        (
            &write("remote.json", json!({"servers": [me, "db-2.example:7001"]})),
            me.as_str(),
            "db-2.example:7001",
        ),
    ];
    for (config, listen, named) in exposed {
        let args = ["--config", config, "--listen", listen];
        let data = ["--data-dir", data_dir.to_str().unwrap()];
        let args: Vec<&str> = args.iter().chain(&data).copied().collect();
        assert_usage_error(
            runtime,
            dir.path(),
            &args,
            &[config, named, "`secret`", "insecure"],
        );
    }
    // The controls: on loopback alone it runs, and so it does exposed when the config says so.
    serves(
        runtime,
        &["--config", &local, "--listen", &me],
        &me,
        &data_dir,
    );
    let insecure = write("insecure.json", json!({"servers": [me], "insecure": true}));
    serves(
        runtime,
        &["--config", &insecure, "--listen", &open],
        &me,
        &data_dir,
    );
}

/// Starts a one-member server with `args` and waits until it leads (answering `/status` at
/// `address`), then stops it: proof that it got past every start-up check.
fn serves(runtime: Runtime, args: &[&str], address: &str, data_dir: &Path) {
    let mut child = std::process::Command::new(runtime.binary())
        .args(args)
        .args(["--data-dir", data_dir.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = paxos_tests::Client::default();
    let url = format!("http://{address}/status");
    let led = paxos_tests::wait_until_or(Duration::from_secs(20), || {
        let status = client.get(&url).ok()?;
        (status.status == 200 && status.json()["role"] == json!("leader")).then_some(())
    });
    let exited = child.try_wait().ok().flatten();
    let _ = child.kill();
    let _ = child.wait();
    assert!(led.is_some(), "{args:?}: never led (exited: {exited:?})");
}

fn usage_errors(runtime: Runtime) {
    let dir = TempDir::new("usage");
    let config = dir.path().join("cluster.json");
    let listen = format!("127.0.0.1:{}", free_port());
    Config::fast(vec![listen.clone()]).write(&config);
    let config = config.to_str().unwrap();
    assert_usage_error(runtime, dir.path(), &["--config", config], &["--listen"]);
    assert_usage_error(runtime, dir.path(), &["--listen", &listen], &["--config"]);
    assert_usage_error(
        runtime,
        dir.path(),
        &["--config", config, "--listen", &listen, "--frobnicate"],
        &["--frobnicate"],
    );
    assert_usage_error(
        runtime,
        dir.path(),
        &["--config", config, "--listen", "not-an-address"],
        &["--listen"],
    );
}

fn busy_listen_port(runtime: Runtime) {
    let dir = TempDir::new("busy");
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = busy.local_addr().unwrap().to_string();
    let config = dir.path().join("cluster.json");
    Config::fast(vec![listen.clone()]).write(&config);
    let data_dir = dir.path().join("data");
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--listen",
        &listen,
        "--data-dir",
        data_dir.to_str().unwrap(),
    ];
    let exit = run_to_exit(runtime, &args, dir.path(), Duration::from_secs(10));
    assert_eq!(
        exit.status.code(),
        Some(1),
        "exit status; stderr:\n{}",
        exit.stderr
    );
    assert!(
        exit.stderr.contains(&listen) || exit.stderr.to_lowercase().contains("in use"),
        "stderr says neither the address nor that it is in use:\n{}",
        exit.stderr
    );
    drop(busy);
}
