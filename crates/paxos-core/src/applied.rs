//! Which requests the log has applied, so that a request decided in two slots applies once,
//! in a table that stays small however long the cluster runs.
//!
//! The table also keeps each applied request's answer until its origin has it. A member that
//! takes a snapshot in place of slots it never applied itself finds there the answers its own
//! waiting clients need.
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
//! - Incarnations grow (see [`Node::new`](crate::Node::new)), so a request from an incarnation
//!   older than the newest one applied from that member comes from a process that is gone, and
//!   whose clients went with it. It is skipped too, and the older incarnation is forgotten.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::command::Answer;
use crate::message::{MemberId, Request, RequestId};

/// The applied requests of each member's newest incarnation. It goes into snapshots as a list,
/// because JSON object keys are strings and serde cannot read them back as member ids inside
/// the tagged [`Record`](crate::Record) enum.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<Origin>", into = "Vec<Origin>")]
pub struct AppliedRequests {
    origins: BTreeMap<MemberId, Origin>,
}

impl From<Vec<Origin>> for AppliedRequests {
    fn from(origins: Vec<Origin>) -> Self {
        let origins = origins.into_iter().map(|o| (o.member, o)).collect();
        AppliedRequests { origins }
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
    /// Request numbers at or above `floor` that were applied, with their answers.
    #[serde(with = "pairs")]
    applied: BTreeMap<u64, Answer>,
}

/// A map with number keys as a list of pairs, for the same reason as [`AppliedRequests`].
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use crate::command::Answer;

    pub fn serialize<S: Serializer>(map: &BTreeMap<u64, Answer>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<u64, Answer>, D::Error> {
        Ok(Vec::<(u64, Answer)>::deserialize(d)?.into_iter().collect())
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
            *origin = Origin {
                member: id.member,
                incarnation: id.incarnation,
                ..Origin::default()
            };
        }
        if request.floor > origin.floor {
            origin.floor = request.floor;
            origin.applied = origin.applied.split_off(&request.floor);
        }
        id.n >= origin.floor && !origin.applied.contains_key(&id.n)
    }

    /// Records that the admitted request `id` was applied, with its answer.
    pub fn record(&mut self, id: RequestId, answer: Answer) {
        if let Some(origin) = self.origins.get_mut(&id.member) {
            origin.applied.insert(id.n, answer);
        }
    }

    /// The answer request `id` got, while its origin may still be waiting for it.
    pub fn answer(&self, id: RequestId) -> Option<&Answer> {
        let origin = self.origins.get(&id.member)?;
        (origin.incarnation == id.incarnation)
            .then(|| origin.applied.get(&id.n))
            .flatten()
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
        assert_eq!(applied.answer(id), Some(&Answer::done(None, 1)));
        apply(&mut applied, &request(0, 1, 2, 2));
        assert_eq!(applied.answer(id), None, "the origin had it when it sent 2");
    }
}
