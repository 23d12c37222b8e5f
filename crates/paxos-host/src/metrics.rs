//! `GET /metrics`: counters and gauges in the Prometheus text exposition format.
//!
//! Both servers count the same things under the same names, so one dashboard or benchmark script
//! reads either. Counters are plain atomics bumped where things happen; the node's own state and
//! [`paxos_core::Stats`] come from the [`Snapshot`] the driver publishes after every batch.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use paxos_core::{Membership, Role};

use crate::histogram::{self, Histogram};
use crate::status::Snapshot;

/// How many distinct member lists of senders get their own sample in
/// `paxos_peer_membership_mismatches_total`; the rest share `theirs="other"`.
const MEMBERSHIPS_SHOWN: usize = 16;

/// The Content-Type of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// How a client request ended, the `outcome` label of `paxos_client_requests_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Committed and applied: `200 {"ok": true}`.
    Ok,
    /// A `cas` whose `expected` did not match: `200 {"ok": false}`.
    Mismatch,
    /// Ordered in the log but refused by the state machine: `400` after commit.
    Rejected,
    /// Refused before reaching the log: malformed JSON, unknown op, missing field.
    BadRequest,
    /// A body over the limit: `413`.
    TooLarge,
    /// Not committed within the request timeout: `503`, outcome unknown.
    Timeout,
    /// Not taken or not finished because the server is overloaded or shutting down: `503`.
    Unavailable,
}

impl Outcome {
    const ALL: [Outcome; 7] = [
        Outcome::Ok,
        Outcome::Mismatch,
        Outcome::Rejected,
        Outcome::BadRequest,
        Outcome::TooLarge,
        Outcome::Timeout,
        Outcome::Unavailable,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Mismatch => "mismatch",
            Outcome::Rejected => "rejected",
            Outcome::BadRequest => "bad_request",
            Outcome::TooLarge => "too_large",
            Outcome::Timeout => "timeout",
            Outcome::Unavailable => "unavailable",
        }
    }

    /// The outcome of a command the log answered.
    pub fn of(answer: &paxos_core::Answer) -> Outcome {
        match answer {
            paxos_core::Answer::Done { .. } => Outcome::Ok,
            paxos_core::Answer::Mismatch { .. } => Outcome::Mismatch,
            paxos_core::Answer::Rejected { .. } => Outcome::Rejected,
            paxos_core::Answer::Overloaded { .. } => Outcome::Unavailable,
        }
    }
}

/// The `op` label of `paxos_client_request_duration_seconds`: each command's name, and `none`
/// for a request refused before its body was a command.
const OPS: [&str; 6] = ["get", "put", "delete", "cas", "append", "none"];

/// The counters, gauges and histograms both servers keep. Every counter only grows.
#[derive(Debug)]
pub struct Metrics {
    client_requests: [AtomicU64; Outcome::ALL.len()],
    /// Gauge: client requests waiting for their command to commit.
    client_waiting: AtomicU64,
    peer_envelopes_sent: AtomicU64,
    peer_messages_sent: AtomicU64,
    peer_send_errors: AtomicU64,
    peer_envelopes_received: AtomicU64,
    peer_messages_received: AtomicU64,
    peer_rejected: AtomicU64,
    peer_other_cluster: AtomicU64,
    /// Envelopes refused for another member list, by (ours, theirs); at most
    /// [`MEMBERSHIPS_SHOWN`] lists of theirs get a sample of their own.
    peer_other_membership: Mutex<BTreeMap<(String, String), u64>>,
    driver_batches: AtomicU64,
    driver_events: AtomicU64,
    fsyncs: AtomicU64,
    fsync_nanos: AtomicU64,
    records_persisted: AtomicU64,
    handler_panics: AtomicU64,
    tls_handshake_failures: AtomicU64,
    /// Gauge: watches waiting for their key to change.
    watches_waiting: AtomicU64,
    watches_changed: AtomicU64,
    watches_unchanged: AtomicU64,
    watches_refused: AtomicU64,
    /// Client request durations, by operation ([`OPS`]) and then by outcome ([`Outcome::ALL`]).
    request_seconds: Vec<Histogram>,
    fsync_seconds: Histogram,
    peer_post_seconds: Histogram,
    driver_batch_events: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            client_requests: Default::default(),
            client_waiting: AtomicU64::new(0),
            peer_envelopes_sent: AtomicU64::new(0),
            peer_messages_sent: AtomicU64::new(0),
            peer_send_errors: AtomicU64::new(0),
            peer_envelopes_received: AtomicU64::new(0),
            peer_messages_received: AtomicU64::new(0),
            peer_rejected: AtomicU64::new(0),
            peer_other_cluster: AtomicU64::new(0),
            peer_other_membership: Mutex::default(),
            driver_batches: AtomicU64::new(0),
            driver_events: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            fsync_nanos: AtomicU64::new(0),
            records_persisted: AtomicU64::new(0),
            handler_panics: AtomicU64::new(0),
            tls_handshake_failures: AtomicU64::new(0),
            watches_waiting: AtomicU64::new(0),
            watches_changed: AtomicU64::new(0),
            watches_unchanged: AtomicU64::new(0),
            watches_refused: AtomicU64::new(0),
            request_seconds: (0..OPS.len() * Outcome::ALL.len())
                .map(|_| Histogram::new(histogram::SECONDS))
                .collect(),
            fsync_seconds: Histogram::new(histogram::SECONDS),
            peer_post_seconds: Histogram::new(histogram::SECONDS),
            driver_batch_events: Histogram::new(histogram::COUNTS),
        }
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// A client request answered: its operation (`None` if its body was not a command), how it
    /// ended, and how long it took from its arrival.
    pub fn client_request(&self, op: Option<&str>, outcome: Outcome, took: Duration) {
        let index = Outcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .expect("listed");
        self.client_requests[index].fetch_add(1, Relaxed);
        let op = OPS
            .iter()
            .position(|&name| Some(name) == op)
            .unwrap_or(OPS.len() - 1);
        self.request_seconds[op * Outcome::ALL.len() + index].observe_duration(took);
    }

    /// One post of peer messages, whatever came of it, and how long it took.
    pub fn peer_post(&self, took: Duration) {
        self.peer_post_seconds.observe_duration(took);
    }

    /// Counts a client request as waiting until the returned guard drops, so the gauge stays
    /// right on every path out of a handler, including a cancelled or panicking one.
    pub fn client_waiting(&self) -> WaitingGuard<'_> {
        self.client_waiting.fetch_add(1, Relaxed);
        WaitingGuard(self)
    }

    /// The number of client requests waiting right now.
    pub fn client_waiting_now(&self) -> u64 {
        self.client_waiting.load(Relaxed)
    }

    /// One envelope of `messages` messages delivered to a peer.
    pub fn peer_sent(&self, messages: usize) {
        self.peer_envelopes_sent.fetch_add(1, Relaxed);
        self.peer_messages_sent.fetch_add(messages as u64, Relaxed);
    }

    /// One envelope that could not be delivered, and was dropped.
    pub fn peer_send_error(&self) {
        self.peer_send_errors.fetch_add(1, Relaxed);
    }

    pub fn peer_received(&self, messages: usize) {
        self.peer_envelopes_received.fetch_add(1, Relaxed);
        self.peer_messages_received
            .fetch_add(messages as u64, Relaxed);
    }

    /// A `/paxos/*` request refused: unauthorized, malformed, or before discovery.
    pub fn peer_rejected(&self) {
        self.peer_rejected.fetch_add(1, Relaxed);
    }

    /// A peer envelope refused because it names another cluster; returns how many were refused
    /// before it, so that only the first is worth a warning.
    pub fn peer_from_other_cluster(&self) -> u64 {
        self.peer_other_cluster.fetch_add(1, Relaxed)
    }

    /// A peer envelope refused because it was sent under another member list; returns how many
    /// from that list were refused before it, so that only the first is worth a warning.
    pub fn peer_from_other_membership(&self, ours: Membership, theirs: Membership) -> u64 {
        let mut counts = self
            .peer_other_membership
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut key = (ours.to_string(), theirs.to_string());
        // A stranger could send a new list with every envelope; their samples stay bounded.
        if !counts.contains_key(&key) && counts.len() >= MEMBERSHIPS_SHOWN {
            key.1 = "other".to_owned();
        }
        let count = counts.entry(key).or_insert(0);
        *count += 1;
        *count - 1
    }

    /// One driver turn that handled `events` inputs before one `take_ready`.
    pub fn driver_batch(&self, events: usize) {
        self.driver_batches.fetch_add(1, Relaxed);
        self.driver_events.fetch_add(events as u64, Relaxed);
        self.driver_batch_events.observe(events as f64);
    }

    pub fn fsync(&self, records: usize, took: Duration) {
        self.fsyncs.fetch_add(1, Relaxed);
        self.records_persisted.fetch_add(records as u64, Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.fsync_nanos.fetch_add(nanos, Relaxed);
        self.fsync_seconds.observe_duration(took);
    }

    /// Counts a watch as waiting until the returned guard drops.
    pub fn watch_waiting(&self) -> WatchGuard<'_> {
        self.watches_waiting.fetch_add(1, Relaxed);
        WatchGuard(self)
    }

    /// The number of watches waiting right now.
    pub fn watches_waiting_now(&self) -> u64 {
        self.watches_waiting.load(Relaxed)
    }

    /// A watch answered: with a change, with none by its deadline, or refused (`400`, `503`).
    pub fn watch_answered(&self, changed: Option<bool>) {
        let counter = match changed {
            Some(true) => &self.watches_changed,
            Some(false) => &self.watches_unchanged,
            None => &self.watches_refused,
        };
        counter.fetch_add(1, Relaxed);
    }

    /// A request whose handler panicked, answered `500`.
    pub fn handler_panic(&self) {
        self.handler_panics.fetch_add(1, Relaxed);
    }

    /// A connection to the TLS listener that closed, broke off or timed out before its
    /// handshake ended (a plain-HTTP client, a certificate the client refused or the listener
    /// did, a client that never finished).
    pub fn tls_handshake_failed(&self) {
        self.tls_handshake_failures.fetch_add(1, Relaxed);
    }

    /// The exposition text, with the node's state from `snapshot`.
    pub fn render(&self, runtime: &str, snapshot: &Snapshot) -> String {
        let mut out = String::with_capacity(4096);
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let load = |counter: &AtomicU64| counter.load(Relaxed) as f64;

        family(
            "paxos_runtime_info",
            "gauge",
            "Which runtime this server runs on.",
            &[(&format!("{{runtime=\"{runtime}\"}}"), 1.0)],
        );
        let labels: Vec<String> = Outcome::ALL
            .iter()
            .map(|o| format!("{{outcome=\"{}\"}}", o.label()))
            .collect();
        let samples: Vec<(&str, f64)> = labels
            .iter()
            .zip(&self.client_requests)
            .map(|(label, counter)| (label.as_str(), load(counter)))
            .collect();
        family(
            "paxos_client_requests_total",
            "counter",
            "Client requests answered, by outcome.",
            &samples,
        );
        let counters: [(&str, &str, &AtomicU64); 18] = [
            (
                "paxos_client_requests_waiting",
                "Client requests waiting for their command to commit.",
                &self.client_waiting,
            ),
            (
                "paxos_peer_envelopes_sent_total",
                "HTTP requests that delivered peer messages.",
                &self.peer_envelopes_sent,
            ),
            (
                "paxos_peer_messages_sent_total",
                "Paxos messages delivered to peers.",
                &self.peer_messages_sent,
            ),
            (
                "paxos_peer_send_errors_total",
                "Batches of peer messages dropped because delivery failed.",
                &self.peer_send_errors,
            ),
            (
                "paxos_peer_envelopes_received_total",
                "HTTP requests that brought peer messages.",
                &self.peer_envelopes_received,
            ),
            (
                "paxos_peer_messages_received_total",
                "Paxos messages received from peers.",
                &self.peer_messages_received,
            ),
            (
                "paxos_peer_requests_rejected_total",
                "Peer requests refused: unauthorized, malformed, or before discovery.",
                &self.peer_rejected,
            ),
            (
                "paxos_peer_cluster_mismatches_total",
                "Peer requests refused because they came from another cluster (also counted as \
                 rejected).",
                &self.peer_other_cluster,
            ),
            (
                "paxos_driver_batches_total",
                "Driver turns: inputs handled together before one persist and send.",
                &self.driver_batches,
            ),
            (
                "paxos_driver_events_total",
                "Inputs (client commands, peer messages, timers) the driver handled.",
                &self.driver_events,
            ),
            (
                "paxos_fsyncs_total",
                "Appends to the log made durable, one fsync each.",
                &self.fsyncs,
            ),
            (
                "paxos_records_persisted_total",
                "Durable records written to the log.",
                &self.records_persisted,
            ),
            (
                "paxos_handler_panics_total",
                "Requests whose handler panicked; each was answered 500 and the member served on.",
                &self.handler_panics,
            ),
            (
                "paxos_tls_handshake_failures_total",
                "Connections to the TLS listener that ended or timed out before their handshake \
                 did.",
                &self.tls_handshake_failures,
            ),
            (
                "paxos_watches_waiting",
                "Watches waiting for their key to change.",
                &self.watches_waiting,
            ),
            (
                "paxos_watches_changed_total",
                "Watches answered with a change.",
                &self.watches_changed,
            ),
            (
                "paxos_watches_unchanged_total",
                "Watches answered that nothing changed by their deadline.",
                &self.watches_unchanged,
            ),
            (
                "paxos_watches_refused_total",
                "Watches refused: bad input, too many waiting, or the member stopping.",
                &self.watches_refused,
            ),
        ];
        for (name, help, counter) in counters {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            family(name, kind, help, &[("", load(counter))]);
        }
        let mismatches: Vec<(String, f64)> = self
            .peer_other_membership
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|((ours, theirs), count)| {
                let labels = format!("{{ours=\"{ours}\",theirs=\"{theirs}\"}}");
                (labels, *count as f64)
            })
            .collect();
        let samples: Vec<(&str, f64)> = mismatches.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        family(
            "paxos_peer_membership_mismatches_total",
            "counter",
            "Peer requests refused because their sender was given another `servers` list, by \
             both lists' memberships (also counted as rejected).",
            &samples,
        );
        family(
            "paxos_fsync_seconds_total",
            "counter",
            "Time spent in fsync.",
            &[("", self.fsync_nanos.load(Relaxed) as f64 / 1e9)],
        );

        let node = snapshot.node.as_ref();
        let role = node.map(|s| s.role);
        let gauges = [
            (
                "paxos_discovered",
                "1 once this server has found itself among the config's servers.",
                f64::from(u8::from(snapshot.me.is_some())),
            ),
            (
                "paxos_is_leader",
                "1 while this server leads.",
                f64::from(u8::from(role == Some(Role::Leader))),
            ),
            (
                "paxos_ballot_round",
                "The round of the highest ballot this server promised.",
                node.map_or(0.0, |s| s.ballot.round as f64),
            ),
            (
                "paxos_commit_index",
                "Every log slot up to here is decided and known here.",
                node.map_or(0.0, |s| s.commit_index as f64),
            ),
            (
                "paxos_applied_index",
                "Every log slot up to here is applied to the key-value store.",
                // The same index as the commit index: slots are applied as they are learned.
                node.map_or(0.0, |s| s.commit_index as f64),
            ),
            (
                "paxos_commit_lag",
                "Decided slots a leader has announced that this server has not learned yet.",
                node.map_or(0.0, |s| (s.known_commit - s.commit_index) as f64),
            ),
        ];
        for (name, help, value) in gauges {
            family(name, "gauge", help, &[("", value)]);
        }
        let stats = &snapshot.stats;
        let core = [
            (
                "paxos_elections_started_total",
                "Elections this server started.",
                stats.elections_started,
            ),
            (
                "paxos_elections_won_total",
                "Elections this server won.",
                stats.elections_won,
            ),
            (
                "paxos_slots_proposed_total",
                "Log slots proposed while leading.",
                stats.slots_proposed,
            ),
            (
                "paxos_slots_decided_total",
                "Log slots learned decided.",
                stats.slots_decided,
            ),
            (
                "paxos_requests_forwarded_total",
                "Client requests forwarded to the leader.",
                stats.requests_forwarded,
            ),
            (
                "paxos_requests_dropped_total",
                "Forwarded requests dropped by a member that could not propose them.",
                stats.requests_dropped,
            ),
            (
                "paxos_requests_resent_total",
                "Own client requests sent again to a new leader.",
                stats.requests_resent,
            ),
            (
                "paxos_catch_up_requests_total",
                "Requests for decided entries this server was missing.",
                stats.catch_up_requests,
            ),
            (
                "paxos_compactions_total",
                "Times the log file was replaced by a snapshot and the slots after it.",
                stats.compactions,
            ),
            (
                "paxos_snapshots_sent_total",
                "Snapshots sent to members that asked for slots compacted away.",
                stats.snapshots_sent,
            ),
            (
                "paxos_snapshots_installed_total",
                "Snapshots taken from other members in place of the slots they stand for.",
                stats.snapshots_installed,
            ),
            (
                "paxos_leader_changes_total",
                "Times this member saw the leader change: a new leader it learned of, itself \
                 included. Climbing while nothing fails means leaders flap.",
                snapshot.leader_changes,
            ),
            (
                "paxos_ballots_refused_total",
                "Peer messages dropped for a ballot naming no member, past the highest round, or \
                 more than a step above any this member has seen.",
                stats.ballots_refused,
            ),
            (
                "paxos_messages_unvouched_total",
                "Peer messages dropped because their sender cannot vouch for them: a prepare, \
                 accept or commit not from its ballot's owner, decided entries or a snapshot from \
                 a member not asked.",
                stats.messages_unvouched,
            ),
            (
                "paxos_reads_linearizable_total",
                "Linearizable gets answered here without a log slot, each after the leader's \
                 read round confirmed its read index.",
                stats.reads_linearizable,
            ),
            (
                "paxos_reads_serializable_total",
                "Serializable gets answered here at once from this server's own store.",
                stats.reads_serializable,
            ),
            (
                "paxos_read_rounds_total",
                "Read rounds this server began as leader: one majority of acknowledgements each, \
                 for every read that waited.",
                stats.read_rounds,
            ),
            (
                "paxos_reads_refused_total",
                "Linearizable gets this server refused as leader because it held the most reads \
                 it takes at once: its own clients' (503) and followers' asks.",
                stats.reads_refused,
            ),
        ];
        for (name, help, value) in core {
            family(name, "counter", help, &[("", value as f64)]);
        }
        self.render_histograms(&mut out);
        out
    }

    fn render_histograms(&self, out: &mut String) {
        let name = "paxos_client_request_duration_seconds";
        histogram::header(
            out,
            name,
            "Client requests from arrival to answer, by operation and outcome (series that saw \
             no request are left out).",
        );
        for (i, histogram) in self.request_seconds.iter().enumerate() {
            let (op, outcome) = (
                OPS[i / Outcome::ALL.len()],
                Outcome::ALL[i % Outcome::ALL.len()],
            );
            if histogram.count() > 0 {
                let labels = format!("op=\"{op}\",outcome=\"{}\"", outcome.label());
                histogram.render(out, name, &labels);
            }
        }
        let singles = [
            (
                "paxos_fsync_duration_seconds",
                "How long each append to the log took to write and fsync.",
                &self.fsync_seconds,
            ),
            (
                "paxos_peer_post_duration_seconds",
                "How long each post of peer messages took, answered or not.",
                &self.peer_post_seconds,
            ),
            (
                "paxos_driver_batch_events",
                "Inputs the driver handled together in one turn, before one persist and send.",
                &self.driver_batch_events,
            ),
        ];
        for (name, help, histogram) in singles {
            histogram::header(out, name, help);
            histogram.render(out, name, "");
        }
    }
}

/// Decrements the waiting-watches gauge when dropped.
#[derive(Debug)]
pub struct WatchGuard<'a>(&'a Metrics);

impl Drop for WatchGuard<'_> {
    fn drop(&mut self) {
        self.0.watches_waiting.fetch_sub(1, Relaxed);
    }
}

/// Decrements the waiting-clients gauge when dropped.
#[derive(Debug)]
pub struct WaitingGuard<'a>(&'a Metrics);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.client_waiting.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lag_is_what_a_leader_announced_past_what_is_learned() {
        let snapshot = Snapshot {
            me: Some(1),
            node: Some(paxos_core::Status {
                role: Role::Follower,
                leader: Some(0),
                ballot: Default::default(),
                commit_index: 7,
                known_commit: 9,
            }),
            stats: Default::default(),
            leader_changes: 0,
        };
        let text = Metrics::new().render("async", &snapshot);
        assert!(text.contains("paxos_commit_index 7\n"), "{text}");
        assert!(text.contains("paxos_commit_lag 2\n"), "{text}");
    }

    #[test]
    fn renders_every_family_once_with_its_type() {
        let metrics = Metrics::new();
        metrics.client_request(Some("put"), Outcome::Timeout, Duration::from_millis(7));
        metrics.client_request(None, Outcome::BadRequest, Duration::from_micros(300));
        metrics.fsync(3, Duration::from_millis(1500));
        metrics.peer_post(Duration::from_millis(2));
        metrics.driver_batch(5);
        metrics.handler_panic();
        {
            let _waiting = metrics.client_waiting();
            assert_eq!(metrics.client_waiting_now(), 1);
        }
        let text = metrics.render("threaded", &Snapshot::default());
        assert!(text.contains("paxos_runtime_info{runtime=\"threaded\"} 1\n"));
        assert!(text.contains("paxos_client_requests_total{outcome=\"timeout\"} 1\n"));
        assert!(text.contains("paxos_client_requests_total{outcome=\"ok\"} 0\n"));
        assert!(text.contains("paxos_fsync_seconds_total 1.5\n"));
        assert!(text.contains("paxos_handler_panics_total 1\n"));
        assert!(text.contains("paxos_client_requests_waiting 0\n"));
        assert!(text.contains("# TYPE paxos_commit_index gauge\n"));
        // Histograms: cumulative buckets, the sum and the count; only series that saw a request.
        let put = r#"paxos_client_request_duration_seconds_bucket{op="put",outcome="timeout","#;
        assert!(text.contains(&format!("{put}le=\"0.005\"}} 0\n")), "{text}");
        assert!(text.contains(&format!("{put}le=\"0.01\"}} 1\n")), "{text}");
        assert!(text.contains(r#"_count{op="none",outcome="bad_request"} 1"#));
        assert!(!text.contains(r#"op="get""#), "an empty series is left out");
        assert!(text.contains("paxos_fsync_duration_seconds_bucket{le=\"+Inf\"} 1\n"));
        assert!(text.contains("paxos_fsync_duration_seconds_sum 1.5\n"));
        assert!(text.contains("paxos_peer_post_duration_seconds_count 1\n"));
        assert!(text.contains("paxos_driver_batch_events_bucket{le=\"4\"} 0\n"));
        assert!(text.contains("paxos_driver_batch_events_bucket{le=\"8\"} 1\n"));
        assert!(text.contains("# TYPE paxos_driver_batch_events histogram\n"));
        for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
            let name = line.split(' ').nth(2).unwrap();
            assert_eq!(
                text.matches(&format!("# TYPE {name} ")).count(),
                1,
                "{name}"
            );
        }
    }
}
