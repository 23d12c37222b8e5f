//! The cluster config file: who the members are, the optional shared secret, and the tuning.
//!
//! ```json
//! {
//!   "servers": ["127.0.0.1:7001", "localhost:7002", "127.0.0.1:7003"],
//!   "routes": {"localhost:7002": "127.0.0.1:9002"},
//!   "secret": "optional shared cluster secret",
//!   "cluster": "twin-paxos",
//!   "heartbeat_ms": 100,
//!   "election_timeout_ms": 1000,
//!   "discovery_retry_ms": 1000,
//!   "discovery_timeout_ms": 60000,
//!   "request_timeout_ms": 5000,
//!   "max_batch": 256,
//!   "snapshot_every": 10000,
//!   "snapshot_bytes": 67108864,
//!   "max_decided_bytes": 33554432,
//!   "client_timeout_ms": 30000,
//!   "max_watches": 4096,
//!   "max_watch_wait_ms": 300000,
//!   "max_connections": 8192,
//!   "tls": {"cert": "member.pem", "key": "member.key", "ca": "ca.pem", "require_client_cert": false}
//! }
//! ```
//!
//! Only `servers` is required. Every member must be given the same `servers` list, in the same
//! order and spelling, because a member's position in the list is its Paxos identity: members
//! refuse each other's messages when their lists differ (see [`paxos_core::Membership`]). A
//! member that must reach another at some other address (through a proxy, or over another
//! network) says so in `routes`, which may differ from member to member. Unknown
//! fields are refused rather than ignored, so a misspelt tuning field is an error and not a
//! silently ignored wish.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::split_host_port;

/// The most members a cluster may list. Nine tolerates four failures; beyond that Paxos's
/// all-to-all messages cost more than the fault tolerance is worth.
pub const MAX_SERVERS: usize = 9;

/// A parsed and checked cluster config.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `host:port` of every member, the same list on every member.
    pub servers: Vec<String>,
    /// Where this member sends peer messages for a member other than its `servers` entry:
    /// `{"<servers entry>": "host:port"}`. Each member may have its own routes.
    #[serde(default)]
    pub routes: BTreeMap<String, String>,
    /// When set, every `/paxos/*` request must carry `Authorization: Bearer <secret>`. Without
    /// it anyone who reaches a member can speak as a peer, so a server without one starts only
    /// where nobody else can reach it (see [`Config::check_exposure`]) or when `insecure` says
    /// so.
    #[serde(default)]
    pub secret: Option<String>,
    /// Runs without a `secret` even where others can reach the members: for a network where
    /// every host is trusted. Off by default.
    #[serde(default)]
    pub insecure: bool,
    /// The cluster's name, carried in every peer envelope; a member refuses envelopes from
    /// another cluster. Clusters that share a secret must have distinct names, or a message
    /// recorded in one could be replayed into the other.
    #[serde(default = "defaults::cluster")]
    pub cluster: String,
    /// How often the leader sends heartbeats and re-sends unacknowledged accepts.
    #[serde(default = "defaults::heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// How long a follower waits without hearing a leader before it runs for election (each
    /// wait is drawn between this and twice this).
    #[serde(default = "defaults::election_timeout_ms")]
    pub election_timeout_ms: u64,
    /// The pause between two probes of a `servers` entry that has not answered yet.
    #[serde(default = "defaults::discovery_retry_ms")]
    pub discovery_retry_ms: u64,
    /// How long a server looks for itself among `servers` before it gives up (exit status 1).
    #[serde(default = "defaults::discovery_timeout_ms")]
    pub discovery_timeout_ms: u64,
    /// How long a client request may wait for its command to commit before it is answered
    /// `503` (its outcome then unknown).
    #[serde(default = "defaults::request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// The most log entries in one accept or forward message.
    #[serde(default = "defaults::max_batch")]
    pub max_batch: usize,
    /// How many applied slots the log file may grow by before the member compacts it: writes a
    /// snapshot of the store and drops the slots behind it.
    #[serde(default = "defaults::snapshot_every")]
    pub snapshot_every: u64,
    /// How many bytes of values the log file may grow by before the member compacts it, however
    /// few slots they fill: large values compact sooner.
    #[serde(default = "defaults::snapshot_bytes")]
    pub snapshot_bytes: usize,
    /// The most bytes of applied values a member keeps in memory to catch up members slightly
    /// behind; a member further behind gets a snapshot.
    #[serde(default = "defaults::max_decided_bytes")]
    pub max_decided_bytes: usize,
    /// How long a connection may take to send a request head, counted from when the server
    /// starts waiting for it (the accept, or the previous answer on a keep-alive connection), and
    /// again to send a body, counted from the end of the head. Past it the connection is closed:
    /// this is what frees the connections of idle and slow clients, so it is also the idle
    /// keep-alive timeout (hyper, under the async server, has one clock for both).
    #[serde(default = "defaults::client_timeout_ms")]
    pub client_timeout_ms: u64,
    /// The most watches waiting at once; more are refused `503` at once. Each holds a connection
    /// (and on the threaded server its thread), so the bound stays under `max_connections`,
    /// leaving room for peers and other clients.
    #[serde(default = "defaults::max_watches")]
    pub max_watches: usize,
    /// The longest a watch may ask to wait for a change (`wait`), in milliseconds.
    #[serde(default = "defaults::max_watch_wait_ms")]
    pub max_watch_wait_ms: u64,
    /// The most connections served at once, peers' and clients' together. At the bound the
    /// server stops accepting until one closes, which `client_timeout_ms` bounds. The threaded
    /// server holds a thread and two file descriptors per connection, so the bound must stay
    /// under half the process's open-files limit.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// When set, the member serves HTTPS only and reaches its peers over HTTPS (see
    /// [`crate::tls`]).
    #[serde(default)]
    pub tls: Option<TlsFiles>,
}

/// The config's `tls` object: PEM files, relative to the config file's directory unless
/// absolute.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// This member's certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key of `cert`'s leaf, unencrypted.
    pub key: PathBuf,
    /// The CA certificates that members' certificates must chain to.
    pub ca: PathBuf,
    /// Whether the listener refuses every connection without a client certificate that chains
    /// to `ca` (mutual TLS). Off by default.
    #[serde(default)]
    pub require_client_cert: bool,
}

/// Whether `address` (`host:port`) names this host's loopback interface. Names other than
/// `localhost` could resolve anywhere, so they do not count.
fn on_loopback(address: &str) -> bool {
    let host = split_host_port(address).map_or(address, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

mod defaults {
    pub fn cluster() -> String {
        "twin-paxos".to_owned()
    }
    pub fn heartbeat_ms() -> u64 {
        100
    }
    pub fn election_timeout_ms() -> u64 {
        1000
    }
    pub fn discovery_retry_ms() -> u64 {
        1000
    }
    pub fn discovery_timeout_ms() -> u64 {
        60_000
    }
    pub fn request_timeout_ms() -> u64 {
        5000
    }
    pub fn max_batch() -> usize {
        256
    }
    pub fn snapshot_every() -> u64 {
        10_000
    }
    pub fn snapshot_bytes() -> usize {
        paxos_core::Tuning::default().snapshot_bytes
    }
    pub fn max_decided_bytes() -> usize {
        paxos_core::Tuning::default().max_decided_bytes
    }
    /// Long enough for any honest client on a slow network, short enough that a slow-loris
    /// client frees its connection (and, on threads, its thread) within half a minute. It is
    /// hyper's own default header timeout.
    pub fn client_timeout_ms() -> u64 {
        30_000
    }
    /// Half the default connection bound: thousands of watchers, and room beside them.
    pub fn max_watches() -> usize {
        4096
    }
    /// Five minutes: a watcher asks again after each answer, so longer waits buy little.
    pub fn max_watch_wait_ms() -> u64 {
        300_000
    }
    /// Comfortably above the 5,000 idle or slow connections a member must survive, and within
    /// a 20,000 open-files limit at the threaded server's two descriptors per connection.
    pub fn max_connections() -> usize {
        8192
    }
}

/// A config that cannot be used: the file and what is wrong with it, on one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config file {}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let error = |reason: String| ConfigError {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(format!("cannot read: {e}")))?;
        let mut config = Config::parse(&text).map_err(error)?;
        // Like a shell's relative paths, but from where the config file is, not where the
        // server was started: a unit file or a test may start it anywhere.
        if let Some(tls) = &mut config.tls {
            let dir = path.parent().unwrap_or(Path::new(""));
            for file in [&mut tls.cert, &mut tls.key, &mut tls.ca] {
                *file = dir.join(&*file);
            }
        }
        Ok(config)
    }

    /// Parses and checks config text; the error is one sentence without the file name.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config =
            serde_json::from_str(text).map_err(|e| format!("invalid config JSON: {e}"))?;
        config.check()?;
        Ok(config)
    }

    /// A config for `servers` with every other field at its default, for tests and benches.
    pub fn with_servers(servers: Vec<String>) -> Config {
        Config {
            servers,
            routes: BTreeMap::new(),
            secret: None,
            insecure: false,
            cluster: defaults::cluster(),
            heartbeat_ms: defaults::heartbeat_ms(),
            election_timeout_ms: defaults::election_timeout_ms(),
            discovery_retry_ms: defaults::discovery_retry_ms(),
            discovery_timeout_ms: defaults::discovery_timeout_ms(),
            request_timeout_ms: defaults::request_timeout_ms(),
            max_batch: defaults::max_batch(),
            snapshot_every: defaults::snapshot_every(),
            snapshot_bytes: defaults::snapshot_bytes(),
            max_decided_bytes: defaults::max_decided_bytes(),
            client_timeout_ms: defaults::client_timeout_ms(),
            max_watches: defaults::max_watches(),
            max_watch_wait_ms: defaults::max_watch_wait_ms(),
            max_connections: defaults::max_connections(),
            tls: None,
        }
    }

    fn check(&self) -> Result<(), String> {
        let n = self.servers.len();
        if n == 0 {
            return Err("`servers` is empty; list every member as \"host:port\"".to_owned());
        }
        if n > MAX_SERVERS {
            return Err(format!(
                "`servers` lists {n} entries; at most {MAX_SERVERS} are allowed"
            ));
        }
        for (i, server) in self.servers.iter().enumerate() {
            split_host_port(server).map_err(|e| format!("`servers` entry `{server}`: {e}"))?;
            if self.servers[..i].contains(server) {
                return Err(format!("`servers` lists `{server}` more than once"));
            }
        }
        for (entry, address) in &self.routes {
            if !self.servers.contains(entry) {
                return Err(format!(
                    "`routes` names `{entry}`, which is not a `servers` entry"
                ));
            }
            split_host_port(address).map_err(|e| format!("`routes` address `{address}`: {e}"))?;
        }
        if self.secret.as_deref() == Some("") {
            return Err("`secret` is empty; omit it to run without authentication".to_owned());
        }
        if self.cluster.is_empty() {
            return Err(
                "`cluster` is empty; omit it for the default name, `twin-paxos`".to_owned(),
            );
        }
        let positive = [
            ("heartbeat_ms", self.heartbeat_ms),
            ("election_timeout_ms", self.election_timeout_ms),
            ("discovery_retry_ms", self.discovery_retry_ms),
            ("discovery_timeout_ms", self.discovery_timeout_ms),
            ("request_timeout_ms", self.request_timeout_ms),
            ("max_batch", self.max_batch as u64),
            ("snapshot_every", self.snapshot_every),
            ("snapshot_bytes", self.snapshot_bytes as u64),
            ("max_decided_bytes", self.max_decided_bytes as u64),
            ("client_timeout_ms", self.client_timeout_ms),
            ("max_connections", self.max_connections as u64),
            ("max_watches", self.max_watches as u64),
            ("max_watch_wait_ms", self.max_watch_wait_ms),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(format!("`{field}` must be at least 1"));
            }
        }
        if let Some(tls) = &self.tls {
            for (field, file) in [("cert", &tls.cert), ("key", &tls.key), ("ca", &tls.ca)] {
                if file.as_os_str().is_empty() {
                    return Err(format!(
                        "`tls.{field}` is empty; give the path of a PEM file"
                    ));
                }
            }
        }
        if self.max_watches >= self.max_connections {
            return Err(format!(
                "`max_watches` ({}) must be below `max_connections` ({}), or waiting watches \
                 could hold every connection and shut peers out",
                self.max_watches, self.max_connections
            ));
        }
        if self.election_timeout_ms <= self.heartbeat_ms {
            return Err(format!(
                "`election_timeout_ms` ({}) must be greater than `heartbeat_ms` ({}), or followers \
                 would run for election between two heartbeats",
                self.election_timeout_ms, self.heartbeat_ms
            ));
        }
        Ok(())
    }

    /// Refuses to run without a `secret` where strangers could reach a member: unless `insecure`
    /// is set, every `servers` entry, every route and `listen` (this server's address) must be
    /// on loopback (`localhost`, `127.0.0.0/8` or `[::1]`). One forged peer message can take a
    /// cluster's service away, so an open port without the secret is a footgun, not a default.
    pub fn check_exposure(&self, listen: &str) -> Result<(), String> {
        if self.secret.is_some() || self.insecure {
            return Ok(());
        }
        let addresses = self.servers.iter().chain(self.routes.values());
        let exposed = std::iter::once(listen)
            .chain(addresses.map(String::as_str))
            .find(|address| !on_loopback(address));
        match exposed {
            None => Ok(()),
            Some(address) => Err(format!(
                "there is no `secret`, but `{address}` is not a loopback address, so anyone who \
                 reaches it could pose as a member and stop the cluster; set `secret` (the same \
                 long random string on every member), or `\"insecure\": true` on a network whose \
                 every host you trust"
            )),
        }
    }

    /// The scheme members speak: `https` with `tls`, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Where to send peer messages for `member`: its route, or else its `servers` entry.
    pub fn peer_address(&self, member: paxos_core::MemberId) -> &str {
        let entry = &self.servers[member];
        self.routes.get(entry).unwrap_or(entry)
    }

    /// The member list this server runs under, which every peer envelope carries.
    pub fn membership(&self) -> paxos_core::Membership {
        paxos_core::Membership::of(&self.servers)
    }

    /// The protocol knobs for [`paxos_core::Node`].
    pub fn tuning(&self) -> paxos_core::Tuning {
        paxos_core::Tuning {
            heartbeat_interval: Duration::from_millis(self.heartbeat_ms),
            election_timeout: Duration::from_millis(self.election_timeout_ms),
            max_batch: self.max_batch,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            snapshot_every: self.snapshot_every,
            snapshot_bytes: self.snapshot_bytes,
            max_decided_bytes: self.max_decided_bytes,
            ..paxos_core::Tuning::default()
        }
    }

    pub fn discovery_retry(&self) -> Duration {
        Duration::from_millis(self.discovery_retry_ms)
    }

    pub fn discovery_timeout(&self) -> Duration {
        Duration::from_millis(self.discovery_timeout_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn max_watch_wait(&self) -> Duration {
        Duration::from_millis(self.max_watch_wait_ms)
    }

    pub fn client_timeout(&self) -> Duration {
        Duration::from_millis(self.client_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_in_defaults() {
        let config = Config::parse(r#"{"servers": ["127.0.0.1:7001", "localhost:7002"]}"#).unwrap();
        assert_eq!(
            config,
            Config::with_servers(vec!["127.0.0.1:7001".into(), "localhost:7002".into()])
        );
        assert_eq!(config.tuning(), paxos_core::Tuning::default());
        assert_eq!(config.request_timeout(), Duration::from_secs(5));
    }

    #[test]
    fn takes_every_documented_field() {
        let text = r#"{"servers": ["h:1"], "secret": "s", "heartbeat_ms": 10,
            "election_timeout_ms": 50, "discovery_retry_ms": 20, "discovery_timeout_ms": 300,
            "request_timeout_ms": 700, "max_batch": 8, "client_timeout_ms": 900,
            "max_connections": 100, "max_watches": 50, "max_watch_wait_ms": 2000}"#;
        let config = Config::parse(text).unwrap();
        assert_eq!(config.secret.as_deref(), Some("s"));
        assert_eq!(config.cluster, "twin-paxos", "the default name");
        assert_eq!(config.tuning().max_batch, 8);
        assert_eq!(config.discovery_timeout(), Duration::from_millis(300));
        assert_eq!(config.client_timeout(), Duration::from_millis(900));
        assert_eq!(config.max_connections, 100);
        let routed = r#"{"servers": ["h:1", "h:2"], "routes": {"h:2": "proxy:9"}}"#;
        let config = Config::parse(routed).unwrap();
        assert_eq!(
            (config.peer_address(0), config.peer_address(1)),
            ("h:1", "proxy:9")
        );
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        let err = |text: &str| Config::parse(text).unwrap_err();
        assert!(err("{").starts_with("invalid config JSON"));
        assert!(err(r#"{"servers": ["h:1"], "sekret": "x"}"#).contains("unknown field `sekret`"));
        assert!(err(r#"{"servers": []}"#).contains("empty"));
        assert!(err(r#"{}"#).contains("missing field `servers`"));
        assert!(err(r#"{"servers": ["h:1", "h:1"]}"#).contains("more than once"));
        assert!(err(r#"{"servers": ["h"]}"#).contains("`servers` entry `h`"));
        assert!(err(r#"{"servers": ["h:x"]}"#).contains("port"));
        assert!(err(r#"{"servers": ["h:1"], "routes": {"h:2": "p:1"}}"#).contains("`h:2`"));
        assert!(err(r#"{"servers": ["h:1"], "routes": {"h:1": "p"}}"#).contains("`p`"));
        assert!(err(r#"{"servers": ["h:1"], "secret": ""}"#).contains("`secret` is empty"));
        assert!(err(r#"{"servers": ["h:1"], "cluster": ""}"#).contains("`cluster` is empty"));
        assert!(err(r#"{"servers": ["h:1"], "max_batch": 0}"#).contains("`max_batch`"));
        let ten: Vec<String> = (1..=10).map(|p| format!("\"h:{p}\"")).collect();
        assert!(err(&format!(r#"{{"servers": [{}]}}"#, ten.join(","))).contains("at most 9"));
        let slow = r#"{"servers": ["h:1"], "heartbeat_ms": 500, "election_timeout_ms": 500}"#;
        assert!(err(slow).contains("greater than `heartbeat_ms`"));
    }

    #[test]
    fn no_secret_only_on_loopback_or_when_insecure() {
        let config = |text: &str| Config::parse(text).unwrap();
        let local =
            config(r#"{"servers": ["127.0.0.1:1", "localhost:2", "[::1]:3", "127.9.9.9:4"]}"#);
        assert_eq!(local.check_exposure("127.0.0.1:1"), Ok(()));
        let open = local.check_exposure("0.0.0.0:1").unwrap_err();
        assert!(
            open.contains("`0.0.0.0:1`") && open.contains("`secret`"),
            "{open}"
        );
        let remote = config(r#"{"servers": ["127.0.0.1:1", "db-2.internal:2"]}"#);
        assert!(
            remote
                .check_exposure("127.0.0.1:1")
                .unwrap_err()
                .contains("db-2.internal:2")
        );
        let routed =
            config(r#"{"servers": ["127.0.0.1:1"], "routes": {"127.0.0.1:1": "10.0.0.9:1"}}"#);
        assert!(
            routed
                .check_exposure("127.0.0.1:1")
                .unwrap_err()
                .contains("10.0.0.9:1")
        );
        let secret = config(r#"{"servers": ["db-1.internal:1"], "secret": "s"}"#);
        assert_eq!(secret.check_exposure("0.0.0.0:1"), Ok(()));
        let insecure = config(r#"{"servers": ["db-1.internal:1"], "insecure": true}"#);
        assert_eq!(insecure.check_exposure("0.0.0.0:1"), Ok(()));
    }

    #[test]
    fn tls_paths_are_relative_to_the_config_file() {
        let dir = std::env::temp_dir().join(format!("paxos-tls-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cluster.json");
        let text = r#"{"servers": ["h:1"], "tls": {"cert": "tls/m.pem", "key": "/abs/m.key",
            "ca": "ca.pem"}}"#;
        std::fs::write(&path, text).unwrap();
        let config = Config::load(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let tls = config.tls.as_ref().unwrap();
        assert_eq!(tls.cert, dir.join("tls/m.pem"));
        assert_eq!(tls.key, PathBuf::from("/abs/m.key"));
        assert_eq!(tls.ca, dir.join("ca.pem"));
        assert!(!tls.require_client_cert);
        assert_eq!(config.scheme(), "https");
        let unknown =
            r#"{"servers": ["h:1"], "tls": {"cert": "a", "key": "b", "ca": "c", "x": 1}}"#;
        assert!(Config::parse(unknown).is_err());
        let empty = r#"{"servers": ["h:1"], "tls": {"cert": "", "key": "b", "ca": "c"}}"#;
        assert!(
            Config::parse(empty)
                .unwrap_err()
                .contains("`tls.cert` is empty")
        );
    }

    #[test]
    fn errors_name_the_file() {
        let error = Config::load(Path::new("/nonexistent/cluster.json")).unwrap_err();
        let line = error.to_string();
        assert!(
            line.starts_with("config file /nonexistent/cluster.json: cannot read"),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }
}
