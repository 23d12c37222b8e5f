//! TLS between separate hosts: each member in a network namespace of its own
//! (`tests/src/netns.rs`), with a certificate of its own issued for the name the config reaches
//! it by, members verifying each other against the CA under `require_client_cert`, and the
//! harness's client on a host of its own. Skipped with one line saying why where namespaces
//! cannot be made (not root, no `ip`), and failed instead when `PAXOS_TESTS_REQUIRE_NETNS` is set,
//! as in `hosts.rs`; the network's drop guard removes every namespace, link and hosts file.

use std::time::Duration;

use paxos_tests::netns::{Host, Lan, Network};
use paxos_tests::tempdir::TempDir;
use paxos_tests::tls::{Certs, Pair};
use paxos_tests::{Cluster, Runtime, json, scenarios, wait_until};

scenarios! {
    tls_across_hosts,
    tls_name_mismatch_fails_discovery,
}

/// Every cluster here listens on addresses that are not loopback, so it needs a secret.
const SECRET: &str = "netns TLS scenarios: the same long random string on every member";

/// The scenario's network of `hosts` hosts, or `None` (after one line saying why) where
/// namespaces cannot be made.
fn network(runtime: Runtime, scenario: &str, hosts: usize) -> Option<Network> {
    let module = match runtime {
        Runtime::Threaded => "threaded",
        Runtime::Async => "async_",
    };
    Network::for_scenario(&format!("hosts_tls::{module}::{scenario}"), hosts)
}

/// The name the configs here reach `host`'s member by: its cluster-network name,
/// `nodeI.cluster.test`, which resolves (in every host's hosts file) to lan A's address only.
fn cluster_name(host: &Host) -> String {
    host.names()[1].clone()
}

/// A certificate for `host` carrying `name` and the host's front address: peers dial `name`
/// and check it; the harness's client resolves names with this machine's hosts file, which does
/// not know the hosts, so it dials the front address and checks that.
fn member_cert(certs: &Certs, host: &Host, name: &str) -> Pair {
    let front = host.addr(Lan::B).to_string();
    certs.member_for(&host.label, &[name, &front])
}

/// Members named by their cluster-network names, each with `certs` from `pair_of`, mutual TLS on.
fn tls_cluster(
    runtime: Runtime,
    net: &Network,
    certs: &Certs,
    pair_of: impl Fn(usize, &Host) -> Pair,
) -> Cluster {
    let entries: Vec<String> = net.hosts.iter().map(Host::cluster_entry).collect();
    // `tls` makes the harness's client speak HTTPS, trusting the CA and presenting `member`;
    // each member's own config then names its own certificate.
    let mut cluster = Cluster::builder(runtime)
        .on_network(net, &entries)
        .secret(SECRET)
        .tuning("discovery_timeout_ms", 5000)
        .tls(certs, &certs.member, true)
        .build();
    for (i, host) in net.hosts.iter().enumerate() {
        let own = cluster
            .config
            .clone()
            .set("tls", certs.config(&pair_of(i, host), true));
        cluster.set_member_config(i, own);
    }
    cluster
}

/// Each member on its own host with a certificate for the name the config uses for it: every
/// member finds itself over HTTPS, they elect a leader over mutual TLS, and a client on its own
/// host puts through one member and reads through each.
fn tls_across_hosts(runtime: Runtime) {
    let Some(net) = network(runtime, "tls_across_hosts", 3) else {
        return;
    };
    let dir = TempDir::new("hosts-tls-certs");
    let certs = Certs::make(dir.path());
    let mut cluster = tls_cluster(runtime, &net, &certs, |_, host| {
        member_cert(&certs, host, &cluster_name(host))
    });
    cluster.start_all();
    for (i, host) in net.hosts.iter().enumerate() {
        let me = wait_until(
            &format!("member {i} finds itself over TLS"),
            Duration::from_secs(20),
            || cluster.status(i)?["self"].as_str().map(str::to_owned),
        );
        assert_eq!(me, host.cluster_entry(), "member {i}");
    }
    let leader = cluster.wait_for_leader();
    assert!(cluster.url(leader, "/").starts_with("https://"));
    let put_through = (leader + 1) % cluster.len();
    cluster.ok(
        put_through,
        &json!({"op": "put", "key": "across", "value": "tls"}),
    );
    for i in 0..cluster.len() {
        let answer = cluster.ok(i, &json!({"op": "get", "key": "across"}));
        assert_eq!(answer["value"], json!("tls"), "member {i}: {answer}");
    }
}

/// Member 0's certificate is for its other name (`node0.front.test`), not the one the config
/// reaches it by (`node0.cluster.test`): it cannot verify itself, so its discovery fails with a
/// message that names the entry and says the certificate is not valid for that name; the two
/// members with right certificates still elect a leader and serve.
fn tls_name_mismatch_fails_discovery(runtime: Runtime) {
    let Some(net) = network(runtime, "tls_name_mismatch_fails_discovery", 3) else {
        return;
    };
    let dir = TempDir::new("hosts-tls-certs");
    let certs = Certs::make(dir.path());
    let mut cluster = tls_cluster(runtime, &net, &certs, |i, host| match i {
        0 => member_cert(&certs, host, &host.names()[2]),
        _ => member_cert(&certs, host, &cluster_name(host)),
    });
    cluster.start_all();
    let status = cluster.wait_exit(0, Duration::from_secs(30));
    let log = std::fs::read_to_string(&cluster.members[0].log).unwrap_or_default();
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{log}");
    let entry = net.hosts[0].cluster_entry();
    let line = log
        .lines()
        .find(|l| l.contains("could not find myself"))
        .unwrap_or_else(|| panic!("no discovery failure in the log:\n{log}"));
    eprintln!("member 0 said: {line}");
    assert!(line.contains(&entry), "{line}");
    assert!(
        line.contains(&format!(
            "not valid for name \"{}\"",
            cluster_name(&net.hosts[0])
        )) && line.contains(&format!("certificate is for {}", net.hosts[0].names()[2])),
        "{line}"
    );
    let leader = cluster.wait_for_leader();
    assert_ne!(leader, 0);
    cluster.ok(leader, &json!({"op": "put", "key": "k", "value": "v"}));
}
