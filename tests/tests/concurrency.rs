//! Many clients at once on every member: the list-append workload.

use std::collections::HashMap;
use std::time::Instant;

use paxos_tests::appends::AppendLoad;
use paxos_tests::{Cluster, Runtime, json, scenarios};

scenarios! {
    concurrent_appends,
}

const CLIENTS: usize = 32;
const APPENDS_EACH: usize = 50;

fn concurrent_appends(runtime: Runtime) {
    let cluster = Cluster::builder(runtime)
        .tuning("request_timeout_ms", 20_000)
        .start();
    let keys = ["list-a", "list-b", "list-c", "list-d"];
    let urls = (0..CLIENTS)
        .map(|c| cluster.url(c % cluster.len(), "/client-request"))
        .collect();
    let started = Instant::now();
    let history = AppendLoad::start(&cluster.client, urls, &keys, APPENDS_EACH).join();
    eprintln!(
        "{} appends by {CLIENTS} clients in {:?}",
        history.acked.len(),
        started.elapsed()
    );
    assert!(
        history.unknown.is_empty(),
        "{} appends were not answered 200 in a healthy cluster: {:?}",
        history.unknown.len(),
        &history.unknown[..history.unknown.len().min(10)]
    );
    assert_eq!(history.acked.len(), CLIENTS * APPENDS_EACH);

    // Every member answers the same final lists, which agree with every acknowledgement.
    let mut answers = Vec::new();
    for i in 0..cluster.len() {
        let finals: HashMap<String, Vec<String>> = keys
            .iter()
            .map(|key| {
                let value = cluster.ok(i, &json!({"op": "get", "key": key}))["value"].clone();
                (
                    (*key).to_owned(),
                    serde_json::from_value(value).expect("a list"),
                )
            })
            .collect();
        history.check(&finals);
        answers.push(finals);
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "members disagree");
    let total: usize = answers[0].values().map(Vec::len).sum();
    assert_eq!(total, CLIENTS * APPENDS_EACH, "the lists hold extra values");
}
