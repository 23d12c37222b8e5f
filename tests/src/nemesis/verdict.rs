//! The checks of a finished run: linearizability of the whole history, key by key; no
//! acknowledged append lost or duplicated; every watch answer a state its key held (see
//! [`super::watchers::check`]); every exactly-once append applied once at most, and
//! exactly once if acknowledged; recovery within the bound; and nothing the contract forbids (an
//! answer it does not allow, a member exiting by itself). Then the [`floors`]: a run that found
//! nothing wrong is only called clean if it checked enough to mean something.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use paxos_core::check::{OpRecord, linearizability};
use paxos_core::{Answer, Op, Value};

use super::floors::Floor;
use super::history::{self, Outcome, Record};
use crate::appends::{self, Acked};

/// What the checks found.
#[derive(Debug, Default)]
pub struct Verdict {
    /// One sentence per violation, each prefixed with the check that found it.
    pub violations: Vec<String>,
    /// How many keys the history touched, and those of them whose history was not checked to
    /// the end, each with why: its final value was not read, or the linearizability search
    /// gave up.
    pub keys: usize,
    pub unchecked: Vec<String>,
    /// How long the linearizability check took, and its slowest key.
    pub check_time: Duration,
    pub slowest_key: Option<(String, Duration)>,
    /// Every floor with what the run reached; set once the run's figures are known.
    pub floors: Vec<Floor>,
}

/// What a run's verdict comes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// No violation, and every floor met.
    Clean,
    /// No violation, but a floor not met: the run did not check enough to be called clean.
    Inconclusive,
    /// Something the contract forbids happened; whatever the floors say.
    Violation,
}

impl Verdict {
    pub fn keys_checked(&self) -> usize {
        self.keys - self.unchecked.len()
    }

    pub fn status(&self) -> Status {
        if !self.violations.is_empty() {
            Status::Violation
        } else if self.floors.iter().any(|floor| !floor.met()) {
            Status::Inconclusive
        } else {
            Status::Clean
        }
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
    verdict.keys = keys.len();
    let unread: Vec<String> = keys
        .keys()
        .filter(|key| !finals.contains_key(*key))
        .map(|key| format!("{key} (no final read)"))
        .collect();
    let checked = check_in_parallel(keys);
    verdict.check_time = started.elapsed();
    verdict.slowest_key = checked.slowest;
    verdict.unchecked = unread;
    verdict.unchecked.extend(
        checked
            .gave_up
            .iter()
            .filter(|key| finals.contains_key(*key))
            .map(|key| format!("{key} (the linearizability search gave up)")),
    );
    verdict.add("linearizability", checked.failures);
    // A key whose final value nobody read is reported by the runner and left out here: its
    // acknowledged appends are not missing, only unseen.
    let lists = final_lists(finals);
    let mut appends = appends_history(records);
    appends.acked.retain(|a| lists.contains_key(&a.key));
    appends.unknown.retain(|(key, _)| lists.contains_key(key));
    verdict.add("appends", appends.violations(&lists));
    verdict.add("exactly-once", exactly_once(records, &lists));
    verdict
}

/// The exactly-once check of the appends that carried `client_id` and `seq` (retried or not),
/// against each key's final list: an acknowledged one appears exactly once, and one whose
/// outcome stayed unknown at most once. A second copy is a retry applied again; a missing one,
/// an acknowledged append lost. (That no value appears that nobody sent is the appends check's,
/// for every client.) Keys without a final list are skipped.
pub fn exactly_once(records: &[Record], finals: &HashMap<String, Vec<String>>) -> Vec<String> {
    let mut found = Vec::new();
    for record in records {
        let (Op::Append { key, value }, Some(client_id), Some(seq)) = (
            &record.command.op,
            &record.command.client_id,
            record.command.seq,
        ) else {
            continue;
        };
        let Some(list) = finals.get(key) else {
            continue;
        };
        let copies = list.iter().filter(|v| *v == value).count();
        let acknowledged = matches!(record.outcome, Outcome::Answered(Answer::Done { .. }));
        let allowed = match acknowledged {
            true => 1..=1,
            false => 0..=1,
        };
        if !allowed.contains(&copies) {
            found.push(format!(
                "key {key}: append({value}) of client_id {client_id} seq {seq}, sent {} time(s), \
                 {}, appears {copies} time(s) in the final list",
                record.attempts(),
                match acknowledged {
                    true => "acknowledged",
                    false => "outcome unknown",
                }
            ));
        }
    }
    found
}

/// What the linearizability check of every key came to.
#[derive(Debug, Default)]
struct Checked {
    failures: Vec<String>,
    /// Keys whose search gave up before an answer.
    gave_up: Vec<String>,
    slowest: Option<(String, Duration)>,
}

/// Runs the linearizability check of every key, on as many threads as there are cores.
fn check_in_parallel(keys: BTreeMap<String, Vec<OpRecord>>) -> Checked {
    let queue = Mutex::new(keys.into_iter());
    let results = Mutex::new(Checked::default());
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
                    // The core says "gave up after N configurations" when its search ran out of
                    // room: the key is unchecked (the run is inconclusive), not a violation. If
                    // that sentence ever changes, a give-up counts as a violation again, which
                    // errs on the safe side.
                    let (gave_up, failures): (Vec<String>, Vec<String>) = failures
                        .into_iter()
                        .partition(|failure| failure.contains("gave up after"));
                    if !gave_up.is_empty() {
                        results.gave_up.push(key.clone());
                    }
                    results.failures.extend(failures);
                    if results.slowest.as_ref().is_none_or(|(_, t)| took > *t) {
                        results.slowest = Some((key, took));
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
pub fn final_lists(finals: &HashMap<String, Option<Value>>) -> HashMap<String, Vec<String>> {
    finals
        .iter()
        .filter_map(|(key, value)| match value {
            Some(Value::List(list)) => Some((key.clone(), list.clone())),
            None => Some((key.clone(), Vec::new())),
            Some(Value::Str(_)) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use paxos_core::Command;

    use super::*;
    use crate::http::NoAnswer;
    use crate::nemesis::floors::{self, Figures};
    use crate::nemesis::history::Unknown;

    fn append(client: usize, value: &str, at: (u64, u64), answer: Option<&[&str]>) -> Record {
        let outcome = match answer {
            Some(list) => Outcome::Answered(Answer::done(
                Some(Value::List(list.iter().map(|v| (*v).to_owned()).collect())),
                1,
            )),
            None => Outcome::Unknown(Unknown::Unavailable),
        };
        record(
            client,
            Op::Append {
                key: "k".into(),
                value: value.into(),
            },
            at,
            outcome,
        )
    }

    fn get(at: (u64, u64), list: Option<&[&str]>) -> Record {
        let value = list.map(|l| Value::List(l.iter().map(|v| (*v).to_owned()).collect()));
        let outcome = Outcome::Answered(Answer::done(value, 1));
        record(9, Op::Get { key: "k".into() }, at, outcome)
    }

    fn record(client: usize, op: Op, (invoke, complete): (u64, u64), outcome: Outcome) -> Record {
        Record {
            client,
            member: 0,
            command: Command::new(op),
            invoke: Duration::from_millis(invoke),
            complete: Duration::from_millis(complete),
            outcome,
            earlier: Vec::new(),
        }
    }

    /// An exactly-once append of client `client` with `seq`, sent `attempts` times (each earlier
    /// attempt timed out) and answered as `append` says.
    fn once(
        client: usize,
        seq: u64,
        value: &str,
        at: (u64, u64),
        answer: Option<&[&str]>,
        attempts: usize,
    ) -> Record {
        let mut record = append(client, value, at, answer);
        record.command.client_id = Some(format!("c{client}"));
        record.command.seq = Some(seq);
        record.earlier = vec![(1, Unknown::NoAnswer(NoAnswer::Timeout)); attempts - 1];
        record
    }

    fn lists(list: &[&str]) -> HashMap<String, Vec<String>> {
        HashMap::from([(
            "k".to_owned(),
            list.iter().map(|v| (*v).to_owned()).collect(),
        )])
    }

    fn finals(list: &[&str]) -> HashMap<String, Option<Value>> {
        let list = list.iter().map(|v| (*v).to_owned()).collect();
        HashMap::from([("k".to_owned(), Some(Value::List(list)))])
    }

    #[test]
    fn a_consistent_history_is_clean() {
        let records = [
            append(0, "a", (0, 10), Some(&["a"])),
            append(1, "b", (5, 20), Some(&["a", "b"])),
            append(2, "u", (6, 30), None),
            get((40, 50), Some(&["a", "b", "u"])),
        ];
        let verdict = judge(&records, &finals(&["a", "b", "u"]));
        assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
        assert_eq!((verdict.keys, verdict.keys_checked()), (1, 1));
    }

    #[test]
    fn a_retried_append_is_one_operation_that_may_apply_during_any_attempt() {
        // c1's append went out at 0, timed out twice, and its third attempt was answered at 90
        // with the list as of its one application, which came before b's (answered at 30).
        let records = [
            once(1, 1, "a", (0, 90), Some(&["a"]), 3),
            append(0, "b", (20, 30), Some(&["a", "b"])),
            once(2, 1, "u", (25, 95), None, 4),
            get((100, 110), Some(&["a", "b", "u"])),
        ];
        let verdict = judge(&records, &finals(&["a", "b", "u"]));
        assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
        let ops = &history::by_key(&records)["k"];
        assert_eq!((ops[0].attempts, ops[2].attempts), (3, 4));
    }

    #[test]
    fn the_exactly_once_check_finds_a_duplicate_and_a_lost_acknowledged_append() {
        let records = [
            once(1, 1, "a", (0, 90), Some(&["a"]), 3),
            once(1, 2, "b", (100, 110), Some(&["a", "b"]), 1),
            once(2, 1, "u", (5, 95), None, 4),
        ];
        assert_eq!(
            exactly_once(&records, &lists(&["a", "b"])),
            Vec::<String>::new()
        );
        assert_eq!(
            exactly_once(&records, &lists(&["a", "b", "u"])),
            Vec::<String>::new()
        );
        // The retried `a` applied twice: once per attempt that reached the log.
        assert_eq!(
            exactly_once(&records, &lists(&["a", "a", "b"])),
            [
                "key k: append(a) of client_id c1 seq 1, sent 3 time(s), acknowledged, appears 2 \
              time(s) in the final list"
            ]
        );
        // An acknowledged append lost.
        assert_eq!(
            exactly_once(&records, &lists(&["b"])),
            [
                "key k: append(a) of client_id c1 seq 1, sent 3 time(s), acknowledged, appears 0 \
              time(s) in the final list"
            ]
        );
        // One whose outcome stayed unknown may have applied, but once at most.
        assert_eq!(
            exactly_once(&records, &lists(&["a", "u", "b", "u"])),
            [
                "key k: append(u) of client_id c2 seq 1, sent 4 time(s), outcome unknown, appears \
              2 time(s) in the final list"
            ]
        );
    }

    #[test]
    fn the_verdict_reports_a_duplicated_retry() {
        let records = [
            once(1, 1, "a", (0, 90), Some(&["a"]), 3),
            once(1, 2, "b", (100, 110), Some(&["a", "b"]), 1),
        ];
        let verdict = judge(&records, &finals(&["a", "b", "a"]));
        let has = |check: &str| verdict.violations.iter().any(|v| v.starts_with(check));
        assert!(
            has("exactly-once: key k: append(a)"),
            "{:?}",
            verdict.violations
        );
        assert!(has("appends: key k: value a appears twice"));
        assert_eq!(verdict.status(), Status::Violation);
    }

    #[test]
    fn a_key_without_a_final_read_is_not_checked() {
        let records = [append(0, "a", (0, 10), Some(&["a"]))];
        let verdict = judge(&records, &HashMap::new());
        assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
        assert_eq!(verdict.keys_checked(), 0);
        assert_eq!(verdict.unchecked, ["k (no final read)"]);
    }

    #[test]
    fn a_violation_outranks_the_floors_and_a_floor_outranks_clean() {
        let records = [append(0, "a", (0, 10), Some(&["a"]))];
        let mut verdict = judge(&records, &finals(&["a"]));
        let figures = Figures {
            run: Duration::from_secs(30),
            ..Figures::default()
        };
        verdict.floors = floors::floors(&figures, verdict.keys, verdict.keys_checked());
        assert_eq!(verdict.status(), Status::Inconclusive);
        verdict.add("members", ["member 0 exited by itself".to_owned()]);
        assert_eq!(verdict.status(), Status::Violation);
        verdict.violations.clear();
        verdict.floors.retain(Floor::met);
        assert_eq!(verdict.status(), Status::Clean);
    }

    #[test]
    fn a_lost_acknowledged_append_fails_both_checks() {
        let records = [
            append(0, "a", (0, 10), Some(&["a"])),
            append(1, "b", (20, 30), Some(&["a", "b"])),
            get((40, 50), Some(&["a"])),
        ];
        let verdict = judge(&records, &finals(&["a"]));
        let has = |check: &str| verdict.violations.iter().any(|v| v.starts_with(check));
        assert!(has("linearizability: key `k`"), "{:?}", verdict.violations);
        assert!(has("appends: key k: acknowledged value b is missing"));
    }

    #[test]
    fn a_stale_read_is_not_linearizable() {
        let records = [append(0, "a", (0, 10), Some(&["a"])), get((20, 30), None)];
        let verdict = judge(&records, &finals(&["a"]));
        assert_eq!(verdict.violations.len(), 1, "{:?}", verdict.violations);
        assert!(verdict.violations[0].starts_with("linearizability"));
    }

    #[test]
    fn an_answer_outside_the_contract_is_a_violation() {
        let records = [record(
            0,
            Op::Get { key: "k".into() },
            (0, 10),
            Outcome::Unexpected("500 oops".into()),
        )];
        let verdict = judge(&records, &HashMap::new());
        assert!(verdict.violations[0].starts_with("answers: member 0 answered"));
    }
}
