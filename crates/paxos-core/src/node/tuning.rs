//! The protocol's knobs: timers, batch sizes and byte budgets.

use std::time::Duration;

/// The protocol's timing and batching knobs, with defaults for a LAN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// How often the leader sends heartbeats. It re-sends an unacknowledged accept after one
    /// interval, then after twice as long each time, up to `election_timeout`.
    pub heartbeat_interval: Duration,
    /// How long a follower waits without hearing a leader before it runs for election. Each wait
    /// is drawn between this and twice this, so candidates rarely collide.
    pub election_timeout: Duration,
    /// The most entries in one accept or forward message (a catch-up answer has its own
    /// bound, `catch_up_batch`).
    pub max_batch: usize,
    /// The most bytes of values (by [`LogValue::wire_size`](crate::log::LogValue::wire_size)) in one such message, so that a
    /// batch of large values never outgrows a peer's body limit. A single larger value still
    /// goes, alone.
    pub max_batch_bytes: usize,
    /// The most slots the leader has proposed but not yet seen decided; commands beyond it wait.
    pub max_in_flight: usize,
    /// The most bytes of values in those slots. It also bounds what an acceptor may have to
    /// report in one promise.
    pub max_in_flight_bytes: usize,
    /// The most decided entries in one catch-up answer.
    pub catch_up_batch: usize,
    /// How long a member keeps trying to get one of its own client requests decided: it sends
    /// the request again to each new leader until then. The runtime answers `503` at the same
    /// time, so the two agree on when a request is given up.
    pub request_timeout: Duration,
    /// How many applied slots a member lets its log file grow by before it compacts: it writes
    /// a snapshot of the store and drops the slots behind it.
    pub snapshot_every: u64,
    /// How many bytes of values (by [`LogValue::wire_size`](crate::log::LogValue::wire_size)) a member lets its log file grow by
    /// before it compacts, however few slots they fill: a few thousand large values would
    /// otherwise make a file of gigabytes.
    pub snapshot_bytes: usize,
    /// A member keeps the newest applied values in memory, to catch up members a little behind
    /// with entries: at most `catch_up_batch` of them, and at most this many bytes. A member
    /// further behind gets a snapshot. Values decided but not applied yet are kept whatever
    /// their size.
    pub max_decided_bytes: usize,
    /// The most linearizable reads a leader holds for its read rounds at once: its own clients'
    /// and the read indexes followers asked for, waiting for a round or in the one in flight.
    /// Past it a read is refused at once (a follower is told, and tells its client) rather than
    /// queued: while a round cannot be confirmed, followers ask again every election timeout,
    /// and nothing else would stop the queue from growing.
    pub max_reads_waiting: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            heartbeat_interval: Duration::from_millis(100),
            election_timeout: Duration::from_millis(1000),
            max_batch: 256,
            max_batch_bytes: 4 << 20,
            max_in_flight: 4096,
            max_in_flight_bytes: 16 << 20,
            catch_up_batch: 1024,
            request_timeout: Duration::from_secs(5),
            snapshot_every: 10_000,
            snapshot_bytes: 64 << 20,
            max_decided_bytes: 32 << 20,
            max_reads_waiting: 4096,
        }
    }
}
