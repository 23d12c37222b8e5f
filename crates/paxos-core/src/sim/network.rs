//! The simulated network between members: it loses, duplicates, delays and reorders messages,
//! and it can be partitioned.
//!
//! Every message gets its own random delay, so two messages on one link overtake each other
//! whenever the second draws a shorter delay; now and then a message is held far longer than the
//! rest, the way a retransmitted TCP segment or a stalled HTTP request is. Partitions block
//! directed links for a while and heal by themselves. A link is checked when a message is sent
//! and again when it would arrive, so a partition also swallows what was on the wire.

use std::time::Duration;

use super::queue::Queue;
use crate::rng::Rng;
use crate::{MemberId, Message, Time};

/// How unreliable the network is; picked per seed.
#[derive(Clone, Debug)]
pub struct Faults {
    /// The chance that a message is lost.
    pub loss: f64,
    /// The chance that a message is delivered twice (each copy with its own delay).
    pub duplicate: f64,
    /// The usual delay of a message is drawn from this range.
    pub delay: (Duration, Duration),
    /// The chance that a message is held much longer, up to `long_delay`.
    pub long_delay_chance: f64,
    pub long_delay: Duration,
}

impl Faults {
    /// A network that delays messages but neither loses nor duplicates them.
    pub fn reliable(delay: (Duration, Duration)) -> Faults {
        Faults {
            loss: 0.0,
            duplicate: 0.0,
            delay,
            long_delay_chance: 0.0,
            long_delay: delay.1,
        }
    }
}

/// A set of blocked directed links that heals at `until`.
#[derive(Clone, Debug)]
pub struct Partition {
    /// `blocked[from][to]`.
    pub blocked: Vec<Vec<bool>>,
    pub until: Time,
}

/// A message on the wire: from, to, and what.
pub type Delivery = (MemberId, MemberId, Message);

#[derive(Clone, Debug, Default)]
pub struct NetStats {
    pub sent: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub blocked: u64,
}

#[derive(Debug)]
pub struct Network {
    pub faults: Faults,
    partitions: Vec<Partition>,
    in_flight: Queue<Delivery>,
    pub stats: NetStats,
}

impl Network {
    pub fn new(faults: Faults) -> Network {
        Network {
            faults,
            partitions: Vec::new(),
            in_flight: Queue::default(),
            stats: NetStats::default(),
        }
    }

    /// Puts a message on the wire, unless the network drops it right away.
    pub fn send(&mut self, rng: &mut Rng, now: Time, from: MemberId, to: MemberId, msg: Message) {
        self.stats.sent += 1;
        if self.is_blocked(now, from, to) {
            self.stats.blocked += 1;
            return;
        }
        if rng.chance(self.faults.loss) {
            self.stats.lost += 1;
            return;
        }
        if rng.chance(self.faults.duplicate) {
            self.stats.duplicated += 1;
            let at = now + self.delay(rng);
            self.in_flight.push(at, (from, to, msg.clone()));
        }
        let at = now + self.delay(rng);
        self.in_flight.push(at, (from, to, msg));
    }

    fn delay(&self, rng: &mut Rng) -> Duration {
        if rng.chance(self.faults.long_delay_chance) {
            rng.duration(self.faults.delay.1, self.faults.long_delay)
        } else {
            rng.duration(self.faults.delay.0, self.faults.delay.1)
        }
    }

    /// When the next message arrives.
    pub fn next_at(&self) -> Option<Time> {
        self.in_flight.next_at()
    }

    /// Takes the next message off the wire: `Some(None)` when a partition swallowed it.
    pub fn pop(&mut self) -> Option<(Time, Option<Delivery>)> {
        let (at, (from, to, msg)) = self.in_flight.pop()?;
        if self.is_blocked(at, from, to) {
            self.stats.blocked += 1;
            return Some((at, None));
        }
        self.stats.delivered += 1;
        Some((at, Some((from, to, msg))))
    }

    pub fn partition(&mut self, partition: Partition) {
        self.partitions.push(partition);
    }

    /// Ends every partition now, and makes the network reliable from here on.
    pub fn heal(&mut self) {
        self.partitions.clear();
        self.faults = Faults::reliable(self.faults.delay);
    }

    fn is_blocked(&mut self, now: Time, from: MemberId, to: MemberId) -> bool {
        self.partitions.retain(|p| p.until > now);
        self.partitions.iter().any(|p| p.blocked[from][to])
    }
}

impl Partition {
    /// Draws one of the partitions a real network produces: one member cut off, the cluster split
    /// in two, a member that can send but not receive (or the reverse), or a random mesh of broken
    /// links in which some members still reach each other only through a third. With a `focus`,
    /// that member is the one cut off, deaf or mute.
    pub fn draw(
        rng: &mut Rng,
        members: usize,
        now: Time,
        lasting: (Duration, Duration),
        focus: Option<MemberId>,
    ) -> Self {
        let mut blocked = vec![vec![false; members]; members];
        let mut cut = |a: usize, b: usize| {
            blocked[a][b] = true;
            blocked[b][a] = true;
        };
        let kind = match focus {
            Some(_) => rng.pick(&[0, 2]),
            None => rng.below(4),
        };
        let x = focus.unwrap_or_else(|| rng.below(members as u64) as usize);
        match kind {
            0 => {
                (0..members).filter(|&m| m != x).for_each(|m| cut(x, m));
            }
            1 => {
                let side: Vec<bool> = (0..members).map(|_| rng.chance(0.5)).collect();
                for a in 0..members {
                    for b in 0..members {
                        if side[a] != side[b] {
                            cut(a, b);
                        }
                    }
                }
            }
            2 => {
                let deaf = rng.chance(0.5);
                for m in (0..members).filter(|&m| m != x) {
                    if deaf {
                        blocked[m][x] = true;
                    } else {
                        blocked[x][m] = true;
                    }
                }
            }
            _ => {
                for a in 0..members {
                    for b in a + 1..members {
                        if rng.chance(0.4) {
                            cut(a, b);
                        }
                    }
                }
            }
        }
        Partition {
            blocked,
            until: now + rng.duration(lasting.0, lasting.1),
        }
    }
}
