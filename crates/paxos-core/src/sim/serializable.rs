//! The check of serializable reads. They may be stale, so the linearizability checker passes
//! over them; what they must never be is made up. A serializable answer reflects the member's
//! store at its commit index, so its value must be the one the decided log gives the key at the
//! answer's `index`, which must be decided, and the key must have held that value at the
//! modification index the answer names.

use std::collections::BTreeMap;

use super::cluster::Cluster;
use crate::applied::AppliedRequests;
use crate::check::History;
use crate::kv::KvStore;
use crate::message::{LogValue, Slot};
use crate::{Answer, Op};

/// Each serializable read's answer against the log every member and incarnation learned,
/// replayed as a member applies it; an index past every slot learned is a violation. Reads at an
/// index past a gap in what was learned cannot be judged, and are passed over.
pub fn check(history: &History, cluster: &Cluster) -> Vec<String> {
    let mut by_index: BTreeMap<Slot, Vec<(&str, &Answer, String)>> = BTreeMap::new();
    for op in &history.ops {
        let (Op::Get { key }, Some(answer)) = (&op.command.op, op.answer()) else {
            continue;
        };
        if let (true, Answer::Done { index, .. }) = (op.command.is_serializable_read(), answer) {
            by_index
                .entry(*index)
                .or_default()
                .push((key, answer, op.to_string()));
        }
    }
    let log = learned(cluster);
    let last = log.keys().next_back().copied().unwrap_or(0);
    let (mut kv, mut applied) = (KvStore::new(), AppliedRequests::default());
    let mut found = Vec::new();
    let mut slot = 0;
    for (index, reads) in by_index {
        if index > last {
            let ops = reads.iter().map(|(_, _, op)| op.as_str());
            found.extend(ops.map(|op| {
                format!(
                    "serializable: {op} reflects slot {index}, past every slot decided ({last})"
                )
            }));
            continue;
        }
        while slot < index {
            let Some(value) = log.get(&(slot + 1)) else {
                return found;
            };
            slot += 1;
            if let LogValue::Request(request) = value
                && applied.admit(request)
            {
                let answer = kv.apply(slot, &request.command);
                applied.record(request.id, answer);
            }
        }
        for (key, answer, op) in reads {
            let expected = kv.read(index, key);
            if !same_state(answer, &expected) {
                found.push(format!(
                    "serializable: {op} answered {answer:?}, but the log gives {expected:?} at \
                     slot {index}"
                ));
            }
        }
    }
    found
}

/// Whether `answer` gives the value of `expected` (the log's answer at the same index), and a
/// modification index from the slot that last changed the key up to the index read. A store
/// that no longer records a key's change (a tombstone dropped, a snapshot without modification
/// indexes) names its floor instead, which lies in that range: the key held the same value at
/// every slot of it.
fn same_state(answer: &Answer, expected: &Answer) -> bool {
    let (
        Answer::Done {
            value,
            index,
            modified,
            ..
        },
        Answer::Done {
            value: log_value,
            modified: changed,
            ..
        },
    ) = (answer, expected)
    else {
        return false;
    };
    value == log_value && (changed..=index).contains(&modified)
}

/// Every slot any member or incarnation learned, with its value (agreement is checked apart).
fn learned(cluster: &Cluster) -> BTreeMap<Slot, &LogValue> {
    let mut log = BTreeMap::new();
    for member in &cluster.members {
        let current = member.node.as_ref().map(|node| node.learned());
        for learned in member.past_decided.iter().chain(current) {
            for (slot, value) in learned {
                log.entry(*slot).or_insert(value);
            }
        }
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::cluster::Sabotage;
    use std::time::Duration;

    use crate::{Command, Consistency, Time, Tuning, Value};

    /// A one-member cluster that decided `put(r, a)` in slot 1 and `put(r, b)` in slot 2.
    fn cluster() -> Cluster {
        let mut cluster = Cluster::new(1, Tuning::default(), Sabotage::None);
        cluster
            .start(0, &mut crate::rng::Rng::new(1), Time::ZERO)
            .expect("starts");
        let node = cluster.node(0).expect("up");
        node.handle_timeout(Duration::from_secs(10));
        for value in ["a", "b"] {
            let put = Op::Put {
                key: "r".into(),
                value: value.into(),
            };
            node.submit(Duration::from_secs(10), Command::new(put));
            node.take_ready();
        }
        assert_eq!(node.status().commit_index, 2);
        cluster
    }

    fn read(value: Option<&str>, index: Slot, modified: Slot) -> History {
        let mut history = History::default();
        let get = Command {
            consistency: Consistency::Serializable,
            ..Command::new(Op::Get { key: "r".into() })
        };
        let op = history.invoke(0, get, Time::ZERO);
        let value = value.map(|v| Value::Str(v.into()));
        history.complete(op, Time::ZERO, Answer::read(value, index, modified));
        history
    }

    #[test]
    fn a_stale_answer_passes_and_a_made_up_one_does_not() {
        let cluster = cluster();
        assert!(check(&read(None, 0, 0), &cluster).is_empty());
        assert!(check(&read(Some("a"), 1, 1), &cluster).is_empty());
        assert!(check(&read(Some("b"), 2, 2), &cluster).is_empty());
        // A value the key never had, one it had at another slot, a change before the one that
        // made it, and one after the index read.
        assert_eq!(check(&read(Some("z"), 2, 2), &cluster).len(), 1);
        assert_eq!(check(&read(Some("b"), 1, 1), &cluster).len(), 1);
        assert_eq!(check(&read(Some("b"), 2, 1), &cluster).len(), 1);
        assert_eq!(check(&read(Some("a"), 1, 2), &cluster).len(), 1);
        assert_eq!(
            check(&read(Some("b"), 3, 2), &cluster).len(),
            1,
            "not decided"
        );
    }
}
