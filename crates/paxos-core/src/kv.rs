//! The replicated state machine: a key-value store applied in log order on every member.
//!
//! Everything here is deterministic, so members that apply the same log hold the same store and
//! give the same answers. That includes exactly-once bookkeeping: the table of each client's
//! latest `seq` and answer is part of the replicated state, which is why a retry sent to any
//! member, before or after a leader change, is answered from it instead of being applied again.
//!
//! Every key carries its *modification index*: the slot that last changed it. A deleted key keeps
//! its deletion's slot in a tombstone for a while; the oldest tombstones are dropped past
//! [`MAX_TOMBSTONE_BYTES`], and the store's *floor* rises to the slot of the newest one dropped,
//! so that "changed at or before the floor" covers every change it no longer records. A watch
//! from an index compares against [`KvStore::modified`] and never misses a change, at worst
//! waking for one it cannot tell apart from an older one.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::command::{Answer, Command, Op, Value};
use crate::log::Slot;

/// The most bytes of strings one list may hold. Every `append` answers the whole list, so an
/// unbounded list would make every answer, and every member's memory, grow without end.
pub const MAX_LIST_BYTES: usize = 1024 * 1024;

/// The most bytes the store may take as JSON, keys, values and kept exactly-once answers
/// together. A member sends its whole state in one peer message to a member too far behind for
/// the log (see [`snapshot`](crate::snapshot)), and peer messages are limited to 64 MiB; a store
/// past that could never be sent, and the member would never catch up. A write that would pass
/// the quota is refused, as etcd refuses writes past its space quota; reads and deletes still go.
pub const MAX_STORE_BYTES: usize = 32 * 1024 * 1024;

/// The most bytes of keys that tombstones of deleted keys may hold. Past it the oldest are
/// dropped, in slot order, so every member drops the same ones.
pub const MAX_TOMBSTONE_BYTES: usize = 1024 * 1024;

/// A colon and a comma per map entry, besides the JSON of its key and its value.
const PUNCTUATION: usize = 2;

/// The store and its exactly-once table. It serializes into [snapshots](crate::snapshot).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Stored", into = "Stored")]
pub struct KvStore {
    data: BTreeMap<String, Value>,
    /// The modification index of every key in `data`.
    modified: BTreeMap<String, Slot>,
    /// Keys deleted, by the slot that deleted them (a slot deletes at most one key).
    tombstones: BTreeMap<Slot, String>,
    /// The same tombstones by key. Snapshots leave it out; it is built again when one is read.
    deleted: HashMap<String, Slot>,
    /// Every change the store no longer records (in `modified` or `tombstones`) happened at or
    /// before this slot.
    floor: Slot,
    /// Per `client_id`: the latest `seq` applied and the answer it got.
    sessions: HashMap<String, (u64, Answer)>,
    /// What `data`, `modified` and `sessions` take as JSON, held under [`MAX_STORE_BYTES`].
    /// Snapshots leave it out; it is counted again when one is read back.
    bytes: usize,
    /// What the keys of `tombstones` take, held under [`MAX_TOMBSTONE_BYTES`].
    tombstone_bytes: usize,
}

/// A [`KvStore`] as snapshots hold it. Snapshots written before modification indexes existed
/// have none of them; see [`KvStore::assume_changed_by`].
#[derive(Clone, Serialize, Deserialize)]
struct Stored {
    data: BTreeMap<String, Value>,
    #[serde(default)]
    modified: BTreeMap<String, Slot>,
    /// As pairs, oldest first: JSON object keys are strings, which a record read through its
    /// tag (buffered first) cannot turn back into slots.
    #[serde(default)]
    tombstones: Vec<(Slot, String)>,
    #[serde(default)]
    floor: Slot,
    sessions: HashMap<String, (u64, Answer)>,
}

impl From<Stored> for KvStore {
    fn from(stored: Stored) -> Self {
        let mut kv = KvStore {
            data: stored.data,
            modified: stored.modified,
            tombstones: stored.tombstones.into_iter().collect(),
            deleted: HashMap::new(),
            floor: stored.floor,
            sessions: stored.sessions,
            bytes: 0,
            tombstone_bytes: 0,
        };
        kv.deleted = kv.tombstones.iter().map(|(&s, k)| (k.clone(), s)).collect();
        kv.bytes = kv.data.keys().map(|k| kv.entry_bytes(k)).sum::<usize>()
            + kv.sessions
                .keys()
                .map(|c| kv.session_bytes(c))
                .sum::<usize>();
        kv.tombstone_bytes = kv.tombstones.values().map(String::len).sum();
        kv
    }
}

impl From<KvStore> for Stored {
    fn from(kv: KvStore) -> Self {
        Stored {
            data: kv.data,
            modified: kv.modified,
            tombstones: kv.tombstones.into_iter().collect(),
            floor: kv.floor,
            sessions: kv.sessions,
        }
    }
}

impl KvStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies the command decided at log slot `index` and returns its answer, unless it would
    /// take the store past [`MAX_STORE_BYTES`]: then nothing changes and the answer says why.
    pub fn apply(&mut self, index: u64, command: &Command) -> Answer {
        let key = command.op.key();
        let client = command
            .client_id
            .as_deref()
            .filter(|_| command.seq.is_some());
        if client.is_none() {
            match &command.op {
                // A plain read changes nothing, so there is nothing to weigh or put back.
                Op::Get { .. } => return self.apply_within_quota(index, command),
                // The most common write, and the one on the longest values: weighed without
                // copying or measuring the whole list.
                Op::Append { key, value } => return self.append(index, key, value, command),
                _ => {}
            }
        }
        let saved_value = self.data.get(key).cloned();
        let saved_modified = self.modified.get(key).copied();
        let saved_session = client.and_then(|c| self.sessions.get(c).cloned());
        let before = self.bytes_of(key, client);
        let answer = self.apply_within_quota(index, command);
        let after = self.bytes_of(key, client);
        if after > before && self.bytes + (after - before) > MAX_STORE_BYTES {
            // Put back what the command changed: the key and its client's session. Only a write
            // can grow the store, and a write that grows it deletes nothing, so no tombstone came
            // or went.
            match saved_value {
                Some(value) => self.data.insert(key.to_owned(), value),
                None => self.data.remove(key),
            };
            match saved_modified {
                Some(slot) => self.modified.insert(key.to_owned(), slot),
                None => self.modified.remove(key),
            };
            if let Some(client) = client {
                match saved_session {
                    Some(session) => self.sessions.insert(client.to_owned(), session),
                    None => self.sessions.remove(client),
                };
            }
            return self.full(after - before);
        }
        self.bytes = self.bytes + after - before;
        answer
    }

    /// A plain `append`: what it adds is its item and a comma, or a new entry for a new list,
    /// and its modification index's new digits.
    fn append(&mut self, index: u64, key: &str, item: &str, command: &Command) -> Answer {
        let grows = match self.data.get(key) {
            None => {
                json_len(key)
                    + PUNCTUATION
                    + json_len(&[item])
                    + json_len(key)
                    + PUNCTUATION
                    + json_len(&index)
            }
            Some(Value::List(items)) => {
                let before = self.modified.get(key).map_or(0, json_len);
                json_len(item) + usize::from(!items.is_empty()) + json_len(&index) - before
            }
            Some(Value::Str(_)) => 0,
        };
        if self.bytes + grows > MAX_STORE_BYTES {
            return self.full(grows);
        }
        let answer = self.apply_within_quota(index, command);
        if matches!(answer, Answer::Done { .. }) {
            self.bytes += grows;
        }
        answer
    }

    fn full(&self, grows: usize) -> Answer {
        Answer::Rejected {
            error: format!(
                "the store is full: it holds {} bytes and this command would add {grows}, past \
                 its quota of {MAX_STORE_BYTES} bytes (32 MiB); delete keys to make room",
                self.bytes
            ),
        }
    }

    /// What the store holds as JSON for `key` and, if given, `client`'s session.
    fn bytes_of(&self, key: &str, client: Option<&str>) -> usize {
        self.entry_bytes(key) + client.map_or(0, |c| self.session_bytes(c))
    }

    /// The key's entries in `data` and `modified`.
    fn entry_bytes(&self, key: &str) -> usize {
        let value = self
            .data
            .get_key_value(key)
            .map_or(0, |(k, v)| json_len(k) + json_len(v) + PUNCTUATION);
        let modified = self
            .modified
            .get_key_value(key)
            .map_or(0, |(k, m)| json_len(k) + json_len(m) + PUNCTUATION);
        value + modified
    }

    fn session_bytes(&self, client: &str) -> usize {
        self.sessions
            .get_key_value(client)
            .map_or(0, |(c, s)| json_len(c) + json_len(s) + PUNCTUATION)
    }

    fn apply_within_quota(&mut self, index: u64, command: &Command) -> Answer {
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

    /// The answer to a `get` of `key` from the store as applied up to slot `index`, without
    /// going through the log: it changes nothing, not even the exactly-once table, since a read
    /// can be answered again as often as it is asked.
    pub fn read(&self, index: Slot, key: &str) -> Answer {
        Answer::read(self.data.get(key).cloned(), index, self.modified(key))
    }

    /// The key's value, as applied so far here.
    pub fn peek(&self, key: &str) -> Option<&Value> {
        self.data.get(key)
    }

    /// The key's modification index: the slot that last changed it (a delete included), or for
    /// a change the store no longer records, the floor, at or after it.
    pub fn modified(&self, key: &str) -> Slot {
        if let Some(&slot) = self.modified.get(key) {
            return slot;
        }
        self.deleted.get(key).copied().unwrap_or(self.floor)
    }

    /// Treats every key as changed at or before `slot` unless the store knows better: for a store
    /// read from a snapshot of `slot` taken before modification indexes existed.
    pub fn assume_changed_by(&mut self, slot: Slot) {
        if self.modified.is_empty() && self.tombstones.is_empty() {
            self.floor = self.floor.max(slot);
        }
    }

    /// Marks `key` changed at `index`: live in `modified`, no longer deleted.
    fn touch(&mut self, key: &str, index: Slot) {
        self.modified.insert(key.to_owned(), index);
        self.forget_tombstone(key);
    }

    /// Removes `key` at `index`, leaving a tombstone; drops the oldest tombstones past
    /// [`MAX_TOMBSTONE_BYTES`], raising the floor to cover them.
    fn remove(&mut self, key: &str, index: Slot) {
        if self.data.remove(key).is_none() {
            return;
        }
        self.modified.remove(key);
        self.forget_tombstone(key);
        self.tombstones.insert(index, key.to_owned());
        self.deleted.insert(key.to_owned(), index);
        self.tombstone_bytes += key.len();
        while self.tombstone_bytes > MAX_TOMBSTONE_BYTES
            && let Some((slot, key)) = self.tombstones.pop_first()
        {
            self.deleted.remove(&key);
            self.tombstone_bytes -= key.len();
            self.floor = self.floor.max(slot);
        }
    }

    fn forget_tombstone(&mut self, key: &str) {
        if let Some(slot) = self.deleted.remove(key)
            && let Some(key) = self.tombstones.remove(&slot)
        {
            self.tombstone_bytes -= key.len();
        }
    }

    fn apply_op(&mut self, index: u64, op: &Op) -> Answer {
        match op {
            Op::Get { key } => Answer::read(self.data.get(key).cloned(), index, self.modified(key)),
            Op::Put { key, value } => {
                self.data.insert(key.clone(), Value::Str(value.clone()));
                self.touch(key, index);
                Answer::done(Some(Value::Str(value.clone())), index)
            }
            Op::Delete { key } => {
                self.remove(key, index);
                Answer::read(None, index, self.modified(key))
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
                    return Answer::mismatch(current.cloned(), self.modified(key));
                }
                self.data.insert(key.clone(), Value::Str(value.clone()));
                self.touch(key, index);
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
                        let answer = Answer::done(Some(list.clone()), index);
                        self.touch(key, index);
                        answer
                    }
                    Value::Str(_) => Answer::Rejected {
                        error: format!("key `{key}` holds a string; append needs a list"),
                    },
                }
            }
        }
    }
}

/// How many bytes `value` takes as JSON, counted without building the text.
pub(crate) fn json_len<T: Serialize + ?Sized>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, value).expect("store values always serialize");
    count.0
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
        assert_eq!(kv.apply(1, &get), Answer::read(None, 1, 0));
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
            Answer::mismatch(Some(Value::Str("a".into())), 2)
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
        assert_eq!(
            kv.apply(7, &get),
            Answer::read(Some(Value::Str("c".into())), 7, 6)
        );
    }

    #[test]
    fn every_key_knows_the_slot_that_last_changed_it() {
        let mut kv = KvStore::new();
        let put = |key: &str| {
            op(Op::Put {
                key: key.into(),
                value: "v".into(),
            })
        };
        let delete = |key: &str| op(Op::Delete { key: key.into() });
        assert_eq!(kv.modified("k"), 0, "a key never written");
        kv.apply(3, &put("k"));
        kv.apply(4, &append("l", "a"));
        assert_eq!((kv.modified("k"), kv.modified("l")), (3, 4));
        // A read, a mismatch and a refused write change nothing.
        kv.apply(5, &op(Op::Get { key: "k".into() }));
        kv.apply(6, &append("k", "x"));
        assert_eq!(kv.modified("k"), 3);
        // A delete leaves its slot; deleting an absent key changes nothing; a write revives it.
        kv.apply(7, &delete("k"));
        assert_eq!(kv.modified("k"), 7);
        kv.apply(8, &delete("k"));
        assert_eq!(kv.modified("k"), 7);
        kv.apply(9, &put("k"));
        assert_eq!(kv.modified("k"), 9);
        // Indexes survive a snapshot.
        let back: KvStore = serde_json::from_str(&serde_json::to_string(&kv).unwrap()).unwrap();
        assert_eq!(back, kv);
        // A snapshot from before indexes existed says every key changed by its slot.
        let mut old: KvStore =
            serde_json::from_str(r#"{"data": {"k": "v"}, "sessions": {}}"#).unwrap();
        old.assume_changed_by(20);
        assert_eq!((old.modified("k"), old.modified("other")), (20, 20));
    }

    #[test]
    fn the_oldest_tombstones_go_and_the_floor_covers_them() {
        let mut kv = KvStore::new();
        let key = |n: u64| format!("{n:0>1000}");
        let count = (MAX_TOMBSTONE_BYTES / 1000) as u64 + 10;
        for n in 1..=count {
            let put = op(Op::Put {
                key: key(n),
                value: "v".into(),
            });
            kv.apply(2 * n, &put);
            kv.apply(2 * n + 1, &op(Op::Delete { key: key(n) }));
        }
        assert!(kv.tombstone_bytes <= MAX_TOMBSTONE_BYTES);
        // The first deletions are forgotten, at or before the floor; the last are exact.
        assert!(
            kv.floor > 3 && kv.modified(&key(1)) == kv.floor,
            "floor {}",
            kv.floor
        );
        assert_eq!(kv.modified(&key(count)), 2 * count + 1);
        assert!(
            kv.modified(&key(1)) >= 3,
            "a change is never reported as older than it was"
        );
        // Members that apply the same slots drop the same tombstones.
        let back: KvStore = serde_json::from_str(&serde_json::to_string(&kv).unwrap()).unwrap();
        assert_eq!(back, kv);
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
    fn writes_past_the_quota_are_refused_and_change_nothing() {
        let mut kv = KvStore::new();
        for (slot, item) in ["a", "b\"quoted\"", "c\u{1}"].into_iter().enumerate() {
            assert!(matches!(
                kv.apply(slot as u64, &append("list", item)),
                Answer::Done { .. }
            ));
        }
        let json = |kv: &KvStore| json_len(&kv.data) - 1 + json_len(&kv.modified) - 1;
        assert_eq!(kv.bytes, json(&kv), "appends count their JSON");
        let big = "x".repeat(512 * 1024);
        let put = |key: String, value: &str| {
            op(Op::Put {
                key,
                value: value.into(),
            })
        };
        let mut slot = 0;
        let refused = loop {
            slot += 1;
            assert!(
                slot < 100,
                "a 32 MiB quota took more than 99 puts of 512 KiB"
            );
            match kv.apply(slot, &put(format!("k{slot}"), &big)) {
                Answer::Rejected { error } => break error,
                answer => assert!(matches!(answer, Answer::Done { .. }), "{answer:?}"),
            }
        };
        assert!(refused.contains("the store is full"), "{refused}");
        assert!(kv.bytes <= MAX_STORE_BYTES);
        assert_eq!(
            kv.peek(&format!("k{slot}")),
            None,
            "a refused put changed nothing"
        );
        assert_eq!(kv.bytes, json(&kv), "the count matches the JSON");
        let back: KvStore = serde_json::from_str(&serde_json::to_string(&kv).unwrap()).unwrap();
        assert_eq!(
            back.bytes, kv.bytes,
            "a snapshot counts the same bytes again"
        );
        // Overwriting with less, deleting and reading still go.
        assert!(matches!(
            kv.apply(slot + 1, &put("k1".into(), "small")),
            Answer::Done { .. }
        ));
        let delete = op(Op::Delete { key: "k2".into() });
        assert!(matches!(kv.apply(slot + 2, &delete), Answer::Done { .. }));
        let get = op(Op::Get { key: "k3".into() });
        assert!(matches!(kv.apply(slot + 3, &get), Answer::Done { .. }));
        // Now there is room again.
        assert!(matches!(
            kv.apply(slot + 4, &put(format!("k{slot}"), &big)),
            Answer::Done { .. }
        ));
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
