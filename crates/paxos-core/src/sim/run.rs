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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use super::checks;
use super::client::{Client, Current, Kind, LIST_KEYS, REGISTER_KEY};
use super::cluster::Cluster;
use super::config::Config;
use super::forger::{self, Forgery};
use super::network::{Network, Partition};
use super::queue::Queue;
use crate::check::History;
use crate::check::linearizability;
use crate::rng::Rng;
use crate::{Answer, MemberId, RequestId, Time, To, storage};

/// After healing, every command must complete within this much simulated time.
pub const LIVENESS_BOUND: Duration = Duration::from_secs(30);

/// A run that takes more steps than this is stuck (a timer that does not advance, a message
/// storm), which is a bug in itself.
const MAX_STEPS: u64 = 20_000_000;

#[derive(Debug)]
enum Event {
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

/// What a passing run did, for the summary and the determinism test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub members: usize,
    pub ops: usize,
    pub completed: usize,
    pub crashes: u32,
    pub partitions: u32,
    pub messages: u64,
    pub elections_won: u64,
    pub catch_ups: u64,
    pub compactions: u64,
    /// Snapshots members took from others in place of slots.
    pub snapshots_installed: u64,
    /// Forged messages delivered, one per target.
    pub forgeries: u64,
    pub ballots_refused: u64,
    /// Messages dropped because their sender could not vouch for them.
    pub unvouched: u64,
    /// Operations whose outcome stayed unknown.
    pub unknown: usize,
    /// Extra attempts of exactly-once operations.
    pub retries: u64,
    pub steps: u64,
    pub simulated: Duration,
    /// A hash of the whole history and the network's counters.
    pub fingerprint: u64,
}

/// A run that broke something.
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub violations: Vec<String>,
    pub config: String,
}

#[derive(Debug)]
struct Sim {
    rng: Rng,
    now: Time,
    config: Config,
    cluster: Cluster,
    net: Network,
    clients: Vec<Client>,
    /// Which client waits on each submitted request.
    waiting: BTreeMap<RequestId, usize>,
    /// Attempts their clients gave up on, with their operation: a member may still answer them.
    abandoned: BTreeMap<RequestId, usize>,
    history: History,
    events: Queue<Event>,
    healed_at: Option<Time>,
    /// When each election started, in order.
    elections: Vec<Time>,
    attempts: u64,
    partitions: u32,
    forgeries: u64,
    steps: u64,
    /// Set when the run must stop: something was violated while it ran.
    halted: Option<String>,
    trace: bool,
}

/// Runs the simulation for `seed`; with `sabotage`, every acceptor ignores its promises.
pub fn run(seed: u64, sabotage: bool) -> Result<Report, Failure> {
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

macro_rules! trace {
    ($sim:expr, $($arg:tt)*) => {
        if $sim.trace {
            eprintln!("{:>12?} {}", $sim.now, format_args!($($arg)*));
        }
    };
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

    // ------------------------------------------------------------------ members

    fn start(&mut self, m: MemberId) {
        trace!(self, "member {m} starts");
        if let Err(e) = self.cluster.start(m, &mut self.rng, self.now) {
            self.halted = Some(e);
        }
    }

    /// Notes that member `m`'s node took input: it carries out its `Ready` after its fsync.
    fn dirty(&mut self, m: MemberId) {
        let member = &mut self.cluster.members[m];
        if member.carry_out_at.is_none() && member.node.is_some() {
            let fsync = self.rng.duration(Duration::ZERO, self.config.fsync);
            member.carry_out_at = Some(self.now + fsync);
        }
    }

    /// Carries out member `m`'s `Ready`: persist, then send and answer.
    fn carry_out(&mut self, m: MemberId) {
        let member = &mut self.cluster.members[m];
        member.carry_out_at = None;
        let Some(node) = member.node.as_mut() else {
            return;
        };
        let ready = node.take_ready();
        let bytes = storage::encode_all(&ready.persist);
        if ready.rewrite {
            // A runtime writes a new file and renames it over the old one: a crash leaves one
            // file or the other, never a mix.
            if self.healed_at.is_none() && self.rng.chance(self.config.crash_in_carry_out) {
                if self.rng.chance(0.5) {
                    self.cluster.members[m].disk = bytes;
                }
                trace!(self, "member {m} crashes while compacting");
                self.crash(m);
                return;
            }
            self.cluster.members[m].disk = bytes;
        } else if self.healed_at.is_none()
            && !bytes.is_empty()
            && self.rng.chance(self.config.crash_in_carry_out)
        {
            // The crash hits while the records are written: all of them, some, or part of one
            // reach the disk, and nothing of this `Ready` is sent.
            let written = if self.rng.chance(0.5) {
                bytes.len()
            } else {
                self.rng.below(bytes.len() as u64 + 1) as usize
            };
            self.cluster.members[m]
                .disk
                .extend_from_slice(&bytes[..written]);
            trace!(
                self,
                "member {m} crashes while writing ({written} of {} bytes)",
                bytes.len()
            );
            self.crash(m);
            return;
        } else {
            self.cluster.members[m].disk.extend_from_slice(&bytes);
        }
        for (to, msg) in ready.messages {
            match to {
                To::Member(to) => self.net.send(&mut self.rng, self.now, m, to, msg),
                To::Peers => {
                    for peer in (0..self.cluster.size()).filter(|&p| p != m) {
                        self.net.send(&mut self.rng, self.now, m, peer, msg.clone());
                    }
                }
            }
        }
        for (id, answer) in ready.replies {
            self.reply(id, answer);
        }
    }

    fn crash(&mut self, m: MemberId) {
        self.cluster.crash(m);
        // Its clients' connections break: their outcome is unknown.
        let lost: Vec<(RequestId, usize)> = self
            .waiting
            .range(request_range(m))
            .map(|(id, c)| (*id, *c))
            .collect();
        for (id, c) in lost {
            self.waiting.remove(&id);
            if self.clients[c]
                .current
                .as_ref()
                .is_some_and(|cur| cur.request == Some(id))
            {
                let backoff = self
                    .rng
                    .duration(Duration::from_millis(1), Duration::from_millis(20));
                self.abandon_attempt(c, backoff);
            }
        }
        if self.healed_at.is_none() {
            let down = self
                .rng
                .duration(self.config.down_for.0, self.config.down_for.1);
            self.events.push(self.now + down, Event::Restart(m));
        }
    }

    /// Maybe injects a fault. Half the faults aim at the leader, because a leader that is cut
    /// off or killed mid-flight is what makes ballots compete and stale messages matter.
    fn chaos(&mut self) {
        if self.healed_at.is_some() {
            return;
        }
        let up = self.cluster.up();
        let leader = up.iter().copied().find(|&m| {
            let node = self.cluster.members[m].node.as_ref().expect("up");
            node.status().role == crate::Role::Leader
        });
        match self.rng.below(100) {
            // Rarely take the last member down too: safety must hold even then.
            0..=19 if up.len() > 1 || !up.is_empty() && self.rng.chance(0.1) => {
                let m = *self.rng.pick(&up);
                trace!(self, "member {m} crashes");
                self.crash(m);
            }
            20..=29 => {
                if let Some(m) = leader {
                    trace!(self, "leader {m} crashes");
                    self.crash(m);
                }
            }
            30..=34 => {
                // A majority at once: the cluster stalls until enough of them are back.
                let majority = self.cluster.size() / 2 + 1;
                for _ in 0..majority {
                    let up = self.cluster.up();
                    if !up.is_empty() {
                        let m = *self.rng.pick(&up);
                        trace!(self, "member {m} crashes with a majority");
                        self.crash(m);
                    }
                }
            }
            35..=64 => {
                let focus = if self.rng.chance(0.5) { leader } else { None };
                let partition = Partition::draw(
                    &mut self.rng,
                    self.cluster.size(),
                    self.now,
                    self.config.partition_for,
                    focus,
                );
                trace!(
                    self,
                    "partition {:?} until {:?}", partition.blocked, partition.until
                );
                self.partitions += 1;
                self.net.partition(partition);
            }
            65..=74 => self.forge(),
            _ => {}
        }
        let every = self.config.chaos_every;
        let next = self.now + self.rng.duration(every.0, every.1);
        self.events.push(next, Event::Chaos);
    }

    /// Delivers a forged message to its targets at once: the forger needs no network.
    fn forge(&mut self) {
        let Some(Forgery { from, to, message }) = forger::draw(&mut self.rng, &mut self.cluster)
        else {
            return;
        };
        for m in to {
            trace!(self, "forged {from} -> {m}: {}", brief(&message));
            self.forgeries += 1;
            let now = self.now;
            let node = self
                .cluster
                .node(m)
                .expect("forgeries go to members that are up");
            node.handle_message(now, from, message.clone());
            self.dirty(m);
        }
    }

    // ------------------------------------------------------------------ clients

    fn client_start(&mut self, c: usize) {
        let client = &mut self.clients[c];
        if client.stopped || client.current.is_some() {
            return;
        }
        let Some(command) = client.next_command(&mut self.rng) else {
            return;
        };
        let op = self.history.invoke(c, command.clone(), self.now);
        self.clients[c].current = Some(Current {
            op,
            command,
            attempt: 0,
            request: None,
        });
        self.submit(c);
    }

    /// Submits client `c`'s current operation to a member: its own for a probe, otherwise a
    /// random running one, not the one that failed it last if there is another.
    fn submit(&mut self, c: usize) {
        self.attempts += 1;
        let attempt = self.attempts;
        let client = &self.clients[c];
        let current = client.current.as_ref().expect("a current operation");
        let last = current.request.map(|id| id.member);
        let member = match client.fixed_member() {
            Some(m) => self.cluster.is_up(m).then_some(m),
            None => {
                let up = self.cluster.up();
                let others: Vec<MemberId> =
                    up.iter().copied().filter(|&m| Some(m) != last).collect();
                let choices = if others.is_empty() { up } else { others };
                (!choices.is_empty()).then(|| *self.rng.pick(&choices))
            }
        };
        let command = current.command.clone();
        let current = self.clients[c]
            .current
            .as_mut()
            .expect("a current operation");
        current.attempt = attempt;
        let Some(m) = member else {
            // Nobody to connect to: the command was not sent, so try again shortly.
            let at = self.now + Duration::from_millis(10);
            self.events.push(at, Event::Attempt { client: c, attempt });
            return;
        };
        let now = self.now;
        let id = self
            .cluster
            .node(m)
            .expect("member is up")
            .submit(now, command);
        trace!(
            self,
            "client {c} submits {id:?} to member {m}: {:?}", current.command
        );
        current.request = Some(id);
        self.waiting.insert(id, c);
        self.dirty(m);
        let timeout = if self.clients[c].fixed_member().is_some() {
            LIVENESS_BOUND
        } else {
            self.config.client_timeout
        };
        self.events
            .push(now + timeout, Event::Timeout { client: c, attempt });
    }

    fn reply(&mut self, id: RequestId, answer: Answer) {
        // Nobody waits for an attempt its client gave up on, but the liveness check wants to
        // know that the answer came at all.
        let Some(c) = self.waiting.remove(&id) else {
            if let Some(op) = self.abandoned.remove(&id) {
                self.history.answered_late(op, self.now);
            }
            return;
        };
        let client = &mut self.clients[c];
        let current = client
            .current
            .take()
            .expect("a waiting client has a current operation");
        assert_eq!(
            current.request,
            Some(id),
            "client {c} waits on one request at a time"
        );
        trace!(self, "client {c} gets {answer:?} for {id:?}");
        client.observe(&current.command, &answer);
        self.history.complete(current.op, self.now, answer);
        self.schedule_next(c);
    }

    /// Gives up on client `c`'s current attempt (timeout or broken connection): a session client
    /// retries after `backoff`, anyone else records the outcome as unknown and moves on.
    fn abandon_attempt(&mut self, c: usize, backoff: Duration) {
        let client = &mut self.clients[c];
        let session = client.is_session();
        let current = client.current.as_mut().expect("a current operation");
        if let Some(id) = current.request
            && self.waiting.remove(&id).is_some()
        {
            self.abandoned.insert(id, current.op);
        }
        if session {
            self.history.retry(current.op);
            // A fresh attempt number, so that no stale event fires for it.
            self.attempts += 1;
            current.attempt = self.attempts;
            let attempt = current.attempt;
            self.events
                .push(self.now + backoff, Event::Attempt { client: c, attempt });
        } else {
            client.current = None;
            self.schedule_next(c);
        }
    }

    fn schedule_next(&mut self, c: usize) {
        let think = self
            .rng
            .duration(Duration::from_micros(1), self.config.think);
        self.events.push(self.now + think, Event::ClientStart(c));
    }
}

/// A message in a line, for traces.
fn brief(msg: &crate::Message) -> String {
    use crate::Message::*;
    let slots = |s: &mut dyn Iterator<Item = u64>| {
        let all: Vec<u64> = s.collect();
        match (all.first(), all.last()) {
            (Some(a), Some(b)) => format!("{a}..={b} ({})", all.len()),
            _ => "none".to_owned(),
        }
    };
    match msg {
        Prepare { ballot, from_slot } => format!("prepare {ballot} from {from_slot}"),
        Promise {
            ballot,
            accepted,
            decided,
            snapshot,
        } => format!(
            "promise {ballot} accepted {} decided {}{}",
            slots(&mut accepted.iter().map(|e| e.slot)),
            slots(&mut decided.iter().map(|e| e.slot)),
            snapshot
                .as_ref()
                .map_or(String::new(), |s| format!(" snapshot at {}", s.slot))
        ),
        Accept {
            ballot,
            entries,
            commit,
        } => format!(
            "accept {ballot} {} commit {commit}",
            slots(&mut entries.iter().map(|e| e.slot))
        ),
        Accepted { ballot, slots: s } => {
            format!("accepted {ballot} {}", slots(&mut s.iter().copied()))
        }
        Nack { ballot } => format!("nack {ballot}"),
        Commit { ballot, commit } => format!("commit {ballot} {commit}"),
        CatchUp { from_slot } => format!("catch_up from {from_slot}"),
        Decided { entries, commit } => format!(
            "decided {} commit {commit}",
            slots(&mut entries.iter().map(|e| e.slot))
        ),
        Forward { requests } => format!(
            "forward {:?}",
            requests.iter().map(|r| r.id.n).collect::<Vec<_>>()
        ),
        Snapshot { snapshot } => format!("snapshot at {}", snapshot.slot),
    }
}

/// Every request id of member `m`, whatever the incarnation.
fn request_range(m: MemberId) -> std::ops::Range<RequestId> {
    let id = |member| RequestId {
        member,
        incarnation: 0,
        n: 0,
    };
    id(m)..id(m + 1)
}

impl Failure {
    /// A run that panicked: the panic's message is the violation.
    pub fn panicked(seed: u64, panic: Box<dyn std::any::Any + Send>) -> Failure {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".to_owned());
        Failure {
            seed,
            violations: vec![format!("panicked: {message}")],
            config: "(see the replay)".to_owned(),
        }
    }

    /// The failure as the test prints it.
    pub fn describe(&self, replay: &str) -> String {
        let mut text = format!("seed {} violated:", self.seed);
        for v in &self.violations {
            let _ = write!(text, "\n  - {v}");
        }
        let _ = write!(text, "\n  config: {}\n  {replay}", self.config);
        text
    }
}
