//! The harness of the Twin Paxos integration suite.
//!
//! Every scenario in `tests/tests/*.rs` is written once, as a function of [`Runtime`], and the
//! [`scenarios!`] macro turns it into one test per server: `threaded::leader_failover` and
//! `async_::leader_failover`. Members are the real binaries (`target/<profile>/paxos-threaded`
//! and `paxos-async`, see [`runtime`]), started as processes on loopback on free ports, each with
//! its own data dir in a temporary directory; their output goes to log files there, which are
//! printed when a test fails.
//!
//! - [`runtime`]: which server, and where its binary is.
//! - [`ports`]: free loopback ports that no other test of this process gets.
//! - [`tempdir`]: a temporary directory removed on drop.
//! - [`tls`]: certificates made at run time for the TLS scenarios.
//! - [`config`]: the cluster config file.
//! - [`cluster`]: a cluster of member processes, killed on drop.
//! - [`http`]: a small blocking HTTP client and the shapes of the API's answers.
//! - [`fixtures`]: the wire samples of `shared/fixtures/`.
//! - [`gate`]: a port that refuses connections until opened, to hold a member in discovery.
//! - [`netns`]: hosts in Linux network namespaces, each with two addresses and three names, for
//!   scenarios across separate hosts.
//! - [`appends`]: a list-append workload and the checks its answers imply.
//! - [`nemesis`]: the nemesis runner behind `just nemesis` (binary `src/bin/nemesis.rs`): faults
//!   injected into a cluster under load, and a check of the whole history.

pub mod appends;
pub mod cluster;
pub mod config;
pub mod fixtures;
pub mod gate;
pub mod http;
pub mod nemesis;
pub mod netns;
pub mod ports;
pub mod runtime;
pub mod tempdir;
pub mod tls;

use std::time::{Duration, Instant};

pub use cluster::{Cluster, ClusterBuilder};
pub use config::Config;
pub use http::{Client, Response};
pub use runtime::Runtime;
pub use serde_json::{Value as Json, json};

/// Expands one scenario body per runtime: `scenarios! { a, b }` defines `threaded::a`,
/// `async_::a`, `threaded::b` and `async_::b`, each calling `super::a(Runtime::…)`. Attributes
/// before a name go on both of its tests (`#[ignore = "why"] c`); attributes after `@threaded`
/// or `@async_` behind a name go on that server's test only
/// (`d @async_ #[ignore = "a bug of the async server"]`).
#[macro_export]
macro_rules! scenarios {
    ($(
        $(#[$meta:meta])* $name:ident
        $(@threaded $(#[$threaded:meta])+)?
        $(@async_ $(#[$async_:meta])+)?
    ),+ $(,)?) => {
        mod threaded {
            $(
                $(#[$meta])*
                $($(#[$threaded])+)?
                #[test]
                fn $name() {
                    super::$name($crate::Runtime::Threaded)
                }
            )+
        }
        mod async_ {
            $(
                $(#[$meta])*
                $($(#[$async_])+)?
                #[test]
                fn $name() {
                    super::$name($crate::Runtime::Async)
                }
            )+
        }
    };
}

/// A start order of `0..n` shuffled from a fresh seed, different from run to run (the scenario
/// that uses it prints it, so a failure can be repeated with the same order).
pub fn shuffled(n: usize) -> Vec<usize> {
    let mut rng = nemesis::rng::Rng::new(nemesis::rng::fresh_seed());
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.index(i + 1));
    }
    order
}

/// Polls `check` every 20 ms until it returns `Some`, and returns that; panics after `timeout`
/// naming `what`. The timeout is a generous upper bound, never a way to synchronise.
pub fn wait_until<T>(what: &str, timeout: Duration, check: impl FnMut() -> Option<T>) -> T {
    wait_until_or(timeout, check)
        .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting until {what}"))
}

/// Like [`wait_until`], but `None` after `timeout` instead of a panic, for a caller that must
/// clean up before it fails.
pub fn wait_until_or<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Like [`wait_until`] for a condition.
pub fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    wait_until(what, timeout, || check().then_some(()))
}
