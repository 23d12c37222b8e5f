//! Every command on every member, the wire fixtures against real servers, exactly-once retries,
//! and the `/status` and `/metrics` pages.

use std::collections::BTreeSet;

use paxos_tests::fixtures::{self, assert_answer_shape, assert_status_shape};
use paxos_tests::{Cluster, Json, Response, Runtime, json, scenarios};

scenarios! {
    every_command_on_every_member,
    command_fixtures_on_every_member,
    exactly_once,
    status_and_metrics,
}

/// Sends `command` to member `i`, checks the answer has a fixture's shape and returns the
/// answer's JSON with the fixture's name.
fn send(cluster: &Cluster, i: usize, command: Json) -> (u16, Json, String) {
    let response: Response = cluster.request(i, &command);
    assert!(
        response.is_json(),
        "{command} on member {i}: content type {:?}",
        response.content_type
    );
    let body = response.json();
    let shape = assert_answer_shape(response.status, &body);
    (response.status, body, shape)
}

fn every_command_on_every_member(runtime: Runtime) {
    let cluster = Cluster::builder(runtime).start();
    let mut shapes = BTreeSet::new();
    let mut last_index = 0;
    let n = cluster.len();
    for i in 0..n {
        let next = (i + 1) % n;
        let (k, list) = (format!("k{i}"), format!("list{i}"));
        let mut check = |member: usize, command: Json, status: u16, value: Json, ok: bool| {
            let (got_status, body, shape) = send(&cluster, member, command.clone());
            assert_eq!(got_status, status, "{command} on member {member}: {body}");
            if status == 200 {
                assert_eq!(
                    body["ok"],
                    json!(ok),
                    "{command} on member {member}: {body}"
                );
                assert_eq!(body["value"], value, "{command} on member {member}: {body}");
                if ok {
                    // Writes sent one after another get increasing log slots. A read takes
                    // none: it reflects at least the last write before it.
                    let index = body["index"].as_u64().unwrap();
                    if command["op"] == "get" {
                        assert!(
                            index >= last_index,
                            "{command}: index {index} after {last_index}"
                        );
                    } else {
                        assert!(
                            index > last_index,
                            "{command}: index {index} after {last_index}"
                        );
                    }
                    last_index = index;
                }
            }
            shapes.insert(shape);
            body
        };
        check(i, json!({"op": "get", "key": k}), 200, json!(null), true);
        check(
            i,
            json!({"op": "put", "key": k, "value": "v1"}),
            200,
            json!("v1"),
            true,
        );
        // Written on one member, read on the next: reads are linearizable wherever they go.
        check(next, json!({"op": "get", "key": k}), 200, json!("v1"), true);
        check(
            i,
            json!({"op": "cas", "key": k, "expected": "nope", "value": "v2"}),
            200,
            json!("v1"),
            false,
        );
        check(
            next,
            json!({"op": "cas", "key": k, "expected": "v1", "value": "v2"}),
            200,
            json!("v2"),
            true,
        );
        check(
            i,
            json!({"op": "cas", "key": k, "expected": null, "value": "v3"}),
            200,
            json!("v2"),
            false,
        );
        check(i, json!({"op": "get", "key": k}), 200, json!("v2"), true);
        let absent = format!("absent{i}");
        check(
            i,
            json!({"op": "cas", "key": absent, "expected": "x", "value": "y"}),
            200,
            json!(null),
            false,
        );
        check(
            i,
            json!({"op": "cas", "key": absent, "expected": null, "value": "y"}),
            200,
            json!("y"),
            true,
        );
        check(
            i,
            json!({"op": "append", "key": list, "value": "a"}),
            200,
            json!(["a"]),
            true,
        );
        check(
            next,
            json!({"op": "append", "key": list, "value": "b"}),
            200,
            json!(["a", "b"]),
            true,
        );
        check(
            i,
            json!({"op": "append", "key": list, "value": "c"}),
            200,
            json!(["a", "b", "c"]),
            true,
        );
        check(
            next,
            json!({"op": "get", "key": list}),
            200,
            json!(["a", "b", "c"]),
            true,
        );
        check(
            i,
            json!({"op": "cas", "key": list, "expected": "a", "value": "z"}),
            200,
            json!(["a", "b", "c"]),
            false,
        );
        // Appending to a string is ordered but refused, and changes nothing.
        let refused = check(
            i,
            json!({"op": "append", "key": k, "value": "x"}),
            400,
            json!(null),
            false,
        );
        assert!(
            refused["error"].as_str().is_some_and(|e| e.contains(&k)),
            "{refused}"
        );
        check(next, json!({"op": "get", "key": k}), 200, json!("v2"), true);
        check(i, json!({"op": "delete", "key": k}), 200, json!(null), true);
        check(next, json!({"op": "get", "key": k}), 200, json!(null), true);
        check(i, json!({"op": "delete", "key": k}), 200, json!(null), true);
    }
    let expected: BTreeSet<String> = [
        "done-string",
        "done-list",
        "done-null",
        "mismatch-string",
        "mismatch-null",
        "mismatch-list",
        "rejected",
    ]
    .map(String::from)
    .into();
    assert_eq!(shapes, expected, "the answer shapes seen");
    // Every member applied the same history.
    let leader = cluster.leader().expect("a leader");
    let commit = cluster.commit_index(leader).unwrap();
    assert!(commit >= last_index);
    for i in 0..n {
        cluster.wait_for_commit(i, last_index, std::time::Duration::from_secs(10));
    }
}

fn command_fixtures_on_every_member(runtime: Runtime) {
    let cluster = Cluster::builder(runtime).start();
    let commands = fixtures::load("commands.json");
    let malformed = fixtures::load("malformed-commands.json");
    for i in 0..cluster.len() {
        for sample in &commands {
            let mut command = sample["command"].clone();
            if command.get("client_id").is_some() {
                // Each member its own client, so no retry is mistaken for another client's.
                command["client_id"] = json!(format!("fixture-client-{i}"));
            }
            let (status, body, _) = send(&cluster, i, command.clone());
            assert_eq!(
                status, 200,
                "fixture {} on member {i}: {body}",
                sample["name"]
            );
        }
        for sample in &malformed {
            let body = sample["body"].as_str().unwrap();
            let response = cluster
                .client
                .post(&cluster.url(i, "/client-request"), body.as_bytes(), &[])
                .unwrap();
            assert_eq!(
                response.status, 400,
                "malformed fixture {} on member {i}: {}",
                sample["name"], response.body
            );
            fixtures::assert_error_shape(400, &response.json());
            let sentence = response.error_sentence();
            match (sample.get("error"), sample.get("error_prefix")) {
                (Some(exact), _) => {
                    assert_eq!(json!(sentence), *exact, "fixture {}", sample["name"])
                }
                (_, Some(prefix)) => assert!(
                    sentence.starts_with(prefix.as_str().unwrap()),
                    "fixture {}: {sentence:?}",
                    sample["name"]
                ),
                _ => unreachable!(),
            }
        }
    }
}

fn exactly_once(runtime: Runtime) {
    let cluster = Cluster::builder(runtime).start();
    let leader = cluster.wait_for_leader();
    let follower = (leader + 1) % cluster.len();
    let other = (leader + 2) % cluster.len();
    let client_id = format!("eo-{}", std::process::id());
    let first =
        json!({"op": "append", "key": "eo", "value": "x", "client_id": client_id, "seq": 1});
    let answer = cluster.ok(follower, &first);
    assert_eq!(answer["value"], json!(["x"]));
    // Retried on the same member, on the leader and on the third member: the first answer,
    // index included, and nothing applied again.
    for member in [follower, leader, other] {
        assert_eq!(
            cluster.ok(member, &first),
            answer,
            "retry on member {member}"
        );
    }
    assert_eq!(
        cluster.ok(other, &json!({"op": "get", "key": "eo"}))["value"],
        json!(["x"])
    );

    // The next seq applies; its retries answer its own first answer.
    let second =
        json!({"op": "append", "key": "eo", "value": "y", "client_id": client_id, "seq": 2});
    let answer2 = cluster.ok(other, &second);
    assert_eq!(answer2["value"], json!(["x", "y"]));
    assert_eq!(cluster.ok(follower, &second), answer2);
    // A retry of an older seq must not apply again (the core keeps only the latest answer per
    // client, so it may be refused instead of answered).
    let stale = cluster.request(leader, &first);
    assert!(
        stale.status == 400 || (stale.status == 200 && stale.json() == answer),
        "stale retry answered {} {}",
        stale.status,
        stale.body
    );
    assert_eq!(
        cluster.ok(leader, &json!({"op": "get", "key": "eo"}))["value"],
        json!(["x", "y"])
    );

    // A retried put after someone else's write answers the original and does not overwrite.
    let put = json!({"op": "put", "key": "p", "value": "mine", "client_id": "putter", "seq": 7});
    let put_answer = cluster.ok(follower, &put);
    cluster.ok(other, &json!({"op": "put", "key": "p", "value": "theirs"}));
    assert_eq!(cluster.ok(leader, &put), put_answer);
    assert_eq!(
        cluster.ok(follower, &json!({"op": "get", "key": "p"}))["value"],
        json!("theirs")
    );

    // The same pair sent to every member at once applies once, and all get one answer.
    let racing =
        json!({"op": "append", "key": "race", "value": "r", "client_id": "racer", "seq": 1});
    let answers: Vec<Json> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cluster.len())
            .flat_map(|i| [i, i])
            .map(|i| {
                let (cluster, racing) = (&cluster, &racing);
                s.spawn(move || cluster.ok(i, racing))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for answer in &answers {
        assert_eq!(answer, &answers[0], "racing retries answered differently");
    }
    assert_eq!(answers[0]["value"], json!(["r"]));
    assert_eq!(
        cluster.ok(other, &json!({"op": "get", "key": "race"}))["value"],
        json!(["r"])
    );
}

fn status_and_metrics(runtime: Runtime) {
    let cluster = Cluster::builder(runtime).start();
    let leader = cluster.wait_for_leader();
    cluster.ok(leader, &json!({"op": "put", "key": "m", "value": "1"}));
    let servers: Vec<String> = cluster.members.iter().map(|m| m.entry.clone()).collect();
    let mut ids = BTreeSet::new();
    for i in 0..cluster.len() {
        let status = cluster.status(i).expect("/status");
        assert_status_shape(&status);
        assert_eq!(status["runtime"], json!(runtime.name()), "member {i}");
        assert_eq!(
            status["self"],
            json!(cluster.members[i].entry),
            "member {i}"
        );
        assert_eq!(status["servers"], json!(servers), "member {i}");
        assert_eq!(
            status["leader"],
            json!(cluster.members[leader].entry),
            "member {i}"
        );
        let role = if i == leader { "leader" } else { "follower" };
        assert_eq!(status["role"], json!(role), "member {i}: {status}");
        assert_eq!(
            status["ballot"]["member"],
            json!(leader),
            "member {i}: {status}"
        );
        assert!(status["applied_index"].as_u64() <= status["commit_index"].as_u64());

        let id = cluster.client.get(&cluster.url(i, "/server_id")).unwrap();
        assert_eq!(id.status, 200);
        assert_eq!(
            id.json(),
            status["server_id"],
            "member {i}: /server_id vs /status"
        );
        let hex = id.json().as_str().unwrap().to_owned();
        assert!(
            hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "server id {hex:?} is not 128 bits of hex"
        );
        ids.insert(hex);

        let metrics = cluster.client.get(&cluster.url(i, "/metrics")).unwrap();
        assert_eq!(metrics.status, 200);
        assert!(
            metrics
                .content_type
                .as_deref()
                .is_some_and(|t| t.starts_with("text/plain")),
            "metrics content type {:?}",
            metrics.content_type
        );
        check_prometheus_text(&metrics.body);
        // The counters count what happened: one put, taken by the leader; the leader's log
        // made durable; the followers heard from the leader.
        let sample = |name: &str| {
            metrics
                .body
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("member {i}: no sample {name}"))
        };
        let ok = sample(r#"paxos_client_requests_total{outcome="ok"}"#);
        assert_eq!(ok, if i == leader { 1.0 } else { 0.0 }, "member {i}");
        assert_eq!(sample("paxos_is_leader"), f64::from(u8::from(i == leader)));
        let commit = status["commit_index"].as_f64().unwrap();
        assert!(sample("paxos_commit_index") >= commit, "member {i}");
        assert!(sample("paxos_fsyncs_total") >= 1.0, "member {i}");
        if i != leader {
            assert!(
                sample("paxos_peer_messages_received_total") >= 1.0,
                "member {i}"
            );
        }
        // The histograms time what they count: the put, every fsync, every peer post.
        let put = r#"paxos_client_request_duration_seconds_count{op="put",outcome="ok"}"#;
        if i == leader {
            assert_eq!(sample(put), 1.0, "member {i}");
        }
        // Peers post on every heartbeat, so a post may land between the counter and the
        // histogram as the page is written: they agree to within a post or two.
        let agree = |histogram: f64, counted: f64| (counted..=counted + 2.0).contains(&histogram);
        let fsyncs = sample("paxos_fsyncs_total");
        assert!(
            agree(sample("paxos_fsync_duration_seconds_count"), fsyncs),
            "member {i}"
        );
        let posts =
            sample("paxos_peer_envelopes_sent_total") + sample("paxos_peer_send_errors_total");
        assert!(
            agree(sample("paxos_peer_post_duration_seconds_count"), posts),
            "member {i}"
        );
        assert!(sample("paxos_leader_changes_total") >= 1.0, "member {i}");
    }
    assert_eq!(ids.len(), cluster.len(), "server ids are not distinct");
}

/// Panics unless `text` is Prometheus text exposition: comments, and `name{labels} value` lines.
fn check_prometheus_text(text: &str) {
    let mut samples = 0;
    let mut typed = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.split_whitespace().collect();
            if words.first() == Some(&"TYPE") {
                assert!(
                    words.len() == 3
                        && ["counter", "gauge", "histogram", "summary", "untyped"]
                            .contains(&words[2]),
                    "bad TYPE line {line:?}"
                );
                typed.insert(words[1].to_owned());
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("metrics line without a value: {line:?}"));
        let value = value.trim();
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "metrics line with a bad value: {line:?}"
        );
        let name = series.split('{').next().unwrap();
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !name.starts_with(|c: char| c.is_ascii_digit()),
            "bad metric name in {line:?}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "bad labels in {line:?}"
            );
        }
        samples += 1;
    }
    assert!(samples > 0, "no samples in /metrics:\n{text}");
    assert!(!typed.is_empty(), "no # TYPE lines in /metrics:\n{text}");
}
