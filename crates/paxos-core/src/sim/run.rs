//! One simulated run: a cluster, its network, its clients and the faults, driven by one seed.
//!
//! The run is a discrete-event loop on simulated time. At each step it takes whatever is due
//! first (ties in a fixed order): a scheduled event (a client starting or timing out, a chaos
//! event, a restart), a message arriving, a member carrying out its node's `Ready`, or a node's
//! timer. A node that took input carries out its `Ready` a little later (its fsync), so inputs
//! that arrive meanwhile are batched into one `Ready`, as a runtime batches them; a crash in
//! between loses them all.
//!
//! A run has four phases:
//!
//! 1. *Faults*: clients run while members crash and restart, partitions come and go, and the
//!    network loses, duplicates, delays and reorders messages.
//! 2. *Healed*: partitions end, the network stops losing messages, every crashed member restarts,
//!    and clients go on for a while; from here every exactly-once command must get through.
//! 3. *Probes*: once every client is done, one final read of every key from every member.
//! 4. *Settle*: the cluster runs until every member has applied the same log.
//!
//! Then the checkers judge what happened.

//!
//! The jobs are one per file: this one is the scheduler (the phases and the loop that takes
//! whatever is due first); [`super::runtime`] carries out each member's `Ready` as a runtime
//! would; [`super::chaos`] injects faults; [`super::driving`] submits the clients' commands and
//! takes their answers; [`super::trace`] prints steps; [`super::report`] says what a run did.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use super::checks;
use super::client::{Client, Kind, LIST_KEYS, REGISTER_KEY};
use super::cluster::{Cluster, Sabotage};
use super::config::Config;
use super::network::Network;
use super::queue::Queue;
use super::report::{Failure, Report};
use super::serializable;
use super::trace::{brief, trace};
use crate::check::History;
use crate::check::linearizability;
use crate::rng::Rng;
use crate::{MemberId, RequestId, Time};

/// After healing, every command must complete within this much simulated time.
pub const LIVENESS_BOUND: Duration = Duration::from_secs(30);

/// A run that takes more steps than this is stuck (a timer that does not advance, a message
/// storm), which is a bug in itself.
const MAX_STEPS: u64 = 20_000_000;

/// Something scheduled to happen at a simulated time.
#[derive(Debug)]
pub(super) enum Event {
    /// A client starts its next operation.
    ClientStart(usize),
    /// A client submits its current operation (again).
    Attempt { client: usize, attempt: u64 },
    /// A client's attempt has waited long enough.
    Timeout { client: usize, attempt: u64 },
    /// Time for the next fault, maybe.
    Chaos,
    /// A crashed (or not yet started) member starts.
    Restart(MemberId),
}

/// One run's whole world: the cluster, its network, its clients, the history they make,
/// and the queue of what is due when.
#[derive(Debug)]
pub(super) struct Sim {
    pub(super) rng: Rng,
    pub(super) now: Time,
    pub(super) config: Config,
    pub(super) cluster: Cluster,
    pub(super) net: Network,
    pub(super) clients: Vec<Client>,
    /// Which client waits on each submitted request.
    pub(super) waiting: BTreeMap<RequestId, usize>,
    /// Attempts their clients gave up on, with their operation: a member may still answer them.
    pub(super) abandoned: BTreeMap<RequestId, usize>,
    pub(super) history: History,
    pub(super) events: Queue<Event>,
    pub(super) healed_at: Option<Time>,
    /// When each election started, in order.
    pub(super) elections: Vec<Time>,
    pub(super) attempts: u64,
    pub(super) partitions: u32,
    pub(super) forgeries: u64,
    pub(super) steps: u64,
    /// Set when the run must stop: something was violated while it ran.
    pub(super) halted: Option<String>,
    pub(super) trace: bool,
}

/// Runs the simulation for `seed`, with every node breaking the rule `sabotage` names, if any.
pub fn run(seed: u64, sabotage: Sabotage) -> Result<Report, Failure> {
    let mut rng = Rng::new(seed);
    let config = Config::draw(&mut rng);
    let mut sim = Sim {
        net: Network::new(config.network.clone()),
        cluster: Cluster::new(config.members, config.tuning.clone(), sabotage),
        clients: Vec::new(),
        rng,
        now: Time::ZERO,
        config,
        waiting: BTreeMap::new(),
        abandoned: BTreeMap::new(),
        history: History::default(),
        events: Queue::default(),
        healed_at: None,
        elections: Vec::new(),
        attempts: 0,
        partitions: 0,
        forgeries: 0,
        steps: 0,
        halted: None,
        trace: std::env::var_os("PAXOS_SIM_TRACE").is_some(),
    };
    let violations = sim.play();
    if violations.is_empty() {
        Ok(sim.report())
    } else {
        Err(Failure {
            seed,
            violations,
            config: format!("{:?}", sim.config),
        })
    }
}

impl Sim {
    /// Plays every phase and returns what the checkers found.
    fn play(&mut self) -> Vec<String> {
        let keys: Vec<&str> = LIST_KEYS.iter().copied().chain([REGISTER_KEY]).collect();
        // Members of a real cluster start minutes apart; some here join late and must catch up.
        for m in 0..self.cluster.size() {
            if self.rng.chance(0.8) {
                self.start(m);
            } else {
                let at = self
                    .rng
                    .duration(Duration::ZERO, self.config.faults_for / 2);
                self.events.push(at, Event::Restart(m));
            }
        }
        let plain = self.config.plain_clients;
        for c in 0..plain + self.config.session_clients {
            let kind = if c < plain {
                Kind::Plain
            } else {
                Kind::Session {
                    client_id: format!("c{c}"),
                    next_seq: 1,
                }
            };
            self.clients.push(Client::new(c, kind));
            let at = self.rng.duration(Duration::ZERO, Duration::from_millis(20));
            self.events.push(at, Event::ClientStart(c));
        }
        let first_chaos = self
            .rng
            .duration(self.config.chaos_every.0, self.config.chaos_every.1);
        self.events.push(first_chaos, Event::Chaos);

        // Phase 1: faults.
        let heal_at = self.config.faults_for;
        self.run_until(heal_at, |_| false);

        // Phase 2: healed.
        trace!(self, "heal");
        self.healed_at = Some(self.now);
        self.net.heal();
        for m in 0..self.cluster.size() {
            if !self.cluster.is_up(m) {
                self.start(m);
            }
        }
        let stop_at = self.now + self.config.settle + self.config.after_heal_for;
        self.run_until(stop_at, |_| false);
        self.clients.iter_mut().for_each(|c| c.stopped = true);
        let deadline = self.now + LIVENESS_BOUND + self.config.client_timeout;
        self.run_until(deadline, |sim| sim.clients.iter().all(Client::is_done));

        // Phase 3: probes.
        let first_probe = self.clients.len();
        for m in 0..self.cluster.size() {
            let c = self.clients.len();
            let keys = keys.iter().map(|k| k.to_string()).collect();
            self.clients
                .push(Client::new(c, Kind::Probe { member: m, keys }));
            self.events.push(self.now, Event::ClientStart(c));
        }
        let deadline = self.now + LIVENESS_BOUND;
        self.run_until(deadline, |sim| sim.clients.iter().all(Client::is_done));

        // Phase 4: settle.
        let deadline = self.now + LIVENESS_BOUND;
        self.run_until(deadline, |sim| {
            checks::converged(&sim.cluster, &keys).is_none()
        });

        const CAP: usize = 5;
        let mut violations: Vec<String> = self.halted.iter().cloned().collect();
        violations.extend(checks::capped(checks::agreement(&self.cluster), CAP));
        if self.halted.is_none() {
            if let Some(diverged) = checks::converged(&self.cluster, &keys) {
                violations.push(format!(
                    "liveness: members had not converged {LIVENESS_BOUND:?} after the probes: \
                     {diverged}"
                ));
            }
            let healed_at = self.healed_at.expect("healed");
            let late = checks::liveness(
                &self.history,
                first_probe,
                healed_at,
                LIVENESS_BOUND,
                self.now,
            );
            violations.extend(checks::capped(late, CAP));
            let settle = self.config.settle;
            let lost = checks::quiet_liveness(
                &self.history,
                first_probe,
                healed_at,
                &self.elections,
                settle,
                self.config.client_timeout,
            );
            violations.extend(checks::capped(lost, CAP));
            let once = checks::exactly_once(&self.history, &self.cluster, &LIST_KEYS);
            violations.extend(checks::capped(once, CAP));
        }
        let stale = serializable::check(&self.history, &self.cluster);
        violations.extend(checks::capped(stale, CAP));
        violations.extend(
            linearizability::check(&self.history.ops)
                .into_iter()
                .map(|e| format!("linearizability: {e}")),
        );
        violations
    }

    fn report(&self) -> Report {
        let mut hasher = DefaultHasher::new();
        for op in &self.history.ops {
            op.to_string().hash(&mut hasher);
        }
        let stats = &self.net.stats;
        (
            stats.sent,
            stats.delivered,
            stats.lost,
            stats.duplicated,
            stats.blocked,
        )
            .hash(&mut hasher);
        let nodes = self.cluster.stats();
        let ops = &self.history.ops;
        Report {
            elections_won: nodes.elections_won,
            catch_ups: nodes.catch_up_requests,
            compactions: nodes.compactions,
            snapshots_installed: nodes.snapshots_installed,
            forgeries: self.forgeries,
            ballots_refused: nodes.ballots_refused,
            unvouched: nodes.messages_unvouched,
            unknown: ops.iter().filter(|op| op.completion.is_none()).count(),
            retries: ops.iter().map(|op| u64::from(op.attempts - 1)).sum(),
            members: self.cluster.size(),
            ops: self.history.ops.len(),
            completed: self
                .history
                .ops
                .iter()
                .filter(|op| op.completion.is_some())
                .count(),
            crashes: self.cluster.members.iter().map(|m| m.crashes).sum(),
            partitions: self.partitions,
            messages: stats.sent,
            steps: self.steps,
            simulated: self.now,
            fingerprint: hasher.finish(),
        }
    }

    // ------------------------------------------------------------------ the loop

    /// Steps until `done` holds, nothing is due before `deadline`, or the run halted; time then
    /// stands at `deadline` (or where `done` became true).
    fn run_until(&mut self, deadline: Time, done: impl Fn(&Sim) -> bool) {
        while self.halted.is_none() && !done(self) {
            if !self.step(deadline) {
                self.now = self.now.max(deadline);
                return;
            }
        }
    }

    /// Takes the earliest thing due, if it is due by `deadline`.
    fn step(&mut self, deadline: Time) -> bool {
        #[derive(Clone, Copy)]
        enum Next {
            Event,
            Message,
            CarryOut(MemberId),
            Timer(MemberId),
        }
        let mut next: Option<(Time, Next)> = None;
        let mut consider = |at: Option<Time>, what: Next| {
            if let Some(at) = at
                && next.is_none_or(|(best, _)| at < best)
            {
                next = Some((at, what));
            }
        };
        consider(self.events.next_at(), Next::Event);
        consider(self.net.next_at(), Next::Message);
        for (m, member) in self.cluster.members.iter().enumerate() {
            consider(member.carry_out_at, Next::CarryOut(m));
        }
        for (m, member) in self.cluster.members.iter().enumerate() {
            consider(
                member.node.as_ref().map(|n| n.poll_timeout()),
                Next::Timer(m),
            );
        }
        let Some((at, what)) = next else {
            return false;
        };
        if at > deadline {
            return false;
        }
        self.steps += 1;
        if self.steps > MAX_STEPS {
            self.halted = Some(format!("no progress: more than {MAX_STEPS} steps"));
            return false;
        }
        // A timer a node set in the past fires now; time never runs backwards.
        self.now = self.now.max(at);
        match what {
            Next::Event => {
                let (_, event) = self.events.pop().expect("an event is due");
                self.on_event(event);
            }
            Next::Message => {
                let (_, delivery) = self.net.pop().expect("a message is due");
                if let Some((from, to, msg)) = delivery
                    && let Some(node) = self.cluster.node(to)
                {
                    trace!(self, "{from} -> {to}: {}", brief(&msg));
                    node.handle_message(self.now, from, msg);
                    self.dirty(to);
                }
            }
            Next::CarryOut(m) => self.carry_out(m),
            Next::Timer(m) => {
                let now = self.now;
                let node = self
                    .cluster
                    .node(m)
                    .expect("only running nodes have timers");
                let elections = node.stats().elections_started;
                node.handle_timeout(now);
                if node.stats().elections_started > elections {
                    self.elections.push(now);
                }
                if node.poll_timeout() <= now {
                    self.halted = Some(format!(
                        "member {m}'s timer does not advance: handle_timeout({now:?}) left \
                         poll_timeout at {:?}",
                        node.poll_timeout()
                    ));
                }
                self.dirty(m);
            }
        }
        true
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::ClientStart(c) => self.client_start(c),
            Event::Attempt { client, attempt } => {
                if self.clients[client]
                    .current
                    .as_ref()
                    .is_some_and(|cur| cur.attempt == attempt)
                {
                    self.submit(client);
                }
            }
            Event::Timeout { client, attempt } => {
                if self.clients[client]
                    .current
                    .as_ref()
                    .is_some_and(|cur| cur.attempt == attempt)
                {
                    trace!(self, "client {client} times out");
                    self.abandon_attempt(client, Duration::ZERO);
                }
            }
            Event::Chaos => self.chaos(),
            Event::Restart(m) => {
                if !self.cluster.is_up(m) {
                    self.start(m);
                }
            }
        }
    }
}
