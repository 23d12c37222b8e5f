//! The benchmark's variants of each server (`PAXOS_VARIANT`): every member says in its log that it
//! runs one, and still serves commands, so the benchmark's rows for them measure a working server.

use paxos_tests::{Cluster, Runtime, json, scenarios};

scenarios! {
    every_variant_serves,
}

/// The variants each server's `variants.rs` lists.
fn variants(runtime: Runtime) -> &'static [&'static str] {
    match runtime {
        Runtime::Threaded => &["handler-pool", "per-request-threads"],
        Runtime::Async => &["current-thread"],
    }
}

fn every_variant_serves(runtime: Runtime) {
    for variant in variants(runtime) {
        let cluster = Cluster::builder(runtime)
            .env(paxos_host::VARIANT_VAR, variant)
            .start();
        let logs = cluster.logs();
        let named = format!("variant=\"{variant}\"");
        let starts = logs.lines().filter(|l| l.contains("starting"));
        assert_eq!(
            starts.filter(|l| l.contains(&named)).count(),
            cluster.len(),
            "every member says it runs {variant}:\n{logs}"
        );
        for i in 0..cluster.len() {
            let key = format!("k{i}");
            let put = json!({"op": "put", "key": key, "value": variant});
            let response = cluster.request(i, &put);
            assert_eq!(response.status, 200, "{variant}: put on member {i}");
            let got = cluster.request((i + 1) % cluster.len(), &json!({"op": "get", "key": key}));
            assert_eq!(got.status, 200, "{variant}: get on member {}", i + 1);
            assert_eq!(
                got.json()["value"],
                json!(variant),
                "{variant}: {}",
                got.json()
            );
        }
    }
}
