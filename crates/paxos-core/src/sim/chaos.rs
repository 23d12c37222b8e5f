//! Fault injection: crashes (a member, the leader, a majority), partitions, and forged
//! messages, one drawn now and then while the faults phase lasts.

use super::forger::{self, Forgery};
use super::network::Partition;
use super::run::{Event, Sim};
use super::trace::{brief, trace};

impl Sim {
    /// Maybe injects a fault. Half the faults aim at the leader, because a leader that is cut
    /// off or killed mid-flight is what makes ballots compete and stale messages matter.
    pub(super) fn chaos(&mut self) {
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
                let m = self.rng.pick(&up);
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
                        let m = self.rng.pick(&up);
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
    pub(super) fn forge(&mut self) {
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
}
