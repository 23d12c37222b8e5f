//! Logging: the subscriber both servers install, and every log line they write.
//!
//! The lines live here, one function each, so the two servers cannot drift apart: a log
//! processor, a test or a person comparing runs sees the same message for the same event,
//! whichever runtime wrote it.

use std::fmt::Display;
use std::path::Path;
use std::time::Duration;

use paxos_core::{Durable, Membership, Role, Status};
use tracing::level_filters::LevelFilter;
use tracing::{debug, error, info, warn};

/// The environment variable that sets the log level.
pub const LEVEL_ENV: &str = "PAXOS_LOG";

/// Installs a subscriber that writes to stderr at the level `PAXOS_LOG` names (default info).
/// An unknown level is a usage error: the line names the variable.
pub fn init() -> Result<(), String> {
    let level = match std::env::var(LEVEL_ENV) {
        Err(_) => LevelFilter::INFO,
        Ok(text) => text.trim().parse::<LevelFilter>().map_err(|_| {
            format!(
                "{LEVEL_ENV}=`{text}` is not a level; use error, warn, info, debug, trace or off"
            )
        })?,
    };
    // Installing twice (tests that start several servers in one process) keeps the first one.
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    Ok(())
}

/// The first line a member logs; a benchmark variant ([`crate::VARIANT_VAR`]) is named in it, so
/// that a member run as one is never mistaken for the server as designed.
pub fn starting(runtime: &str, server_id: &str, listen: impl Display, data_dir: &Path) {
    match crate::variant() {
        None => info!(runtime, server_id, %listen, data_dir = %data_dir.display(), "starting"),
        Some(variant) => {
            info!(runtime, variant, server_id, %listen, data_dir = %data_dir.display(), "starting");
        }
    }
}

pub fn replayed(data_dir: &Path, durable: &Durable, torn_bytes: u64) {
    if torn_bytes > 0 {
        warn!(data_dir = %data_dir.display(), torn_bytes, "cut a record torn by a crash off the end of the log");
    }
    info!(
        data_dir = %data_dir.display(),
        promised = %durable.promised,
        snapshot_slot = durable.snapshot.as_ref().map_or(0, |s| s.slot),
        accepted = durable.accepted.len(),
        decided = durable.decided.len(),
        "replayed the log"
    );
}

pub fn listening(address: impl Display) {
    info!(%address, "listening");
}

pub fn probe_failed(server: &str, reason: &str) {
    debug!(server, reason, "probe for my id failed");
}

pub fn found_myself(index: usize, server: &str, took: Duration) {
    info!(
        index,
        server,
        took_ms = took.as_millis() as u64,
        "found myself"
    );
}

pub fn discovery_failed(message: &str) {
    error!("{message}");
}

/// Logs what changed between two statuses: role, leader, or both.
pub fn status_changed(old: Option<&Status>, new: &Status, servers: &[String]) {
    let name = |member: Option<usize>| {
        member
            .and_then(|m| servers.get(m))
            .map_or("none", |s| s.as_str())
    };
    let changed = old.is_none_or(|old| old.role != new.role || old.leader != new.leader);
    if !changed {
        return;
    }
    match new.role {
        Role::Leader => info!(ballot = %new.ballot, commit_index = new.commit_index, "leading"),
        Role::Candidate => info!(ballot = %new.ballot, "running for election"),
        Role::Follower => info!(leader = name(new.leader), ballot = %new.ballot, "following"),
    }
}

pub fn peer_send_failed(server: &str, messages: usize, reason: impl Display) {
    debug!(server, messages, %reason, "could not deliver messages to a peer; dropped them");
}

pub fn peer_refused(reason: &str) {
    debug!(reason, "refused a peer request");
}

/// A peer envelope sent under another member list: a warning for the first from each list,
/// since it means a member was started with a different `servers` list, and a debug line after.
pub fn peer_from_other_membership(theirs: Membership, ours: Membership, refused_before: u64) {
    let (theirs, ours) = (theirs.to_string(), ours.to_string());
    if refused_before == 0 {
        warn!(
            theirs,
            ours,
            "refused peer messages sent under another member list: every member must be given \
             the same `servers`; further ones are counted in paxos_peer_membership_mismatches_total"
        );
    } else {
        debug!(
            theirs,
            ours, "refused peer messages sent under another member list"
        );
    }
}

/// A peer envelope from another cluster: a warning the first time, since it means two clusters
/// share a secret and a member of one reaches the other, and a debug line after that.
pub fn peer_from_other_cluster(theirs: &str, ours: &str, refused_before: u64) {
    if refused_before == 0 {
        warn!(
            theirs,
            ours,
            "refused peer messages from another cluster that knows our secret; further ones are \
             counted in paxos_peer_cluster_mismatches_total"
        );
    } else {
        debug!(theirs, ours, "refused peer messages from another cluster");
    }
}

pub fn requests_expired(count: usize) {
    debug!(count, "forgot client requests past their deadline");
}

pub fn persist_failed(data_dir: &Path, error: impl Display) {
    error!(data_dir = %data_dir.display(), %error, "could not make the log durable; stopping, since no further promise could be kept");
}

/// A failed `accept`, most often the process out of file descriptors; the server retries. Only
/// the async server logs it here: the threaded one's tiny_http logs through the `log` crate.
pub fn accept_failed(error: impl Display) {
    warn!(%error, "could not accept a connection; retrying shortly");
}

pub fn shutting_down() {
    info!("shutting down");
}

/// A stopping server's connections that were still in the middle of a request when the grace
/// period ended; their sockets are closed, so their clients get no answer.
pub fn connections_outlived_grace(grace: Duration, left: usize) {
    warn!(
        grace_ms = grace.as_millis() as u64,
        left, "connections still in the middle of a request after the grace period; closing them"
    );
}

/// A request whose handler panicked: the member answered `500` and serves on.
pub fn handler_panicked(method: &str, path: &str, message: &str) {
    error!(
        route = format_args!("{method} {path}"),
        message, "a request's handler panicked; answered 500"
    );
}

pub fn stopped() {
    info!("stopped");
}
