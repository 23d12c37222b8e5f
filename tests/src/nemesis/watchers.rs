//! The watchers: threads that watch the list keys the clients append to, alongside them, each
//! watch from the last change its thread saw of that key, at a random member, recording every
//! answer; and the check of those answers against what the log decided.
//!
//! A watch is level-triggered: it may skip intermediate lists, but what it reports must be a
//! state the key was in. Every value appended in a run is unique, so a list is a state of its
//! key exactly when it is a prefix of the key's final list, and the append that made a list of
//! that length was decided in the slot the watch names as the key's modification index.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use paxos_core::{Answer, Op, Value};

use super::history::{Outcome, Record};
use super::rng::Rng;
use super::workload::{Counters, LIST_KEYS, OPS_PER_GENERATION};
use crate::http::Client;

/// Watcher threads beside the clients.
pub const WATCHERS: usize = 2;
/// How long one watch waits for a change, in seconds: short, so that a watcher follows the
/// clients to each new generation of keys.
const WAIT_SECONDS: u64 = 1;
/// The pause after a watch that got no answer, so that a member down does not fill the record.
const AFTER_FAILURE: std::ops::Range<u64> = 50..150;

/// One watch and its answer.
#[derive(Clone, Debug)]
pub struct WatchRecord {
    pub watcher: usize,
    pub member: usize,
    pub key: String,
    pub after: u64,
    pub answer: WatchAnswer,
}

/// What a watch was answered.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchAnswer {
    /// The key changed after `after`: its value, the slot that last changed it, and the slot
    /// the answer reflects.
    Changed {
        value: Option<Value>,
        modified: u64,
        index: u64,
    },
    /// Nothing changed up to slot `index`.
    Unchanged { index: u64 },
    /// No answer, or not a `200`.
    Failed,
}

/// The running watcher threads.
#[derive(Debug)]
pub struct Watchers {
    threads: Vec<JoinHandle<Vec<WatchRecord>>>,
}

impl Watchers {
    /// Starts [`WATCHERS`] threads over the members' base URLs (`http://host:port`), following
    /// the clients' generations through `counters`, until `stop`.
    pub fn start(
        bases: &[String],
        client: &Client,
        seed: u64,
        counters: &Arc<Counters>,
        stop: &Arc<AtomicBool>,
    ) -> Watchers {
        let threads = (0..WATCHERS)
            .map(|watcher| {
                let (bases, client) = (bases.to_vec(), client.clone());
                let (counters, stop) = (Arc::clone(counters), Arc::clone(stop));
                let mut rng = Rng::stream(seed, 2000 + watcher as u64);
                std::thread::Builder::new()
                    .name(format!("watcher-{watcher}"))
                    .spawn(move || {
                        let mut seen: HashMap<String, u64> = HashMap::new();
                        let mut records = Vec::new();
                        while !stop.load(Ordering::Relaxed) {
                            let invoked = counters.invoked.load(Ordering::Relaxed);
                            let generation = invoked / OPS_PER_GENERATION;
                            let key = format!("g{generation}-list{}", rng.index(LIST_KEYS));
                            let after = seen.get(&key).copied().unwrap_or(0);
                            let member = rng.index(bases.len());
                            let answer = watch(&client, &bases[member], &key, after);
                            match &answer {
                                WatchAnswer::Changed { modified, .. } => {
                                    seen.insert(key.clone(), *modified);
                                }
                                WatchAnswer::Failed => {
                                    std::thread::sleep(rng.millis(AFTER_FAILURE));
                                }
                                WatchAnswer::Unchanged { .. } => {}
                            }
                            records.push(WatchRecord {
                                watcher,
                                member,
                                key,
                                after,
                                answer,
                            });
                        }
                        records
                    })
                    .expect("spawn a watcher thread")
            })
            .collect();
        Watchers { threads }
    }

    /// Waits for the watchers, which end after their current watch once `stop` is set.
    pub fn stop(self) -> Vec<WatchRecord> {
        let mut records = Vec::new();
        for thread in self.threads {
            match thread.join() {
                Ok(mine) => records.extend(mine),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        records
    }
}

/// One `GET /watch` of `key` from `after` at the member at `base`.
fn watch(client: &Client, base: &str, key: &str, after: u64) -> WatchAnswer {
    let url = format!("{base}/watch?key={key}&after={after}&wait={WAIT_SECONDS}");
    let Ok(response) = client.get(&url) else {
        return WatchAnswer::Failed;
    };
    if response.status != 200 {
        return WatchAnswer::Failed;
    }
    let answer = response.json();
    let number = |field: &str| answer[field].as_u64();
    match (answer["changed"].as_bool(), number("index")) {
        (Some(true), Some(index)) => {
            let value: Option<Value> =
                serde_json::from_value(answer["value"].clone()).unwrap_or(None);
            WatchAnswer::Changed {
                value,
                modified: number("modified").unwrap_or(0),
                index,
            }
        }
        (Some(false), Some(index)) => WatchAnswer::Unchanged { index },
        _ => WatchAnswer::Failed,
    }
}

/// Checks every watch answer against `finals` (each list key's final list) and the slots the
/// acknowledged appends of `records` were decided in: a change is reported only past `after`,
/// as a list the key held, with the slot that made it; "unchanged through N" only if no append
/// to the key was decided after `after` up to `N`. Keys without a final list are skipped.
pub fn check(
    watches: &[WatchRecord],
    records: &[Record],
    finals: &HashMap<String, Vec<String>>,
) -> Vec<String> {
    let decided = decided_lists(records);
    let mut found = Vec::new();
    for w in watches {
        let what = format!(
            "watcher {} at member {}, key {} after {}",
            w.watcher, w.member, w.key, w.after
        );
        let (value, modified) = match &w.answer {
            WatchAnswer::Failed => continue,
            WatchAnswer::Unchanged { index } => {
                // A member behind the watch's `after` may answer through a slot before it.
                let slots = decided.get(w.key.as_str()).into_iter().flatten();
                for (slot, _) in slots.filter(|(slot, _)| (w.after + 1..=*index).contains(*slot)) {
                    found.push(format!(
                        "{what}: unchanged through {index}, but an append to it was decided at \
                         {slot}"
                    ));
                }
                continue;
            }
            WatchAnswer::Changed {
                value, modified, ..
            } => (value, *modified),
        };
        if modified <= w.after {
            found.push(format!(
                "{what}: a change at {modified}, not after {}",
                w.after
            ));
        }
        found.extend(held(&what, &w.key, value, modified, &decided, finals));
    }
    found
}

/// Per key, the list each acknowledged append answered with, by the slot it was decided in.
pub(super) type Decided<'a> = HashMap<&'a str, HashMap<u64, &'a Vec<String>>>;

/// The [`Decided`] lists of `records`.
pub(super) fn decided_lists(records: &[Record]) -> Decided<'_> {
    let mut decided: Decided = HashMap::new();
    for record in records {
        if let (
            Op::Append { key, .. },
            Outcome::Answered(Answer::Done {
                value: Some(Value::List(list)),
                index,
                ..
            }),
        ) = (&record.command.op, &record.outcome)
        {
            decided.entry(key).or_default().insert(*index, list);
        }
    }
    decided
}

/// Whether `value` is a state list `key` held, made at slot `modified`: a prefix of its final
/// list, as long as the list the append decided at `modified` answered, and as no other. One
/// sentence (after `what`) per way it is not; none for a key without a final list.
pub(super) fn held(
    what: &str,
    key: &str,
    value: &Option<Value>,
    modified: u64,
    decided: &Decided,
    finals: &HashMap<String, Vec<String>>,
) -> Vec<String> {
    let Some(last) = finals.get(key) else {
        return Vec::new();
    };
    let list = match value {
        Some(Value::List(list)) => list.clone(),
        None => Vec::new(),
        Some(Value::Str(s)) => return vec![format!("{what}: the string {s:?} in a list key")],
    };
    if !last.starts_with(&list) {
        return vec![format!(
            "{what}: {list:?} at {modified}, which the key never held (its final list is \
             {last:?})"
        )];
    }
    let mut found = Vec::new();
    for (slot, answered) in decided.get(key).into_iter().flatten() {
        let same_state = answered.len() == list.len();
        if same_state != (*slot == modified) {
            found.push(format!(
                "{what}: {} items at {modified}, but the append decided at {slot} answered {} \
                 items",
                list.len(),
                answered.len()
            ));
        }
    }
    found
}

/// The watches' figures for the summary: answered with a change, answered unchanged, failed.
pub fn counts(watches: &[WatchRecord]) -> (usize, usize, usize) {
    let changed = watches
        .iter()
        .filter(|w| matches!(w.answer, WatchAnswer::Changed { .. }))
        .count();
    let unchanged = watches
        .iter()
        .filter(|w| matches!(w.answer, WatchAnswer::Unchanged { .. }))
        .count();
    (changed, unchanged, watches.len() - changed - unchanged)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn changed(after: u64, list: &[&str], modified: u64) -> WatchRecord {
        WatchRecord {
            watcher: 0,
            member: 0,
            key: "k".into(),
            after,
            answer: WatchAnswer::Changed {
                value: Some(Value::List(list.iter().map(|s| s.to_string()).collect())),
                modified,
                index: modified,
            },
        }
    }

    /// An acknowledged append of `value` to `k`, decided in `slot`, answered with `list`.
    fn appended(value: &str, slot: u64, list: &[&str]) -> Record {
        let op = Op::Append {
            key: "k".into(),
            value: value.into(),
        };
        Record {
            client: 0,
            member: 0,
            command: paxos_core::Command::new(op),
            invoke: Duration::ZERO,
            complete: Duration::ZERO,
            outcome: Outcome::Answered(Answer::Done {
                ok: paxos_core::command::True,
                value: Some(Value::List(list.iter().map(|s| s.to_string()).collect())),
                index: slot,
                modified: slot,
            }),
            earlier: Vec::new(),
        }
    }

    #[test]
    fn a_watch_must_report_a_state_the_key_held_at_its_slot() {
        let finals = HashMap::from([("k".to_owned(), vec!["a".to_owned(), "b".to_owned()])]);
        let records = [appended("a", 3, &["a"]), appended("b", 5, &["a", "b"])];
        let good = [changed(0, &["a"], 3), changed(3, &["a", "b"], 5)];
        assert!(check(&good, &records, &finals).is_empty());
        // Not after `after`; a list the key never held; the right list at the wrong slot.
        assert_eq!(
            check(&[changed(5, &["a", "b"], 5)], &records, &finals).len(),
            1
        );
        assert_eq!(check(&[changed(0, &["b"], 4)], &records, &finals).len(), 1);
        assert_eq!(check(&[changed(0, &["a"], 4)], &records, &finals).len(), 1);
        // Unchanged through a slot that changed it; a lagging member's answer from before.
        let unchanged = |after, index| WatchRecord {
            answer: WatchAnswer::Unchanged { index },
            ..changed(after, &[], 0)
        };
        assert_eq!(check(&[unchanged(3, 6)], &records, &finals).len(), 1);
        assert!(check(&[unchanged(5, 2), unchanged(5, 9)], &records, &finals).is_empty());
    }
}
