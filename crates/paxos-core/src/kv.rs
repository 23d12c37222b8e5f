//! The replicated state machine: a key-value store applied in log order on every member.
//!
//! Everything here is deterministic, so members that apply the same log hold the same store and
//! give the same answers. That includes exactly-once bookkeeping: the table of each client's
//! latest `seq` and answer is part of the replicated state, which is why a retry sent to any
//! member, before or after a leader change, is answered from it instead of being applied again.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::command::{Answer, Command, Op, Value};

/// The most bytes of strings one list may hold. Every `append` answers the whole list, so an
/// unbounded list would make every answer, and every member's memory, grow without end.
pub const MAX_LIST_BYTES: usize = 1024 * 1024;

/// The store and its exactly-once table. It serializes into [snapshots](crate::snapshot).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvStore {
    data: BTreeMap<String, Value>,
    /// Per `client_id`: the latest `seq` applied and the answer it got.
    sessions: HashMap<String, (u64, Answer)>,
}

impl KvStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies the command decided at log slot `index` and returns its answer.
    pub fn apply(&mut self, index: u64, command: &Command) -> Answer {
        let (Some(client), Some(seq)) = (&command.client_id, command.seq) else {
            return self.apply_op(index, &command.op);
        };
        if let Some((latest, answer)) = self.sessions.get(client) {
            if seq == *latest {
                return answer.clone();
            }
            if seq < *latest {
                return Answer::Rejected {
                    error: format!(
                        "seq {seq} of client `{client}` is older than its latest seq {latest}, \
                         whose answer is the only one kept"
                    ),
                };
            }
        }
        let answer = self.apply_op(index, &command.op);
        self.sessions.insert(client.clone(), (seq, answer.clone()));
        answer
    }

    /// Reads a key without going through the log; for tests and status pages, not for clients
    /// (a client read must be ordered in the log to be linearizable).
    pub fn peek(&self, key: &str) -> Option<&Value> {
        self.data.get(key)
    }

    fn apply_op(&mut self, index: u64, op: &Op) -> Answer {
        match op {
            Op::Get { key } => Answer::done(self.data.get(key).cloned(), index),
            Op::Put { key, value } => {
                self.data.insert(key.clone(), Value::Str(value.clone()));
                Answer::done(Some(Value::Str(value.clone())), index)
            }
            Op::Delete { key } => {
                self.data.remove(key);
                Answer::done(None, index)
            }
            Op::Cas {
                key,
                expected,
                value,
            } => {
                let current = self.data.get(key);
                let matches = match (current, expected) {
                    (None, None) => true,
                    (Some(Value::Str(now)), Some(want)) => now == want,
                    _ => false,
                };
                if !matches {
                    return Answer::mismatch(current.cloned());
                }
                self.data.insert(key.clone(), Value::Str(value.clone()));
                Answer::done(Some(Value::Str(value.clone())), index)
            }
            Op::Append { key, value } => {
                let list = self
                    .data
                    .entry(key.clone())
                    .or_insert_with(|| Value::List(Vec::new()));
                match list {
                    Value::List(items) => {
                        let bytes: usize =
                            items.iter().map(String::len).sum::<usize>() + value.len();
                        if bytes > MAX_LIST_BYTES {
                            return Answer::Rejected {
                                error: format!(
                                    "appending to key `{key}` would make its list {bytes} bytes \
                                     long; a list may hold at most {MAX_LIST_BYTES} bytes (1 MiB)"
                                ),
                            };
                        }
                        items.push(value.clone());
                        Answer::done(Some(list.clone()), index)
                    }
                    Value::Str(_) => Answer::Rejected {
                        error: format!("key `{key}` holds a string; append needs a list"),
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(op: Op) -> Command {
        Command::new(op)
    }

    fn append(key: &str, value: &str) -> Command {
        op(Op::Append {
            key: key.into(),
            value: value.into(),
        })
    }

    #[test]
    fn every_op_does_what_it_says() {
        let mut kv = KvStore::new();
        let get = op(Op::Get { key: "k".into() });
        assert_eq!(kv.apply(1, &get), Answer::done(None, 1));
        let put = op(Op::Put {
            key: "k".into(),
            value: "a".into(),
        });
        assert_eq!(
            kv.apply(2, &put),
            Answer::done(Some(Value::Str("a".into())), 2)
        );
        let cas = |expected: Option<&str>, value: &str| {
            op(Op::Cas {
                key: "k".into(),
                expected: expected.map(str::to_owned),
                value: value.into(),
            })
        };
        assert_eq!(
            kv.apply(3, &cas(Some("x"), "b")),
            Answer::mismatch(Some(Value::Str("a".into())))
        );
        assert_eq!(
            kv.apply(4, &cas(Some("a"), "b")),
            Answer::done(Some(Value::Str("b".into())), 4)
        );
        assert_eq!(
            kv.apply(5, &op(Op::Delete { key: "k".into() })),
            Answer::done(None, 5)
        );
        assert_eq!(kv.apply(6, &cas(None, "c")).http_status(), 200);
        assert_eq!(kv.peek("k"), Some(&Value::Str("c".into())));
    }

    #[test]
    fn append_answers_the_whole_list_and_refuses_strings() {
        let mut kv = KvStore::new();
        kv.apply(1, &append("l", "a"));
        let list = Value::List(vec!["a".into(), "b".into()]);
        assert_eq!(kv.apply(2, &append("l", "b")), Answer::done(Some(list), 2));
        kv.apply(
            3,
            &op(Op::Put {
                key: "s".into(),
                value: "x".into(),
            }),
        );
        let before = kv.clone();
        assert_eq!(kv.apply(4, &append("s", "y")).http_status(), 400);
        assert_eq!(kv, before, "a rejected command changes nothing");
    }

    #[test]
    fn append_refuses_to_grow_a_list_past_its_limit() {
        let mut kv = KvStore::new();
        let half = "x".repeat(MAX_LIST_BYTES / 2);
        assert_eq!(kv.apply(1, &append("l", &half)).http_status(), 200);
        assert_eq!(kv.apply(2, &append("l", &half)).http_status(), 200);
        let before = kv.clone();
        let Answer::Rejected { error } = kv.apply(3, &append("l", "y")) else {
            panic!("a list over 1 MiB was accepted");
        };
        assert_eq!(
            error,
            "appending to key `l` would make its list 1048577 bytes long; a list may hold at most \
             1048576 bytes (1 MiB)"
        );
        assert_eq!(kv, before, "a refused append changes nothing");
        // An empty string adds no bytes, so a full list still takes it.
        assert_eq!(kv.apply(4, &append("l", "")).http_status(), 200);
    }

    #[test]
    fn a_retried_seq_is_answered_not_reapplied() {
        let mut kv = KvStore::new();
        let mut cmd = append("l", "a");
        cmd.client_id = Some("c".into());
        cmd.seq = Some(1);
        let first = kv.apply(1, &cmd);
        assert_eq!(
            kv.apply(9, &cmd),
            first,
            "the retry gets the first answer, index included"
        );
        assert_eq!(kv.peek("l"), Some(&Value::List(vec!["a".into()])));
        cmd.seq = Some(2);
        kv.apply(10, &cmd);
        cmd.seq = Some(1);
        assert_eq!(
            kv.apply(11, &cmd).http_status(),
            400,
            "an older seq is refused"
        );
        assert_eq!(
            kv.peek("l"),
            Some(&Value::List(vec!["a".into(), "a".into()]))
        );
    }
}
