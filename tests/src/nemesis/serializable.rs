//! The check of the clients' serializable gets. A serializable get is answered from the member's
//! own store at once and may be stale, so the linearizability check leaves it out; what it must
//! never do is answer a state the key was not in. The clients send them to list keys only, where
//! every appended value is unique, so a list names its state exactly (see [`super::watchers`]).

use std::collections::HashMap;

use paxos_core::{Answer, Op};

use super::history::{Outcome, Record};
use super::watchers::{decided_lists, held};

/// Checks every answered serializable get in `reads` against `finals` (each list key's final
/// list) and the slots `records`' acknowledged appends were decided in: the list answered is a
/// state the key held, made at the modification index answered; that index is not above the
/// index read; no append to the key was decided after it up to the index read; and the index
/// read is not above the highest slot any answer names as decided.
pub fn check(
    reads: &[Record],
    records: &[Record],
    finals: &HashMap<String, Vec<String>>,
) -> Vec<String> {
    let decided = decided_lists(records);
    let highest = records
        .iter()
        .filter_map(|record| match &record.outcome {
            Outcome::Answered(Answer::Done { index, .. }) => Some(*index),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let mut found = Vec::new();
    for read in reads {
        let (
            Op::Get { key },
            Outcome::Answered(Answer::Done {
                value,
                index,
                modified,
                ..
            }),
        ) = (&read.command.op, &read.outcome)
        else {
            continue;
        };
        let what = format!(
            "serializable get of {key} at member {}, invoked {:?}",
            read.member, read.invoke
        );
        if modified > index {
            found.push(format!("{what}: changed at {modified}, after {index} read"));
        }
        if *index > highest {
            found.push(format!(
                "{what}: reflects slot {index}, past every slot decided ({highest})"
            ));
        }
        let slots = decided.get(key.as_str()).into_iter().flatten();
        for (slot, _) in slots.filter(|(slot, _)| (modified + 1..=*index).contains(*slot)) {
            found.push(format!(
                "{what}: changed at {modified} as of {index}, but an append to it was decided \
                 at {slot}"
            ));
        }
        found.extend(held(&what, key, value, *modified, &decided, finals));
    }
    found
}

/// How many serializable gets were answered, each of which the check judged.
pub fn answered(reads: &[Record]) -> u64 {
    let done = |r: &&Record| matches!(r.outcome, Outcome::Answered(Answer::Done { .. }));
    reads.iter().filter(done).count() as u64
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use paxos_core::command::True;
    use paxos_core::{Command, Consistency, Value};

    use super::*;

    fn record(
        op: Op,
        consistency: Consistency,
        value: &[&str],
        index: u64,
        modified: u64,
    ) -> Record {
        Record {
            client: 0,
            member: 0,
            command: Command {
                consistency,
                ..Command::new(op)
            },
            invoke: Duration::ZERO,
            complete: Duration::ZERO,
            outcome: Outcome::Answered(Answer::Done {
                ok: True,
                value: Some(Value::List(value.iter().map(|s| s.to_string()).collect())),
                index,
                modified,
            }),
            earlier: Vec::new(),
        }
    }

    /// An acknowledged append of `value` to `k`, decided in `slot`, answered with `list`.
    fn appended(value: &str, slot: u64, list: &[&str]) -> Record {
        let op = Op::Append {
            key: "k".into(),
            value: value.into(),
        };
        record(op, Consistency::Linearizable, list, slot, slot)
    }

    fn get(list: &[&str], index: u64, modified: u64) -> Record {
        let op = Op::Get { key: "k".into() };
        record(op, Consistency::Serializable, list, index, modified)
    }

    #[test]
    fn a_serializable_get_may_be_stale_but_not_made_up() {
        let finals = HashMap::from([("k".to_owned(), vec!["a".to_owned(), "b".to_owned()])]);
        let records = [appended("a", 3, &["a"]), appended("b", 5, &["a", "b"])];
        // Stale, and fresh.
        let good = [get(&["a"], 4, 3), get(&["a", "b"], 5, 5)];
        assert!(check(&good, &records, &finals).is_empty());
        assert_eq!(answered(&good), 2);
        // A list never held; the right list at the wrong slot; a change after the index read;
        // an append missed between the change and the index; an index nothing decided.
        let bad = [
            get(&["b"], 4, 3),
            get(&["a"], 4, 2),
            get(&["a"], 2, 3),
            get(&["a"], 6, 3),
            get(&["a", "b"], 9, 5),
        ];
        for read in bad {
            assert!(
                !check(std::slice::from_ref(&read), &records, &finals).is_empty(),
                "{read:?}"
            );
        }
    }
}
