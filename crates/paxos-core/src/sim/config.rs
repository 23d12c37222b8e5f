//! What one run looks like, drawn from its seed: cluster size, protocol tuning, how bad the
//! network is, how often members crash, and the workload.
//!
//! The ranges are wide on purpose. Tiny batch and in-flight limits make the leader split its
//! messages and queue commands; short timeouts relative to the network's worst delays make
//! elections collide; a high loss rate makes retransmission and catch-up carry the load.

use std::time::Duration;

use super::network::Faults;
use crate::Tuning;
use crate::rng::Rng;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[derive(Clone, Debug)]
pub struct Config {
    pub members: usize,
    pub tuning: Tuning,
    pub network: Faults,
    /// How long a member takes to carry out a `Ready` (its fsync), at most.
    pub fsync: Duration,
    /// The chance that a member crashes while writing a `Ready`, before sending anything from it.
    pub crash_in_carry_out: f64,
    /// Between two chaos events (a crash, a partition, or nothing).
    pub chaos_every: (Duration, Duration),
    /// How long a crashed member stays down.
    pub down_for: (Duration, Duration),
    /// How long a partition lasts.
    pub partition_for: (Duration, Duration),
    pub plain_clients: usize,
    pub session_clients: usize,
    /// How long a client waits for an answer before it gives up on the attempt.
    pub client_timeout: Duration,
    /// The most a client waits between two operations.
    pub think: Duration,
    /// How long faults go on.
    pub faults_for: Duration,
    /// How long after healing a message sent before it may still arrive, plus the time to elect
    /// a leader: from then on, with no new election, no command may be lost.
    pub settle: Duration,
    /// How long clients go on after everything healed and settled.
    pub after_heal_for: Duration,
}

impl Config {
    pub fn draw(rng: &mut Rng) -> Config {
        let members = if rng.chance(0.5) { 3 } else { 5 };
        let heartbeat = rng.duration(ms(10), ms(40));
        let election = heartbeat * rng.between(4, 12) as u32;
        // Members give up on their own requests when their clients do, as the runtimes do.
        let client_timeout = election * rng.between(3, 8) as u32;
        let tuning = Tuning {
            heartbeat_interval: heartbeat,
            election_timeout: election,
            max_batch: rng.pick(&[1, 2, 3, 8, 256]),
            // The workload's values are a few bytes, so only the smallest limits cut batches.
            max_batch_bytes: rng.pick(&[1, 400, 1000, 4 << 20]),
            max_in_flight: rng.pick(&[1, 2, 5, 32, 4096]),
            max_in_flight_bytes: rng.pick(&[1, 600, 5000, 16 << 20]),
            catch_up_batch: rng.pick(&[1, 3, 16, 1024]),
            request_timeout: client_timeout,
            // Small intervals compact often, so that snapshots get sent and taken in most runs.
            snapshot_every: rng.pick(&[10, 50, 500, 10_000]),
            // Values weigh about 170 bytes here: the small budgets compact every few dozen
            // slots, and keep a few (or no) decided values in memory.
            snapshot_bytes: rng.pick(&[2_000, 20_000, 64 << 20]),
            max_decided_bytes: rng.pick(&[100, 1_000, 10_000, 32 << 20]),
            // A few clients never fill the default; refusals past the cap are the node tests'
            // (the liveness checks would take a refused probe for a lost one).
            max_reads_waiting: Tuning::default().max_reads_waiting,
        };
        // Sometimes long enough for a message to arrive several elections late.
        let longest_delay = election * rng.pick(&[2, 10]);
        let network = Faults {
            loss: rng.pick(&[0.0, 0.01, 0.05, 0.15]),
            duplicate: rng.pick(&[0.0, 0.02, 0.1]),
            delay: (
                rng.duration(Duration::from_micros(100), ms(1)),
                rng.duration(ms(1), ms(10)),
            ),
            long_delay_chance: rng.pick(&[0.0, 0.01, 0.05, 0.2]),
            long_delay: rng.duration(ms(20), longest_delay),
        };
        // Messages sent before healing may still arrive as late as the longest delay after it.
        let settle = election * 2 + network.long_delay;
        let clients = rng.between(2, 6) as usize;
        let session_clients = rng.between(1, clients as u64) as usize;
        Config {
            members,
            tuning,
            network,
            fsync: rng.pick(&[Duration::ZERO, Duration::from_micros(500), ms(3)]),
            crash_in_carry_out: rng.pick(&[0.0, 0.001, 0.005]),
            chaos_every: (ms(20), election * 2),
            down_for: (ms(1), election * 4),
            partition_for: (heartbeat, election * 6),
            plain_clients: clients - session_clients,
            session_clients,
            client_timeout,
            think: rng.pick(&[Duration::from_micros(10), ms(1), ms(10), ms(50)]),
            faults_for: rng.duration(ms(4000), ms(15_000)),
            settle,
            after_heal_for: rng.duration(ms(500), ms(1500)),
        }
    }
}
