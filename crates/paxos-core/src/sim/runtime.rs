//! The simulator as the members' runtime: it starts and crashes nodes, and carries out each
//! node's `Ready` the way a real runtime does, records to the disk first and then messages and
//! answers, with crashes that can strike while the records are being written.

use std::time::Duration;

use super::run::{Event, Sim};
use super::trace::trace;
use crate::{MemberId, RequestId, To, storage};

impl Sim {
    pub(super) fn start(&mut self, m: MemberId) {
        trace!(self, "member {m} starts");
        if let Err(e) = self.cluster.start(m, &mut self.rng, self.now) {
            self.halted = Some(e);
        }
    }

    /// Notes that member `m`'s node took input: it carries out its `Ready` after its fsync.
    pub(super) fn dirty(&mut self, m: MemberId) {
        let member = &mut self.cluster.members[m];
        if member.carry_out_at.is_none() && member.node.is_some() {
            let fsync = self.rng.duration(Duration::ZERO, self.config.fsync);
            member.carry_out_at = Some(self.now + fsync);
        }
    }

    /// Carries out member `m`'s `Ready`: persist, then send and answer.
    pub(super) fn carry_out(&mut self, m: MemberId) {
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

    pub(super) fn crash(&mut self, m: MemberId) {
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
