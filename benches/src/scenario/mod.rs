//! The scenarios, one file each: each starts real servers, measures, and returns rows for the
//! report. This file holds what they share: how a cluster is started for measuring, in which
//! order the two servers take turns, and which member plays which role.
//!
//! Where order could favour one server (the machine warms up, the disk's cache fills, another
//! worker's load comes and goes), a scenario runs in rounds whose order alternates as the
//! Thue-Morse sequence does: threaded then async, async then threaded, async then threaded,
//! threaded then async, ... (A B, B A, B A, A B: two rounds are A B B A), and merges each
//! server's rounds, so a drift that is linear in time lands on both alike.

pub mod bare;
pub mod cancellation;
pub mod etcd;
pub mod focused;
pub mod hello;
pub mod idle;
pub mod lifecycle;
pub mod open_loop;
pub mod scaling;
pub mod shutdown;
pub mod threads;
pub mod throughput;
pub mod tls;
pub mod variants;

use paxos_tests::{Cluster, ClusterBuilder, Runtime};

use crate::cpus::CpuSet;
use crate::procfs;
use crate::tls::BenchTls;

/// The two servers, in the order of a round that starts with threaded.
pub const RUNTIMES: [Runtime; 2] = [Runtime::Threaded, Runtime::Async];

/// Whether round `round` runs its turns in reverse: the Thue-Morse sequence (0, 1, 1, 0, 1, 0,
/// 0, 1, ...), so that any two rounds in a row, and every power of two of rounds, are balanced.
pub fn reversed(round: usize) -> bool {
    round.count_ones() % 2 == 1
}

/// The indices `0..n` in the order round `round` takes them: forwards, or backwards when
/// [`reversed`].
pub fn turns(round: usize, n: usize) -> Vec<usize> {
    match reversed(round) {
        false => (0..n).collect(),
        true => (0..n).rev().collect(),
    }
}

/// How the order of rounds is described in the report.
pub const ORDER: &str = "rounds alternate in Thue-Morse order (A B, B A, B A, A B, ...), so two \
                         rounds run A B B A";

/// How the servers under test are started: on which CPUs.
#[derive(Clone, Debug, Default)]
pub struct Servers {
    /// `--cpus`: every server process starts pinned to these; unpinned when `None`.
    pub cpus: Option<CpuSet>,
}

impl Servers {
    /// A cluster builder of `runtime`, through `taskset` when the servers are pinned.
    pub fn builder(&self, runtime: Runtime) -> ClusterBuilder {
        self.builder_on(runtime, self.cpus.as_ref())
    }

    /// A cluster builder of `runtime` pinned to `cpus` (or unpinned).
    pub fn builder_on(&self, runtime: Runtime, cpus: Option<&CpuSet>) -> ClusterBuilder {
        let builder = Cluster::builder(runtime);
        match cpus {
            Some(cpus) => {
                let launcher = cpus.launcher();
                let launcher: Vec<&str> = launcher.iter().map(String::as_str).collect();
                builder.launcher(&launcher)
            }
            None => builder,
        }
    }

    /// A cluster tuned for measuring: a heartbeat and election timeout closer to the defaults
    /// than the suite's fast ones, run as `variant` (or as designed).
    pub fn bench_cluster(&self, runtime: Runtime, variant: Option<&str>) -> Cluster {
        self.bench_builder(runtime, variant, self.cpus.as_ref())
            .start()
    }

    /// The builder of [`Servers::bench_cluster`], pinned to `cpus`.
    pub fn bench_builder(
        &self,
        runtime: Runtime,
        variant: Option<&str>,
        cpus: Option<&CpuSet>,
    ) -> ClusterBuilder {
        let builder = self
            .builder_on(runtime, cpus)
            .tuning("heartbeat_ms", 100)
            .tuning("election_timeout_ms", 1000);
        match variant {
            Some(variant) => builder.env("PAXOS_VARIANT", variant),
            None => builder,
        }
    }

    /// A cluster as [`Servers::bench_cluster`] starts it as designed, serving HTTPS to clients
    /// and between members with `tls`, or plain HTTP with `None`.
    pub fn bench_cluster_tls(&self, runtime: Runtime, tls: Option<&BenchTls>) -> Cluster {
        let builder = self.bench_builder(runtime, None, self.cpus.as_ref());
        match tls {
            Some(tls) => tls.apply(builder).start(),
            None => builder.start(),
        }
    }

    /// How the servers are pinned, for the report.
    pub fn describe(&self) -> String {
        match &self.cpus {
            Some(cpus) => format!(
                "servers pinned to CPUs {cpus} with `taskset`, load generator {}",
                crate::cpus::LoadPinned::describe(cpus)
            ),
            None => "servers and load generator unpinned".to_owned(),
        }
    }
}

/// Every member's client address.
pub fn addrs(cluster: &Cluster) -> Vec<String> {
    cluster
        .members
        .iter()
        .map(|m| m.listen.to_string())
        .collect()
}

/// Every running member's process id, by member index.
pub fn pids(cluster: &Cluster) -> Vec<u32> {
    (0..cluster.len()).filter_map(|i| cluster.pid(i)).collect()
}

/// The most threads any of `pids` has now.
pub fn max_threads(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|&pid| procfs::sample(pid))
        .map(|s| s.threads)
        .max()
        .unwrap_or(0)
}

/// A member that is not the leader: the role the idle-connection and shutdown scenarios measure
/// on both servers, so that neither is measured on its leader and the other on a follower.
pub fn follower(cluster: &Cluster) -> usize {
    let leader = cluster.wait_for_leader();
    (0..cluster.len())
        .find(|&i| i != leader)
        .expect("a cluster of more than one member")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_rounds_run_a_b_b_a() {
        let order: Vec<Vec<usize>> = (0..4).map(|r| turns(r, 2)).collect();
        assert_eq!(order, vec![vec![0, 1], vec![1, 0], vec![1, 0], vec![0, 1]]);
    }
}
