//! Watches: `GET /watch?key=K&after=I&wait=S` answers as soon as the key's modification index is
//! above `I` (at once if it already is), with its value and that index; reports a deletion;
//! answers "unchanged" with the applied index when `wait` runs out; refuses bad input with `400`
//! and watches past `max_watches` with `503`; and works on every member, across a leader's death
//! and a snapshot.

use std::thread;
use std::time::{Duration, Instant};

use paxos_tests::fixtures::{assert_error_shape, assert_watch_shape};
use paxos_tests::{Client, Cluster, Json, Runtime, json, scenarios, wait_until};

scenarios! {
    a_watch_answers_changes_and_deletions,
    a_watch_without_change_answers_unchanged,
    bad_watches_are_refused,
    watches_past_the_cap_are_refused,
    a_watch_survives_the_leaders_death_and_a_snapshot,
}

/// `GET /watch` on member `i`, by a client that waits long enough for any `wait`.
fn watch(cluster: &Cluster, i: usize, query: &str) -> (u16, Json) {
    let client = Client::new(Duration::from_secs(60));
    let response = client
        .get(&cluster.url(i, &format!("/watch?{query}")))
        .unwrap_or_else(|e| panic!("watch {query} on member {i}: {e}"));
    checked(response.status, response.json())
}

/// Checks an answer against the fixtures: `watches.json` for a `200`, `errors.json` otherwise.
fn checked(status: u16, body: Json) -> (u16, Json) {
    match status {
        200 => assert_watch_shape(status, &body),
        _ => {
            assert_error_shape(status, &body);
            String::new()
        }
    };
    (status, body)
}

/// Starts the same watch on its own thread.
fn watch_later(cluster: &Cluster, i: usize, query: &str) -> thread::JoinHandle<(u16, Json)> {
    let url = cluster.url(i, &format!("/watch?{query}"));
    thread::spawn(move || {
        let response = Client::new(Duration::from_secs(60)).get(&url).unwrap();
        checked(response.status, response.json())
    })
}

/// Waits until member `i` has `n` watches waiting.
fn wait_for_watchers(cluster: &Cluster, i: usize, n: u64) {
    wait_until(
        &format!("member {i} has {n} watches waiting"),
        Duration::from_secs(10),
        || {
            let text = cluster.client.get(&cluster.url(i, "/metrics")).ok()?.body;
            let waiting = text.lines().find_map(|l| {
                l.strip_prefix("paxos_watches_waiting ")?
                    .parse::<u64>()
                    .ok()
            })?;
            (waiting == n).then_some(())
        },
    );
}

fn a_watch_answers_changes_and_deletions(runtime: Runtime) {
    let cluster = Cluster::builder(runtime).start();
    let leader = cluster.wait_for_leader();
    let follower = (leader + 1) % cluster.len();
    let put = cluster.ok(leader, &json!({"op": "put", "key": "w", "value": "a"}));
    let modified = put["modified"].as_u64().expect("a modification index");
    assert_eq!(
        put["index"], put["modified"],
        "a write changes its key at its slot"
    );

    // Changed after an older index: answered at once, with the value and the index, on a
    // follower too once it has applied the put.
    cluster.wait_for_commit(follower, modified, Duration::from_secs(10));
    let (status, seen) = watch(&cluster, follower, &format!("key=w&after={}", modified - 1));
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["changed"], json!(true), "{seen}");
    assert_eq!(
        (seen["value"].clone(), seen["modified"].as_u64()),
        (json!("a"), Some(modified))
    );

    // Not changed after its own index: it waits, on every member, until a write changes it.
    let watchers: Vec<_> = (0..cluster.len())
        .map(|i| watch_later(&cluster, i, &format!("key=w&after={modified}&wait=30")))
        .collect();
    for i in 0..cluster.len() {
        wait_for_watchers(&cluster, i, 1);
    }
    // A write to another key wakes nobody.
    cluster.ok(leader, &json!({"op": "put", "key": "other", "value": "x"}));
    let started = Instant::now();
    let put = cluster.ok(follower, &json!({"op": "put", "key": "w", "value": "b"}));
    for (i, watcher) in watchers.into_iter().enumerate() {
        let (status, seen) = watcher.join().unwrap();
        assert_eq!(status, 200, "member {i}: {seen}");
        assert_eq!(seen["value"], json!("b"), "member {i}: {seen}");
        assert_eq!(seen["modified"], put["index"], "member {i}: {seen}");
        assert!(
            seen["index"].as_u64() >= put["index"].as_u64(),
            "member {i}: {seen}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the watchers woke late"
    );

    // A deletion is a change: it reports the key absent and the delete's slot.
    let after = put["index"].as_u64().unwrap();
    let watcher = watch_later(&cluster, follower, &format!("key=w&after={after}"));
    wait_for_watchers(&cluster, follower, 1);
    let delete = cluster.ok(leader, &json!({"op": "delete", "key": "w"}));
    let (status, seen) = watcher.join().unwrap();
    assert_eq!(status, 200, "{seen}");
    assert_eq!(
        (seen["changed"].clone(), seen["value"].clone()),
        (json!(true), json!(null))
    );
    assert_eq!(seen["modified"], delete["index"], "{seen}");
}

fn a_watch_without_change_answers_unchanged(runtime: Runtime) {
    let cluster = Cluster::builder(runtime).start();
    let leader = cluster.wait_for_leader();
    let put = cluster.ok(leader, &json!({"op": "put", "key": "quiet", "value": "a"}));
    let after = put["index"].as_u64().unwrap();
    let started = Instant::now();
    let (status, seen) = watch(
        &cluster,
        leader,
        &format!("key=quiet&after={after}&wait=0.5"),
    );
    let took = started.elapsed();
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["changed"], json!(false), "{seen}");
    assert!(seen["index"].as_u64() >= Some(after), "{seen}");
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(5),
        "a half-second watch answered after {took:?}"
    );
    // A key never written has modification index 0: a watch after 0 waits for its first write.
    let watcher = watch_later(&cluster, leader, "key=fresh&after=0&wait=30");
    wait_for_watchers(&cluster, leader, 1);
    let first = cluster.ok(
        leader,
        &json!({"op": "append", "key": "fresh", "value": "x"}),
    );
    let (_, seen) = watcher.join().unwrap();
    assert_eq!(
        (seen["value"].clone(), seen["modified"].clone()),
        (json!(["x"]), first["index"].clone())
    );
}

fn bad_watches_are_refused(runtime: Runtime) {
    let cluster = Cluster::builder(runtime)
        .tuning("max_watch_wait_ms", 10_000)
        .start();
    for (query, says) in [
        ("after=3", "needs `key`"),
        ("key=k&after=x", "`after` must be"),
        ("key=k&wait=11", "at most 10 s"),
        ("key=k&wait=-1", "`wait` must be"),
        ("key=k&stale=1", "unknown query parameter"),
    ] {
        let (status, body) = watch(&cluster, 0, query);
        assert_eq!(status, 400, "{query}: {body}");
        let sentence = body["error"].as_str().unwrap_or_default();
        assert!(sentence.contains(says), "{query}: {body}");
    }
    let post = cluster
        .client
        .post(&cluster.url(0, "/watch?key=k"), b"", &[])
        .unwrap();
    assert_eq!(post.status, 405, "{}", post.body);
    let metrics = cluster
        .client
        .get(&cluster.url(0, "/metrics"))
        .unwrap()
        .body;
    assert!(
        metrics.contains("paxos_watches_refused_total 5\n"),
        "{metrics}"
    );
}

fn watches_past_the_cap_are_refused(runtime: Runtime) {
    const CAP: usize = 5;
    let cluster = Cluster::builder(runtime).tuning("max_watches", CAP).start();
    let leader = cluster.wait_for_leader();
    let watchers: Vec<_> = (0..CAP)
        .map(|n| watch_later(&cluster, leader, &format!("key=capped{n}&wait=30")))
        .collect();
    wait_for_watchers(&cluster, leader, CAP as u64);
    let started = Instant::now();
    let (status, body) = watch(&cluster, leader, "key=one-more&wait=30");
    assert_eq!(status, 503, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the refusal waited"
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("watches waiting"),
        "{body}"
    );
    // Writes go on while the watches wait, and wake them.
    for n in 0..CAP {
        cluster.ok(
            leader,
            &json!({"op": "put", "key": format!("capped{n}"), "value": "v"}),
        );
    }
    for watcher in watchers {
        assert_eq!(watcher.join().unwrap().1["changed"], json!(true));
    }
}

fn a_watch_survives_the_leaders_death_and_a_snapshot(runtime: Runtime) {
    // Members keep next to no applied values in memory, so one that falls behind catches up from
    // a snapshot.
    let mut cluster = Cluster::builder(runtime)
        .tuning("snapshot_every", 20)
        .tuning("max_decided_bytes", 1)
        .start();
    let leader = cluster.wait_for_leader();
    let follower = (leader + 1) % cluster.len();
    let put = cluster.ok(leader, &json!({"op": "put", "key": "s", "value": "before"}));
    let after = put["index"].as_u64().unwrap();
    cluster.wait_for_commit(follower, after, Duration::from_secs(10));
    // A watch on a follower outlives its leader: the next leader's write wakes it.
    let watcher = watch_later(&cluster, follower, &format!("key=s&after={after}&wait=60"));
    wait_for_watchers(&cluster, follower, 1);
    cluster.kill(leader);
    let (status, seen) = {
        cluster.wait_for_leader();
        cluster.ok(
            follower,
            &json!({"op": "put", "key": "s", "value": "after-failover"}),
        );
        watcher.join().unwrap()
    };
    assert_eq!(
        (status, seen["value"].clone()),
        (200, json!("after-failover")),
        "{seen}"
    );
    let after = seen["modified"].as_u64().unwrap();

    // The killed member comes back far behind: enough writes for the others to compact past
    // what it has, so it catches up from a snapshot. A watch waiting on it wakes then.
    let others: Vec<usize> = (0..cluster.len()).filter(|&i| i != leader).collect();
    for n in 0..60 {
        cluster.ok(
            others[0],
            &json!({"op": "put", "key": format!("fill{n}"), "value": "v"}),
        );
    }
    let last = cluster.ok(
        others[0],
        &json!({"op": "put", "key": "s", "value": "snapshotted"}),
    );
    cluster.start(leader);
    wait_until(
        "the restarted member answers",
        Duration::from_secs(10),
        || cluster.status(leader),
    );
    let watcher = watch_later(&cluster, leader, &format!("key=s&after={after}&wait=60"));
    let (status, seen) = watcher.join().unwrap();
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["value"], json!("snapshotted"), "{seen}");
    assert_eq!(seen["modified"], last["index"], "{seen}");
    let metrics = cluster
        .client
        .get(&cluster.url(leader, "/metrics"))
        .unwrap()
        .body;
    let installed = metrics.lines().find_map(|l| {
        l.strip_prefix("paxos_snapshots_installed_total ")?
            .parse::<u64>()
            .ok()
    });
    assert!(
        installed >= Some(1),
        "the member caught up without a snapshot:\n{metrics}"
    );
}
