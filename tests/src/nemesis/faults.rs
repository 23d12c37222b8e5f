//! The nemesis: injects faults at random, overlapping, and undoes each after a random while.
//!
//! - `kill -9` of a member (the leader half the time), restarted from its data dir later;
//! - SIGSTOP of a member (the leader half the time, then for longer than an election timeout),
//!   SIGCONT later;
//! - a partition: the leader isolated, or the members split into a majority and a minority,
//!   with the cut proxy links refusing or blackholing new connections, or (`--netns`) the
//!   minority's cluster-network links or all its links taken down (see [`super::links`]);
//!   healed later;
//! - now and then, a whole-cluster restart: every member killed, each restarted a moment later.
//!
//! At most a minority of members is killed or paused at once, so the cluster can usually make
//! progress; a partition on top of that may still take the majority away for a while, which is
//! a fault worth having too. Every choice is drawn from the run's seed.
//!
//! A member that exits without the nemesis killing it is a server failure: it is recorded as
//! such, and restarted so the run goes on.

use std::time::{Duration, Instant};

use serde_json::json;

use super::links::Links;
use super::rng::Rng;
use super::timeline::Timeline;
use crate::cluster::Cluster;
use crate::http::Client;

/// The fault kinds in the timeline that kill members (`kill -9`): those after which clients
/// certainly meet refused connections and lost answers, so exactly-once clients retry.
pub const KILLS: [&str; 3] = ["kill", "kill-leader", "cluster-restart"];

/// How long a `/status` probe may take; a paused member does not answer at all.
const STATUS_TIMEOUT: Duration = Duration::from_millis(300);

/// Something the nemesis will undo, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Undo {
    Restart(usize),
    Resume(usize),
    Heal,
}

#[derive(Debug)]
pub struct Nemesis<'a> {
    cluster: &'a mut Cluster,
    links: &'a Links,
    rng: Rng,
    pub timeline: Timeline,
    status: Client,
    undo: Vec<(Instant, Undo)>,
    next_fault: Instant,
    next_cluster_restart: Instant,
    election_timeout: Duration,
    /// Members that exited on their own: what they said, for the verdict.
    pub crashes: Vec<String>,
}

impl<'a> Nemesis<'a> {
    /// A nemesis for a running cluster over a run of `run` from now; the first whole-cluster
    /// restart comes between a third and two thirds of the way through.
    pub fn new(
        cluster: &'a mut Cluster,
        links: &'a Links,
        mut rng: Rng,
        timeline: Timeline,
        election_timeout: Duration,
        run: Duration,
    ) -> Nemesis<'a> {
        let now = Instant::now();
        let third = run.as_millis() as u64 / 3;
        let first_restart = rng.millis(third..2 * third);
        Nemesis {
            status: cluster.new_client(STATUS_TIMEOUT),
            cluster,
            links,
            rng,
            timeline,
            undo: Vec::new(),
            next_fault: now + Duration::from_secs(1),
            next_cluster_restart: now + first_restart,
            election_timeout,
            crashes: Vec::new(),
        }
    }

    /// Undoes what is due, notices members that exited by themselves, and injects the next fault
    /// when its time has come.
    pub fn step(&mut self) {
        let now = Instant::now();
        self.notice_crashes();
        let (due, later): (Vec<_>, Vec<_>) = self.undo.drain(..).partition(|(at, _)| *at <= now);
        self.undo = later;
        for (_, undo) in due {
            self.carry_out(undo);
        }
        if now >= self.next_cluster_restart {
            self.restart_cluster();
            self.next_cluster_restart = now + self.rng.millis(60_000..100_000);
        } else if now >= self.next_fault {
            self.inject();
            self.next_fault = now + self.rng.millis(300..2_500);
        }
    }

    /// When [`Nemesis::step`] next has something to do.
    pub fn next_wakeup(&self) -> Instant {
        self.undo
            .iter()
            .map(|(at, _)| *at)
            .chain([self.next_fault, self.next_cluster_restart])
            .min()
            .expect("there is always a next fault")
    }

    /// Ends every fault: resumes paused members, restarts dead ones, opens every link.
    pub fn heal_everything(&mut self) {
        self.undo.clear();
        self.notice_crashes();
        for i in 0..self.cluster.len() {
            if self.cluster.is_paused(i) {
                self.cluster.resume(i);
            }
            if !self.cluster.is_running(i) {
                self.cluster.start(i);
            }
        }
        self.links.heal_all();
        self.timeline.event("heal-everything", json!({}));
    }

    /// A line on what is broken right now, for the progress display.
    pub fn describe(&mut self) -> String {
        let mut down = Vec::new();
        for i in 0..self.cluster.len() {
            if self.cluster.is_paused(i) {
                down.push(format!("m{i} paused"));
            } else if !self.cluster.is_running(i) {
                down.push(format!("m{i} down"));
            }
        }
        if let Some(cut) = self.links.describe_cut() {
            down.push(cut);
        }
        match down.is_empty() {
            true => "all healthy".to_owned(),
            false => down.join(", "),
        }
    }

    fn carry_out(&mut self, undo: Undo) {
        match undo {
            Undo::Restart(i) if !self.cluster.is_running(i) => {
                self.cluster.start(i);
                self.timeline.event("restart", json!({"member": i}));
            }
            Undo::Resume(i) if self.cluster.is_paused(i) => {
                self.cluster.resume(i);
                self.timeline.event("resume", json!({"member": i}));
            }
            Undo::Heal => {
                self.links.heal_all();
                self.timeline.event("heal", json!({}));
            }
            Undo::Restart(_) | Undo::Resume(_) => {}
        }
    }

    /// Records every member that exited without the nemesis killing it, and restarts it.
    pub fn notice_crashes(&mut self) {
        for i in self.cluster.started() {
            if self.cluster.is_running(i) {
                continue;
            }
            let status = self.cluster.wait_exit(i, Duration::ZERO);
            let what = format!("member {i} exited by itself ({status:?}); see member-{i}.log");
            self.timeline.event(
                "crash",
                json!({"member": i, "status": format!("{status:?}")}),
            );
            self.crashes.push(what);
            self.cluster.start(i);
            self.timeline.event("restart", json!({"member": i}));
        }
    }

    /// Members neither killed nor paused.
    fn healthy(&mut self) -> Vec<usize> {
        (0..self.cluster.len())
            .filter(|&i| self.cluster.is_running(i) && !self.cluster.is_paused(i))
            .collect()
    }

    /// The member that some healthy member says leads and that says so itself.
    fn find_leader(&mut self) -> Option<usize> {
        for i in self.healthy() {
            let Ok(response) = self.status.get(&self.cluster.url(i, "/status")) else {
                continue;
            };
            let Ok(status) = serde_json::from_str(&response.body) else {
                continue;
            };
            if let Some(leader) = self.cluster.leader_of(i, &status) {
                return Some(leader);
            }
        }
        None
    }

    /// The target of a kill or pause: the leader half the time, when it is healthy.
    fn target(&mut self, healthy: &[usize]) -> (usize, bool) {
        if self.rng.chance(0.5)
            && let Some(leader) = self.find_leader().filter(|l| healthy.contains(l))
        {
            return (leader, true);
        }
        (self.rng.pick(healthy), false)
    }

    fn inject(&mut self) {
        let n = self.cluster.len();
        let healthy = self.healthy();
        let may_take_one = n - healthy.len() < (n - 1) / 2;
        let partitioned = self.links.is_cut();
        let mut choices = Vec::new();
        if may_take_one {
            choices.extend(["kill", "pause"]);
        }
        if !partitioned {
            choices.push("partition");
        }
        if choices.is_empty() {
            return;
        }
        match self.rng.pick(&choices) {
            "kill" => self.kill(&healthy),
            "pause" => self.pause(&healthy),
            _ => self.partition(),
        }
    }

    fn kill(&mut self, healthy: &[usize]) {
        let (i, leader) = self.target(healthy);
        self.cluster.kill(i);
        let back = self.rng.millis(300..3_000);
        self.undo.push((Instant::now() + back, Undo::Restart(i)));
        let kind = if leader { "kill-leader" } else { "kill" };
        self.timeline.fault(
            kind,
            json!({"member": i, "restart_after_ms": back.as_millis() as u64}),
        );
    }

    fn pause(&mut self, healthy: &[usize]) {
        let (i, leader) = self.target(healthy);
        // A paused leader is only a fault worth having if it stays away long enough for the
        // others to elect another.
        let shortest = match leader {
            true => self.election_timeout.as_millis() as u64 * 3 / 2,
            false => 200,
        };
        let back = self.rng.millis(shortest..3_000);
        self.cluster.pause(i);
        self.undo.push((Instant::now() + back, Undo::Resume(i)));
        let kind = if leader { "pause-leader" } else { "pause" };
        self.timeline.fault(
            kind,
            json!({"member": i, "resume_after_ms": back.as_millis() as u64}),
        );
    }

    fn partition(&mut self) {
        let n = self.cluster.len();
        let leader = match self.rng.chance(0.5) {
            true => self.find_leader(),
            false => None,
        };
        // The leader alone, or a random minority as large as a minority can be (2/1, 3/2).
        let minority: Vec<usize> = match leader {
            Some(leader) => vec![leader],
            None => {
                let mut members: Vec<usize> = (0..n).collect();
                for k in (1..n).rev() {
                    members.swap(k, self.rng.index(k + 1));
                }
                members.truncate((n - 1) / 2);
                members.sort_unstable();
                members
            }
        };
        let [one, other] = self.links.ways();
        let how = match self.rng.chance(0.5) {
            true => one,
            false => other,
        };
        self.links.cut_off(&minority, n, how);
        let heal = self.rng.millis(500..5_000);
        self.undo.push((Instant::now() + heal, Undo::Heal));
        let kind = match leader {
            Some(_) => "partition-isolate-leader",
            None => "partition-split",
        };
        self.timeline.fault(
            &format!("{kind}-{}", how.name()),
            json!({"minority": minority, "heal_after_ms": heal.as_millis() as u64}),
        );
    }

    fn restart_cluster(&mut self) {
        self.undo
            .retain(|(_, undo)| !matches!(undo, Undo::Restart(_) | Undo::Resume(_)));
        for i in 0..self.cluster.len() {
            self.cluster.kill(i);
            let back = self.rng.millis(200..2_000);
            self.undo.push((Instant::now() + back, Undo::Restart(i)));
        }
        self.timeline.fault("cluster-restart", json!({}));
    }
}
