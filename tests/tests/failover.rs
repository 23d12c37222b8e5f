//! Crashes: `kill -9` of the leader under load, and of the whole cluster, lose no acknowledged
//! command; a restarted member catches up from its data dir.

use std::collections::HashMap;
use std::time::Duration;

use paxos_tests::appends::AppendLoad;
use paxos_tests::{Cluster, Json, Runtime, json, scenarios, wait_for, wait_until};

scenarios! {
    leader_failover,
    whole_cluster_restart,
    no_majority_answers_503,
}

const CATCH_UP: Duration = Duration::from_secs(30);

/// Each key's list as member `i` answers it (a linearizable read through the log).
fn final_lists(cluster: &Cluster, i: usize, keys: &[&str]) -> HashMap<String, Vec<String>> {
    keys.iter()
        .map(|key| {
            let value = cluster.ok(i, &json!({"op": "get", "key": key}))["value"].clone();
            let list = if value.is_null() {
                Vec::new()
            } else {
                serde_json::from_value(value).expect("a list")
            };
            ((*key).to_owned(), list)
        })
        .collect()
}

/// Restarts member `i` from its data dir and waits until it caught up with the others.
fn restart_and_catch_up(cluster: &mut Cluster, i: usize) {
    let target = cluster
        .started()
        .iter()
        .filter_map(|&m| cluster.commit_index(m))
        .max()
        .expect("the survivors' commit index");
    cluster.start(i);
    wait_until(
        &format!("restarted member {i} commits and applies up to {target}"),
        CATCH_UP,
        || {
            let status = cluster.status(i)?;
            let applied = status["applied_index"].as_u64()?;
            (status["commit_index"].as_u64()? >= target && applied >= target).then_some(())
        },
    );
}

fn leader_failover(runtime: Runtime) {
    let mut cluster = Cluster::builder(runtime)
        .tuning("request_timeout_ms", 3_000)
        .start();
    let keys = ["fo-a", "fo-b", "fo-c"];
    // Six plain clients, two per member, and three exactly-once clients that retry a request
    // without an answer on the next member; at most 1000 appends each, stopped below.
    let n = cluster.len();
    let urls = (0..6)
        .map(|c| cluster.url(c % n, "/client-request"))
        .collect();
    let plain = AppendLoad::start(&cluster.client, urls, &keys, 1000);
    let rotations = (0..3)
        .map(|c| {
            (0..n)
                .map(|k| cluster.url((c + k) % n, "/client-request"))
                .collect()
        })
        .collect();
    let exactly_once = AppendLoad::start_exactly_once(&cluster.client, rotations, &keys, 1000);
    let acked = || plain.acked() + exactly_once.acked();

    // Twice: kill -9 the leader under load, see another take over and the load go on, and
    // restart the killed member (still under load), which catches up from its data dir.
    let mut leaders = vec![cluster.wait_for_leader()];
    for round in 1..=2 {
        let old_leader = *leaders.last().unwrap();
        let before = acked();
        wait_for(
            &format!("round {round}: 40 appends acknowledged"),
            Duration::from_secs(30),
            || acked() >= before + 40,
        );
        cluster.kill(old_leader);
        let killed_at = acked();
        let new_leader = cluster.wait_for_leader();
        assert_ne!(new_leader, old_leader);
        wait_for(
            &format!(
                "round {round}: 40 more appends acknowledged after leader {old_leader} was killed"
            ),
            Duration::from_secs(30),
            || acked() >= killed_at + 40,
        );
        restart_and_catch_up(&mut cluster, old_leader);
        leaders.push(cluster.wait_for_leader());
    }
    let retried = exactly_once.retried();
    // The exactly-once clients all start on a different member, so one of them was sending to
    // the first leader when it died, and had to try again elsewhere: the scenario tests retries
    // only if some happened.
    assert!(
        retried > 0,
        "no exactly-once append needed a retry across two failovers"
    );
    let mut history = plain.stop();
    history.merge(exactly_once.stop());
    eprintln!(
        "{} appends acknowledged ({retried} after retries), {} unknown; leaders in turn: {leaders:?}",
        history.acked.len(),
        history.unknown.len()
    );

    // No acknowledged write is lost, and every member answers the same lists.
    let leader = cluster.wait_for_leader();
    let finals = final_lists(&cluster, leader, &keys);
    history.check(&finals);
    for i in 0..cluster.len() {
        assert_eq!(
            final_lists(&cluster, i, &keys),
            finals,
            "member {i} answers other lists"
        );
    }
    // And every member takes writes again.
    for i in 0..cluster.len() {
        cluster.ok(
            i,
            &json!({"op": "append", "key": "fo-a", "value": format!("after-{i}")}),
        );
    }
}

fn whole_cluster_restart(runtime: Runtime) {
    let mut cluster = Cluster::builder(runtime).start();
    let n = cluster.len();
    let mut expected: HashMap<String, Json> = HashMap::new();
    for k in 0..12 {
        let (key, value) = (format!("key{k}"), format!("value{k}"));
        cluster.ok(k % n, &json!({"op": "put", "key": key, "value": value}));
        expected.insert(key, json!(value));
    }
    let mut list = Vec::new();
    for k in 0..20 {
        let value = format!("item{k}");
        let answer = cluster.ok(
            k % n,
            &json!({"op": "append", "key": "list", "value": value}),
        );
        list.push(value);
        assert_eq!(answer["value"], json!(list));
    }
    expected.insert("list".into(), json!(list));
    cluster.ok(1, &json!({"op": "delete", "key": "key3"}));
    expected.insert("key3".into(), Json::Null);
    let cas = json!({"op": "cas", "key": "key4", "expected": "value4", "value": "swapped"});
    assert_eq!(cluster.ok(2, &cas)["ok"], json!(true));
    expected.insert("key4".into(), json!("swapped"));
    let once =
        json!({"op": "append", "key": "once", "value": "o", "client_id": "restart", "seq": 1});
    let once_answer = cluster.ok(0, &once);
    expected.insert("once".into(), json!(["o"]));
    let commit_before = (0..n)
        .filter_map(|i| cluster.commit_index(i))
        .max()
        .unwrap();

    // Every member killed at once, then restarted from its data dir in reverse order.
    for i in 0..n {
        cluster.kill(i);
    }
    for i in (0..n).rev() {
        cluster.start(i);
    }
    cluster.wait_for_leader();
    for i in 0..n {
        cluster.wait_for_commit(i, commit_before, CATCH_UP);
        for (key, value) in &expected {
            let got = cluster.ok(i, &json!({"op": "get", "key": key}));
            assert_eq!(
                &got["value"], value,
                "key {key} on member {i} after the restart"
            );
        }
    }
    // The exactly-once record survived too: the retry answers the first answer, applies nothing.
    assert_eq!(cluster.ok(2, &once), once_answer);
    assert_eq!(
        cluster.ok(1, &json!({"op": "get", "key": "once"}))["value"],
        json!(["o"])
    );
    // And the restarted cluster takes new writes.
    let more = cluster.ok(1, &json!({"op": "append", "key": "list", "value": "more"}));
    assert_eq!(more["value"].as_array().map(Vec::len), Some(21));
    assert!(more["index"].as_u64().unwrap() > commit_before);
}

/// Without a majority nothing commits: a request is answered `503` after the request timeout,
/// its outcome unknown, and the cluster serves again once a majority is back.
fn no_majority_answers_503(runtime: Runtime) {
    let timeout_ms = 1_000;
    let mut cluster = Cluster::builder(runtime)
        .tuning("request_timeout_ms", timeout_ms)
        .start();
    let leader = cluster.wait_for_leader();
    cluster.ok(leader, &json!({"op": "put", "key": "k", "value": "before"}));
    let (a, b) = ((leader + 1) % cluster.len(), (leader + 2) % cluster.len());
    cluster.kill(a);
    cluster.kill(b);
    let started = std::time::Instant::now();
    let answer = cluster.request(
        leader,
        &json!({"op": "put", "key": "k", "value": "on-the-leader"}),
    );
    let took = started.elapsed();
    assert_eq!(answer.status, 503, "without a majority: {}", answer.body);
    paxos_tests::fixtures::assert_error_shape(503, &answer.json());
    assert!(
        took >= Duration::from_millis(timeout_ms - 100)
            && took <= Duration::from_millis(timeout_ms + 3_000),
        "answered 503 after {took:?}, with a request timeout of {timeout_ms} ms"
    );
    cluster.start(a);
    let leader = cluster.wait_for_leader();
    let value = cluster.ok(leader, &json!({"op": "get", "key": "k"}))["value"].clone();
    assert!(
        value == json!("before") || value == json!("on-the-leader"),
        "k holds {value} after an unknown put"
    );
    cluster.ok(a, &json!({"op": "put", "key": "k", "value": "after"}));
    assert_eq!(
        cluster.ok(leader, &json!({"op": "get", "key": "k"}))["value"],
        json!("after")
    );
}
