//! The example configs of `shared/configs/` and the suite's own configs are valid, as judged by
//! the parser both servers use.

use std::path::PathBuf;

use paxos_host::config::Config as ServerConfig;
use paxos_tests::Config;

fn example(name: &str) -> ServerConfig {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/configs")
        .join(name);
    ServerConfig::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_example_config_is_valid() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/configs");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            ServerConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} configs in {}", dir.display());
}

#[test]
fn local_3_is_what_the_run_recipes_expect() {
    let config = example("local-3.json");
    assert_eq!(
        config.servers,
        ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"]
    );
    assert_eq!(config.secret, None);
}

#[test]
fn local_3_aliases_mixes_spellings() {
    let config = example("local-3-aliases.json");
    let hosts: Vec<&str> = config
        .servers
        .iter()
        .map(|s| s.rsplit_once(':').unwrap().0)
        .collect();
    assert_eq!(hosts, ["localhost", "127.0.0.1", "127.0.0.2"]);
}

#[test]
fn three_hosts_example_uses_host_names_and_a_secret() {
    let config = example("three-hosts.example.json");
    assert_eq!(config.servers.len(), 3);
    assert!(
        config.servers.iter().all(|s| s
            .rsplit_once(':')
            .unwrap()
            .0
            .parse::<std::net::IpAddr>()
            .is_err()),
        "the multi-machine example should show host names"
    );
    assert!(config.secret.is_some());
}

#[test]
fn the_suites_fast_tuning_is_valid() {
    let config = Config::fast(vec!["127.0.0.1:1".into(), "localhost:2".into()])
        .set("request_timeout_ms", 20_000);
    let parsed = ServerConfig::parse(&config.to_json().to_string()).unwrap();
    assert!(parsed.election_timeout_ms > parsed.heartbeat_ms);
    assert_eq!(parsed.request_timeout_ms, 20_000);
}
