//! Which requests the log has applied, so that a request decided in two slots applies once,
//! in a table that stays small however long the cluster runs.
//!
//! The table also keeps each applied request's answer until its origin has it. A member that
//! takes a snapshot in place of slots it never applied itself finds there the answers its own
//! waiting clients need. The answers kept are bounded by [`MAX_ANSWER_BYTES`]; past it the oldest
//! go first, and a member that finds its request applied without an answer leaves its client to
//! the request timeout, whose `503` says the outcome is unknown.
//!
//! One request can be decided twice: the network may deliver a `Forward` twice, and a member
//! sends its unanswered requests again to every new leader, in case the old one lost them. Every
//! member applies the same log, so every member must skip the same second copy; the table is
//! part of the replicated state and of every snapshot.
//!
//! Remembering every id ever applied would grow without bound. Two facts bound it instead:
//!
//! - Each request carries its origin's *floor*: every request of that incarnation numbered below
//!   it had been answered or given up (answered `503`) when the request was made. A copy below
//!   the highest floor seen is either applied already or one whose client was told the outcome
//!   is unknown; skipping it is right either way, so only ids at or above the floor are kept.
//! - Incarnations grow (see [`NodeConfig::incarnation`](crate::NodeConfig::incarnation)), so a
//!   request from an incarnation older than the newest one applied from that member comes from
//!   a process that is gone, and whose clients went with it. It is skipped too, and the older incarnation is forgotten.

use std::collections::BTreeMap;
use std::mem;

use serde::{Deserialize, Serialize};

use crate::command::Answer;
use crate::kv::json_len;
use crate::message::{MemberId, Request, RequestId};

/// The most bytes of answers (as JSON) the table keeps, so that it, and the snapshots it goes
/// into, stay bounded when many large answers wait for their origins.
pub const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// The applied requests of each member's newest incarnation. It goes into snapshots as a list,
/// because JSON object keys are strings and serde cannot read them back as member ids inside
/// the tagged [`Record`](crate::Record) enum.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<Origin>", into = "Vec<Origin>")]
pub struct AppliedRequests {
    origins: BTreeMap<MemberId, Origin>,
    /// The bytes of the answers kept, counted again when read back.
    answer_bytes: usize,
}

impl From<Vec<Origin>> for AppliedRequests {
    fn from(origins: Vec<Origin>) -> Self {
        let origins: BTreeMap<MemberId, Origin> =
            origins.into_iter().map(|o| (o.member, o)).collect();
        // Counted over the origins kept: a list naming one member twice keeps the last.
        let answer_bytes = origins.values().map(Origin::answer_bytes).sum();
        AppliedRequests {
            origins,
            answer_bytes,
        }
    }
}

impl From<AppliedRequests> for Vec<Origin> {
    fn from(applied: AppliedRequests) -> Self {
        applied.origins.into_values().collect()
    }
}

/// What is known of one member's newest incarnation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Origin {
    member: MemberId,
    incarnation: u64,
    /// The highest floor its requests carried: everything below is finished.
    floor: u64,
    /// Request numbers at or above `floor` that were applied, with their answers unless they
    /// were dropped for room.
    #[serde(with = "pairs")]
    applied: BTreeMap<u64, Option<Answer>>,
}

impl Origin {
    fn answer_bytes(&self) -> usize {
        self.applied.values().flatten().map(json_len).sum()
    }
}

/// A map with number keys as a list of pairs, for the same reason as [`AppliedRequests`].
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use crate::command::Answer;

    type Map = BTreeMap<u64, Option<Answer>>;

    pub fn serialize<S: Serializer>(map: &Map, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Map, D::Error> {
        Ok(Vec::<(u64, Option<Answer>)>::deserialize(d)?
            .into_iter()
            .collect())
    }
}

impl AppliedRequests {
    /// Whether `request` should take effect now. Every member calls this for the same requests
    /// in the same order, so every member reaches the same verdicts. When it says yes, the
    /// caller applies the request and hands its answer to [`record`](Self::record).
    pub fn admit(&mut self, request: &Request) -> bool {
        let id = request.id;
        let origin = self.origins.entry(id.member).or_insert_with(|| Origin {
            member: id.member,
            ..Origin::default()
        });
        if id.incarnation < origin.incarnation {
            return false;
        }
        if id.incarnation > origin.incarnation {
            self.answer_bytes -= origin.answer_bytes();
            *origin = Origin {
                member: id.member,
                incarnation: id.incarnation,
                ..Origin::default()
            };
        }
        if request.floor > origin.floor {
            origin.floor = request.floor;
            let kept = origin.applied.split_off(&request.floor);
            let finished = mem::replace(&mut origin.applied, kept);
            self.answer_bytes -= finished.values().flatten().map(json_len).sum::<usize>();
        }
        id.n >= origin.floor && !origin.applied.contains_key(&id.n)
    }

    /// Records that the admitted request `id` was applied, with its answer, and drops the
    /// oldest answers kept if that takes them past [`MAX_ANSWER_BYTES`].
    pub fn record(&mut self, id: RequestId, answer: Answer) {
        let Some(origin) = self.origins.get_mut(&id.member) else {
            return;
        };
        self.answer_bytes += json_len(&answer);
        origin.applied.insert(id.n, Some(answer));
        // Each origin's requests are numbered in the order it made them, so its lowest-numbered
        // answer is its oldest. Going through the origins in member order keeps the choice the
        // same on every member, which the snapshots they exchange rely on.
        while self.answer_bytes > MAX_ANSWER_BYTES {
            let oldest = self
                .origins
                .values_mut()
                .find_map(|o| o.applied.values_mut().find(|a| a.is_some()));
            let Some(dropped) = oldest.and_then(Option::take) else {
                break;
            };
            self.answer_bytes -= json_len(&dropped);
        }
    }

    /// Whether request `id` was applied, and its answer if still kept. `None` when it was not
    /// applied, or its origin is done with it.
    pub fn outcome(&self, id: RequestId) -> Option<Option<&Answer>> {
        let origin = self.origins.get(&id.member)?;
        if origin.incarnation != id.incarnation {
            return None;
        }
        origin.applied.get(&id.n).map(Option::as_ref)
    }

    /// The newest incarnation of `member` that had a request applied, if any.
    pub fn newest_incarnation(&self, member: MemberId) -> Option<u64> {
        self.origins.get(&member).map(|o| o.incarnation)
    }

    /// How many request numbers the table holds, for tests of its bound.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.origins.values().map(|o| o.applied.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Command, Op};
    use crate::message::RequestId;

    /// Admits and records a request, as the node does; returns whether it was admitted.
    fn apply(applied: &mut AppliedRequests, request: &Request) -> bool {
        let admitted = applied.admit(request);
        if admitted {
            applied.record(request.id, Answer::done(None, request.id.n));
        }
        admitted
    }

    fn request(member: MemberId, incarnation: u64, n: u64, floor: u64) -> Request {
        Request {
            id: RequestId {
                member,
                incarnation,
                n,
            },
            floor,
            command: Command::new(Op::Get { key: "k".into() }),
        }
    }

    #[test]
    fn a_second_copy_is_skipped() {
        let mut applied = AppliedRequests::default();
        assert!(apply(&mut applied, &request(0, 1, 1, 1)));
        assert!(!apply(&mut applied, &request(0, 1, 1, 1)));
        assert!(
            apply(&mut applied, &request(1, 1, 1, 1)),
            "another member's"
        );
    }

    #[test]
    fn requests_may_apply_out_of_order() {
        let mut applied = AppliedRequests::default();
        assert!(apply(&mut applied, &request(0, 1, 2, 1)));
        assert!(apply(&mut applied, &request(0, 1, 1, 1)));
        assert!(!apply(&mut applied, &request(0, 1, 2, 1)));
    }

    #[test]
    fn the_floor_bounds_the_table_and_skips_what_is_below_it() {
        let mut applied = AppliedRequests::default();
        for n in 1..=1000 {
            assert!(apply(&mut applied, &request(0, 1, n, n)));
        }
        assert_eq!(applied.len(), 1);
        assert!(
            !apply(&mut applied, &request(0, 1, 999, 999)),
            "below the floor"
        );
    }

    #[test]
    fn survives_a_trip_through_a_record() {
        let mut applied = AppliedRequests::default();
        apply(&mut applied, &request(2, 5, 3, 1));
        apply(&mut applied, &request(2, 5, 4, 1));
        let record = crate::Record::Snapshot {
            snapshot: Box::new(crate::Snapshot {
                slot: 1,
                applied: applied.clone(),
                ..Default::default()
            }),
        };
        let json = serde_json::to_string(&record).unwrap();
        let crate::Record::Snapshot { snapshot } = serde_json::from_str(&json).unwrap() else {
            panic!("not a snapshot: {json}");
        };
        assert_eq!(snapshot.applied, applied);
    }

    /// A table read back from a list naming one member twice keeps the last, and counts only
    /// its answers; it counted both, so the table differed from itself written out and read
    /// again (found by fuzz_envelope).
    #[test]
    fn a_member_listed_twice_counts_once() {
        let mut applied = AppliedRequests::default();
        apply(&mut applied, &request(2, 5, 3, 1));
        let json = serde_json::to_value(&applied).unwrap();
        let twice = serde_json::Value::Array(vec![json[0].clone(), json[0].clone()]);
        let read: AppliedRequests = serde_json::from_value(twice).unwrap();
        assert_eq!(read, applied);
    }

    #[test]
    fn an_older_incarnation_is_skipped_and_forgotten() {
        let mut applied = AppliedRequests::default();
        assert!(apply(&mut applied, &request(0, 5, 1, 1)));
        assert!(apply(&mut applied, &request(0, 7, 1, 1)));
        assert!(!apply(&mut applied, &request(0, 5, 2, 1)));
        assert_eq!(applied.newest_incarnation(0), Some(7));
        assert_eq!(applied.len(), 1);
    }

    #[test]
    fn keeps_answers_until_the_origin_has_them() {
        let mut applied = AppliedRequests::default();
        apply(&mut applied, &request(0, 1, 1, 1));
        let id = request(0, 1, 1, 1).id;
        assert_eq!(applied.outcome(id), Some(Some(&Answer::done(None, 1))));
        apply(&mut applied, &request(0, 1, 2, 2));
        assert_eq!(
            applied.outcome(id),
            None,
            "the origin had it when it sent 2"
        );
    }

    #[test]
    fn drops_the_oldest_answers_past_the_budget() {
        let mut applied = AppliedRequests::default();
        // Four answers of a quarter of the budget each, plus their JSON quotes: one too many.
        let big = Answer::Rejected {
            error: "x".repeat(MAX_ANSWER_BYTES / 4),
        };
        for n in 1..=4 {
            let request = request(0, 1, n, 1);
            assert!(applied.admit(&request));
            applied.record(request.id, big.clone());
        }
        let kept = |n| applied.outcome(request(0, 1, n, 1).id).map(|a| a.is_some());
        assert_eq!(kept(1), Some(false), "applied, but its answer dropped");
        assert_eq!([kept(2), kept(3), kept(4)], [Some(true); 3]);
        assert!(applied.answer_bytes <= MAX_ANSWER_BYTES);
        // The count survives a snapshot: it is counted again when read back.
        let json = serde_json::to_string(&applied).unwrap();
        let back: AppliedRequests = serde_json::from_str(&json).unwrap();
        assert!(back == applied, "the table changed on its way through JSON");
    }
}
