//! Watchers spread evenly over every member of a cluster, and one write's fan-out to them: the
//! one-member watchers ladder's top step again, split three ways.
//!
//! The bench process holds every watcher's socket, as in the one-member case, so the same count
//! fits the same open-files limit however it is split.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::http::Conn;
use crate::idle::{self, Fanout};
use crate::procfs;

/// The key the spread watchers wait on: not [`idle::WATCHED`], which the one-member case's
/// write changed, so that these watches wait rather than answer at once.
pub const SPREAD_WATCHED: &str = "watched-spread";

/// What the spread watchers cost, summed over the members, and how one write reached them.
#[derive(Clone, Debug, Serialize)]
pub struct Spread {
    pub members: usize,
    /// Watchers waiting when the write was made.
    pub held: usize,
    /// Resident KiB and threads the members gained per waiting watcher, all members together.
    pub kib_per_watcher: f64,
    pub threads_per_watcher: f64,
    pub fanout: Fanout,
}

/// Opens `n` watches of [`SPREAD_WATCHED`], the `i`th on member `i % targets.len()`, samples
/// the members (`pids`, by member) before and after, then calls `write` and times the answers.
/// `None` if a member exited.
pub fn spread(targets: &[String], pids: &[u32], n: usize, write: impl FnOnce()) -> Option<Spread> {
    let sum = || -> Option<(u64, u64)> {
        pids.iter().try_fold((0, 0), |(kib, threads), &pid| {
            let s = procfs::sample(pid)?;
            Some((kib + s.rss_kib, threads + s.threads))
        })
    };
    let before = sum()?;
    let conns: Vec<Conn> = (0..n)
        .map_while(|i| watch(&targets[i % targets.len()]).ok())
        .collect();
    let held = conns.len();
    // The last watches may still be on their way in: sample once the members hold them all.
    let waiting = || -> u64 {
        targets
            .iter()
            .filter_map(|t| idle::watches_waiting(t))
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while waiting() < held as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = sum()?;
    let per = |more: u64, less: u64| (more as f64 - less as f64) / held.max(1) as f64;
    Some(Spread {
        members: targets.len(),
        held,
        kib_per_watcher: per(after.0, before.0),
        threads_per_watcher: per(after.1, before.1),
        fanout: idle::fan_out(conns, write),
    })
}

/// One connection, answered once, then waiting on a watch of [`SPREAD_WATCHED`] for an hour.
fn watch(target: &str) -> std::io::Result<Conn> {
    let mut conn = idle::open_idle(target, 0)?;
    let path = format!("/watch?key={SPREAD_WATCHED}&wait=3600");
    conn.send("GET", &path, b"")?;
    Ok(conn)
}
