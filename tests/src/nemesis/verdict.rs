//! The checks of a finished run: linearizability of the whole history, key by key; no
//! acknowledged append lost or duplicated; recovery within the bound; and nothing the contract
//! forbids (an answer it does not allow, a member exiting by itself).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use paxos_core::check::{OpRecord, linearizability};
use paxos_core::{Answer, Op, Value};

use super::history::{self, Outcome, Record};
use crate::appends::{self, Acked};

/// What the checks found.
#[derive(Debug, Default)]
pub struct Verdict {
    /// One sentence per violation, each prefixed with the check that found it.
    pub violations: Vec<String>,
    pub keys_checked: usize,
    /// How long the linearizability check took, and its slowest key.
    pub check_time: Duration,
    pub slowest_key: Option<(String, Duration)>,
}

impl Verdict {
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    /// Adds violations found elsewhere (recovery, crashes, missing final reads), under `check`.
    pub fn add(&mut self, check: &str, sentences: impl IntoIterator<Item = String>) {
        self.violations
            .extend(sentences.into_iter().map(|s| format!("{check}: {s}")));
    }
}

/// Checks `records` (the final reads included) against `finals`, each key's final value.
pub fn judge(records: &[Record], finals: &HashMap<String, Option<Value>>) -> Verdict {
    let mut verdict = Verdict::default();
    verdict.add(
        "answers",
        records.iter().filter_map(|r| match &r.outcome {
            Outcome::Unexpected(what) => Some(format!(
                "member {} answered {} with {what}",
                r.member,
                serde_json::to_string(&r.command).expect("commands serialize")
            )),
            _ => None,
        }),
    );
    let started = Instant::now();
    let keys = history::by_key(records);
    verdict.keys_checked = keys.len();
    let (failures, slowest) = check_in_parallel(keys);
    verdict.check_time = started.elapsed();
    verdict.slowest_key = slowest;
    verdict.add("linearizability", failures);
    verdict.add(
        "appends",
        appends_history(records).violations(&final_lists(finals)),
    );
    verdict
}

/// Runs the linearizability check of every key, on as many threads as there are cores; returns
/// the failures and the slowest key.
fn check_in_parallel(
    keys: BTreeMap<String, Vec<OpRecord>>,
) -> (Vec<String>, Option<(String, Duration)>) {
    let queue = Mutex::new(keys.into_iter());
    let results = Mutex::new((Vec::new(), None::<(String, Duration)>));
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some((key, ops)) = next else { break };
                    let started = Instant::now();
                    let failures = linearizability::check(&ops);
                    let took = started.elapsed();
                    let mut results = results.lock().unwrap_or_else(|e| e.into_inner());
                    results.0.extend(failures);
                    if results.1.as_ref().is_none_or(|(_, t)| took > *t) {
                        results.1 = Some((key, took));
                    }
                }
            });
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// The appends of `records` as the suite's list-append history: acknowledged ones with the list
/// each answer showed, in each client's sending order, and those whose outcome is unknown.
fn appends_history(records: &[Record]) -> appends::History {
    let mut sorted: Vec<&Record> = records.iter().collect();
    sorted.sort_by_key(|r| (r.client, r.invoke));
    let mut history = appends::History::default();
    for record in sorted {
        let Op::Append { key, value } = &record.command.op else {
            continue;
        };
        match &record.outcome {
            Outcome::Answered(Answer::Done {
                value: Some(Value::List(list)),
                ..
            }) => history.acked.push(Acked {
                client: record.client,
                key: key.clone(),
                value: value.clone(),
                list: list.clone(),
            }),
            Outcome::Unknown(_) | Outcome::Unexpected(_) => {
                history.unknown.push((key.clone(), value.clone()));
            }
            // Rejected: it changed nothing, so its value must not show up (nobody sent it).
            Outcome::Answered(_) => {}
        }
    }
    history
}

/// The final value of every key that holds a list (or nothing) as a list.
fn final_lists(finals: &HashMap<String, Option<Value>>) -> HashMap<String, Vec<String>> {
    finals
        .iter()
        .filter_map(|(key, value)| match value {
            Some(Value::List(list)) => Some((key.clone(), list.clone())),
            None => Some((key.clone(), Vec::new())),
            Some(Value::Str(_)) => None,
        })
        .collect()
}
