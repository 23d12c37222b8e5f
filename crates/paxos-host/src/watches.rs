//! The driver's table of watches: clients waiting for a key to change past an index.
//!
//! A watch of `key` after index `after` answers as soon as the key's modification index (the
//! slot that last changed it, see [`paxos_core::kv`]) is above `after`, with the key's value
//! then; at once if it already is. It is level-triggered: a watcher may skip intermediate values
//! and may be woken for a change it cannot tell from an older one, but it never misses one. With
//! no change by its deadline it answers so, with the index the member has applied, from which
//! the client watches again.
//!
//! The driver owns the table, like the node: it adds a watch when one arrives, tells the table
//! which keys each batch changed (or that the store was replaced whole, by a snapshot), and
//! sweeps it for deadlines. The table maps keys to whatever the runtime uses to wake the waiting
//! client, as [`Waiters`](crate::Waiters) does for commands.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use paxos_core::kv::KvStore;
use paxos_core::{Slot, Value};
use serde_json::json;

use crate::waiters::Resolve;

/// What a client asked to watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    pub key: String,
    /// Answer once the key's modification index is above this.
    pub after: Slot,
    /// Answer "unchanged" at this instant at the latest.
    pub deadline: Instant,
}

/// A watch's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// The key changed after the watch's index: its value now (`None` once deleted) and the slot
    /// that last changed it.
    Changed {
        value: Option<Value>,
        modified: Slot,
        index: Slot,
    },
    /// Nothing changed up to `index`, the slot the member had applied when the wait ran out.
    Unchanged { index: Slot },
}

impl Seen {
    /// The answer's JSON body.
    pub fn body(&self) -> String {
        match self {
            Seen::Changed {
                value,
                modified,
                index,
            } => json!({"changed": true, "value": value, "modified": modified, "index": index}),
            Seen::Unchanged { index } => json!({"changed": false, "index": index}),
        }
        .to_string()
    }
}

/// Waiting watches, generic over the runtime's way of answering them, found by key when keys
/// change and by deadline when time passes.
#[derive(Debug)]
pub struct Watches<R> {
    waiting: HashMap<u64, (Watch, R)>,
    by_key: HashMap<String, Vec<u64>>,
    by_deadline: BTreeSet<(Instant, u64)>,
    next_id: u64,
}

impl<R> Default for Watches<R> {
    fn default() -> Self {
        Watches {
            waiting: HashMap::new(),
            by_key: HashMap::new(),
            by_deadline: BTreeSet::new(),
            next_id: 0,
        }
    }
}

impl<R: Resolve<Seen>> Watches<R> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `watch` at once if its key changed after its index in `store` (applied up to
    /// `applied`), or keeps it until it does or its deadline passes.
    pub fn insert(&mut self, store: &KvStore, applied: Slot, watch: Watch, reply: R) {
        if let Some(changed) = seen(store, applied, &watch) {
            return reply.resolve(changed);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.by_key.entry(watch.key.clone()).or_default().push(id);
        self.by_deadline.insert((watch.deadline, id));
        self.waiting.insert(id, (watch, reply));
    }

    /// Answers the watches of `keys` that `store` now shows changed past their index. A key
    /// that did not change past a watch's index leaves it waiting, so naming a key that did not
    /// change is harmless.
    pub fn changed<'k>(
        &mut self,
        store: &KvStore,
        applied: Slot,
        keys: impl IntoIterator<Item = &'k str>,
    ) {
        for key in keys {
            self.check(store, applied, key);
        }
    }

    /// Answers every watch that `store` shows changed past its index: after the store was
    /// replaced whole (a snapshot), when no list of changed keys exists.
    pub fn recheck_all(&mut self, store: &KvStore, applied: Slot) {
        let keys: Vec<String> = self.by_key.keys().cloned().collect();
        for key in &keys {
            self.check(store, applied, key);
        }
    }

    /// Answers "unchanged up to `applied`" to every watch whose deadline has passed by `now`;
    /// returns how many.
    pub fn expire(&mut self, now: Instant, applied: Slot) -> usize {
        let mut expired = 0;
        while let Some(&(deadline, id)) = self.by_deadline.first()
            && deadline <= now
        {
            self.by_deadline.pop_first();
            let (watch, reply) = self.waiting.remove(&id).expect("indexed watches wait");
            if let Some(ids) = self.by_key.get_mut(&watch.key) {
                ids.retain(|&other| other != id);
                if ids.is_empty() {
                    self.by_key.remove(&watch.key);
                }
            }
            reply.resolve(Seen::Unchanged { index: applied });
            expired += 1;
        }
        expired
    }

    fn check(&mut self, store: &KvStore, applied: Slot, key: &str) {
        let Some(ids) = self.by_key.remove(key) else {
            return;
        };
        let mut still = Vec::new();
        for id in ids {
            let (watch, _) = &self.waiting[&id];
            match seen(store, applied, watch) {
                Some(changed) => {
                    let (watch, reply) = self.waiting.remove(&id).expect("indexed watches wait");
                    self.by_deadline.remove(&(watch.deadline, id));
                    reply.resolve(changed);
                }
                None => still.push(id),
            }
        }
        if !still.is_empty() {
            self.by_key.insert(key.to_owned(), still);
        }
    }
}

impl<R> Watches<R> {
    /// Takes every watch, at shutdown; dropping a reply unresolved wakes its client.
    pub fn drain(&mut self) -> impl Iterator<Item = R> + '_ {
        self.by_key.clear();
        self.by_deadline.clear();
        self.waiting.drain().map(|(_, (_, reply))| reply)
    }

    /// When the next watch runs out of time, if any waits.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline.first().map(|&(deadline, _)| deadline)
    }

    /// How many watches wait.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

/// What `watch` should answer now, if its key changed after its index.
fn seen(store: &KvStore, applied: Slot, watch: &Watch) -> Option<Seen> {
    let modified = store.modified(&watch.key);
    (modified > watch.after).then(|| Seen::Changed {
        value: store.peek(&watch.key).cloned(),
        modified,
        index: applied,
    })
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use std::time::Duration;

    use paxos_core::{Command, Op};

    use super::*;

    /// A reply that records what it was answered.
    #[derive(Debug)]
    struct Record(Rc<RefCell<Vec<(u32, Seen)>>>, u32);

    impl Resolve<Seen> for Record {
        fn resolve(self, seen: Seen) {
            self.0.borrow_mut().push((self.1, seen));
        }
    }

    fn put(store: &mut KvStore, slot: Slot, key: &str, value: &str) {
        let op = Op::Put {
            key: key.into(),
            value: value.into(),
        };
        store.apply(slot, &Command::new(op));
    }

    fn watch(key: &str, after: Slot, deadline: Instant) -> Watch {
        Watch {
            key: key.into(),
            after,
            deadline,
        }
    }

    #[test]
    fn answers_at_once_on_change_and_at_the_deadline() {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let reply = |n| Record(Rc::clone(&seen), n);
        let (mut store, mut watches) = (KvStore::new(), Watches::new());
        let (now, later) = (Instant::now(), Instant::now() + Duration::from_secs(60));
        put(&mut store, 3, "k", "a");
        // Changed after 2 already: answered at once.
        watches.insert(&store, 3, watch("k", 2, later), reply(1));
        // Not after 3, nor after 5 (a client that read a later index): both wait.
        watches.insert(&store, 3, watch("k", 3, later), reply(2));
        watches.insert(&store, 3, watch("k", 5, now), reply(3));
        watches.insert(&store, 3, watch("other", 0, later), reply(4));
        assert_eq!(watches.len(), 3);
        // Slot 4 changes another key: nobody on `k` wakes, even if told `k` might have changed.
        put(&mut store, 4, "other", "x");
        watches.changed(&store, 4, ["k", "other"]);
        // Slot 6 changes `k`: both of its watchers wake, the one after 5 too.
        put(&mut store, 6, "k", "b");
        watches.changed(&store, 6, ["k"]);
        assert!(watches.is_empty());
        let b = Some(Value::Str("b".into()));
        assert_eq!(
            *seen.borrow(),
            [
                (
                    1,
                    Seen::Changed {
                        value: Some(Value::Str("a".into())),
                        modified: 3,
                        index: 3
                    }
                ),
                (
                    4,
                    Seen::Changed {
                        value: Some(Value::Str("x".into())),
                        modified: 4,
                        index: 4
                    }
                ),
                (
                    2,
                    Seen::Changed {
                        value: b.clone(),
                        modified: 6,
                        index: 6
                    }
                ),
                (
                    3,
                    Seen::Changed {
                        value: b,
                        modified: 6,
                        index: 6
                    }
                ),
            ]
        );
        // With no change by its deadline, a watch answers so, with the index applied.
        watches.insert(&store, 6, watch("k", 6, now), reply(5));
        assert_eq!(watches.expire(now, 7), 1);
        assert_eq!(
            seen.borrow().last(),
            Some(&(5, Seen::Unchanged { index: 7 }))
        );
    }

    #[test]
    fn a_deletion_wakes_and_a_replaced_store_is_rechecked() {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let (mut store, mut watches) = (KvStore::new(), Watches::new());
        let later = Instant::now() + Duration::from_secs(60);
        put(&mut store, 1, "k", "a");
        watches.insert(&store, 1, watch("k", 1, later), Record(Rc::clone(&seen), 1));
        store.apply(2, &Command::new(Op::Delete { key: "k".into() }));
        watches.recheck_all(&store, 2);
        let deleted = Seen::Changed {
            value: None,
            modified: 2,
            index: 2,
        };
        assert_eq!(*seen.borrow(), [(1, deleted)]);
        assert!(watches.is_empty());
    }
}
