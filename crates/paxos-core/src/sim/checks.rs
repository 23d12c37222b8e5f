//! The checkers other than linearizability: agreement, convergence, exactly-once and liveness.
//! Each returns one sentence per violation, empty when all is well.

use std::collections::BTreeMap;
use std::time::Duration;

use super::cluster::Cluster;
use crate::check::History;
use crate::message::{LogValue, Slot};
use crate::{Answer, Op, Time, Value};

/// No slot is decided with two different values, on any two members or incarnations.
pub fn agreement(cluster: &Cluster) -> Vec<String> {
    let mut first: BTreeMap<Slot, (String, &LogValue)> = BTreeMap::new();
    let mut conflicts: BTreeMap<Slot, String> = BTreeMap::new();
    for (m, member) in cluster.members.iter().enumerate() {
        let logs = member
            .past_decided
            .iter()
            .enumerate()
            .map(|(i, log)| (format!("member {m} (incarnation {i})"), log))
            .chain(
                member
                    .node
                    .as_ref()
                    .map(|node| (format!("member {m}"), node.learned())),
            );
        for (who, log) in logs {
            for (slot, value) in log {
                match first.get(slot) {
                    None => {
                        first.insert(*slot, (who.clone(), value));
                    }
                    Some((other, decided)) if *decided != value => {
                        conflicts.entry(*slot).or_insert_with(|| {
                            format!(
                                "agreement: slot {slot} decided as {} on {other} but as {} on \
                                 {who}",
                                show(decided),
                                show(value)
                            )
                        });
                    }
                    Some(_) => {}
                }
            }
        }
    }
    conflicts.into_values().collect()
}

/// Keeps the first `n` lines of a checker's findings, and says how many more there were.
pub fn capped(mut lines: Vec<String>, n: usize) -> Vec<String> {
    if lines.len() > n {
        let more = lines.len() - n;
        lines.truncate(n);
        lines.push(format!("... and {more} more like these"));
    }
    lines
}

fn show(value: &LogValue) -> String {
    serde_json::to_string(value).expect("log values serialize")
}

/// Every member is up, has applied the same prefix of the log, and holds the same store.
pub fn converged(cluster: &Cluster, keys: &[&str]) -> Option<String> {
    let mut reference: Option<(usize, u64, Vec<Option<&Value>>)> = None;
    for (m, member) in cluster.members.iter().enumerate() {
        let Some(node) = &member.node else {
            return Some(format!("member {m} is down"));
        };
        let commit = node.status().commit_index;
        let values: Vec<Option<&Value>> = keys.iter().map(|k| node.store().peek(k)).collect();
        match &reference {
            None => reference = Some((m, commit, values)),
            Some((first, c, v)) => {
                if *c != commit || *v != values {
                    return Some(format!(
                        "member {first} applied up to slot {c} and holds {v:?}, \
                         member {m} applied up to slot {commit} and holds {values:?}"
                    ));
                }
            }
        }
    }
    None
}

/// In the final lists, every acknowledged append appears exactly once, every append whose outcome
/// is unknown at most once, and nothing appears that nobody appended.
pub fn exactly_once(history: &History, cluster: &Cluster, list_keys: &[&str]) -> Vec<String> {
    let mut violations = Vec::new();
    let Some(node) = cluster.members.iter().find_map(|m| m.node.as_ref()) else {
        return vec!["exactly-once: no member is up to read the final state from".to_owned()];
    };
    for &key in list_keys {
        let items: Vec<String> = match node.store().peek(key) {
            None => Vec::new(),
            Some(Value::List(items)) => items.clone(),
            Some(Value::Str(s)) => {
                violations.push(format!(
                    "exactly-once: list key `{key}` holds the string {s:?}"
                ));
                continue;
            }
        };
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for item in &items {
            *count.entry(item).or_default() += 1;
        }
        let mut appended: BTreeMap<&str, bool> = BTreeMap::new();
        for op in &history.ops {
            if let Op::Append { key: k, value } = &op.command.op
                && k == key
            {
                let acked = matches!(op.answer(), Some(Answer::Done { .. }));
                appended.insert(value, acked);
            }
        }
        for (value, n) in &count {
            if *n > 1 {
                violations.push(format!(
                    "exactly-once: `{key}` holds {value:?} {n} times (acknowledged: {})",
                    appended.get(value).copied().unwrap_or(false)
                ));
            }
            if !appended.contains_key(value) {
                violations.push(format!(
                    "exactly-once: `{key}` holds {value:?}, never appended"
                ));
            }
        }
        for (value, acked) in &appended {
            if *acked && !count.contains_key(value) {
                violations.push(format!(
                    "exactly-once: the acknowledged append of {value:?} to `{key}` is missing"
                ));
            }
        }
    }
    violations
}

/// Every exactly-once operation, and every final read, completes within `bound` of the later of
/// its invocation and the healing: after healing, every command gets through, retries included.
/// Probes are the clients numbered `first_probe` and up.
pub fn liveness(
    history: &History,
    first_probe: usize,
    healed_at: Time,
    bound: Duration,
    end: Time,
) -> Vec<String> {
    let mut violations = Vec::new();
    for op in &history.ops {
        if op.command.client_id.is_none() && op.client < first_probe {
            continue;
        }
        let from = op.invoke.max(healed_at);
        match op.completed_at() {
            Some(at) if at.saturating_sub(from) <= bound => {}
            Some(at) => violations.push(format!(
                "liveness: took {:?} after healing (bound {bound:?}): {op}",
                at - from
            )),
            None => violations.push(format!(
                "liveness: never completed (run ended {:?} after healing): {op}",
                end - healed_at
            )),
        }
    }
    violations
}

/// After healing, in a quiet stretch (no election started from `settle` before a command was
/// invoked to the end of the run), nothing excuses a lost command: every command, plain or
/// exactly-once, must be answered on its first attempt, before its client gives up or, for a
/// slow member (one still catching up, say), at least after. This catches a member that drops
/// requests in a steady state, which the retries of exactly-once clients would otherwise hide.
/// `elections` are the times elections started, in order.
pub fn quiet_liveness(
    history: &History,
    first_probe: usize,
    healed_at: Time,
    elections: &[Time],
    settle: Duration,
    client_timeout: Duration,
) -> Vec<String> {
    let mut violations = Vec::new();
    for op in history.ops.iter().filter(|op| op.client < first_probe) {
        if op.invoke < healed_at + settle {
            continue;
        }
        let first_after = elections.partition_point(|&at| at + settle < op.invoke);
        if first_after < elections.len() {
            continue;
        }
        let gives_up = op.invoke + client_timeout;
        let in_time = op.completed_at().is_some_and(|at| at <= gives_up);
        if !in_time && op.late_answer.is_none() {
            violations.push(format!(
                "liveness: lost, with no election from {settle:?} before it to the end, {:?} \
                 after healing: {op}",
                op.invoke - healed_at
            ));
        }
    }
    violations
}

/// Each checker, fed a history or a cluster that breaks its rule, must say so: a checker that
/// passes everything would let the simulator pass a broken protocol.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{LogValue, Request, RequestId};
    use crate::rng::Rng;
    use crate::sim::cluster::Sabotage;
    use crate::{Command, Record, Tuning, storage};

    const SECOND: Duration = Duration::from_secs(1);

    fn append(value: &str) -> Command {
        Command::new(Op::Append {
            key: "x".into(),
            value: value.into(),
        })
    }

    /// A cluster of `disks.len()` members, each started from a log file holding the decided
    /// slots `1, 2, …` with these commands, as a runtime restarts them.
    fn cluster(disks: &[&[Command]]) -> Cluster {
        let mut cluster = Cluster::new(disks.len(), Tuning::default(), Sabotage::None);
        for (m, commands) in disks.iter().enumerate() {
            let records: Vec<Record> = commands
                .iter()
                .enumerate()
                .map(|(i, command)| Record::Decided {
                    slot: i as Slot + 1,
                    value: LogValue::Request(Request {
                        id: RequestId {
                            member: m,
                            incarnation: 1,
                            n: i as u64 + 1,
                        },
                        floor: 0,
                        command: command.clone(),
                    }),
                })
                .collect();
            cluster.members[m].disk = storage::encode_all(&records);
            cluster
                .start(m, &mut Rng::new(m as u64), Time::ZERO)
                .expect("the disk replays");
        }
        cluster
    }

    /// A history of one client's operations: (command, answered at, answer).
    fn history(ops: Vec<(Command, Option<(Time, Answer)>)>) -> History {
        let mut history = History::default();
        for (command, completion) in ops {
            let op = history.invoke(0, command, Time::ZERO);
            if let Some((at, answer)) = completion {
                history.complete(op, at, answer);
            }
        }
        history
    }

    #[test]
    fn exactly_once_reports_a_lost_a_doubled_and_a_made_up_append() {
        let ok = Some((SECOND, Answer::done(None, 1)));
        let history = history(vec![(append("a"), ok.clone()), (append("b"), ok)]);
        // "a" was acknowledged but is not in the list, "b" is there twice, and nobody appended
        // "z".
        let cluster = cluster(&[&[append("b"), append("b"), append("z")]]);
        let found = exactly_once(&history, &cluster, &["x"]);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(
            found
                .iter()
                .any(|v| v.contains("\"a\"") && v.contains("missing"))
        );
        assert!(found.iter().any(|v| v.contains("\"b\" 2 times")));
        assert!(found.iter().any(|v| v.contains("\"z\", never appended")));
        // The same history with the list as it should be passes.
        let cluster = self::cluster(&[&[append("a"), append("b")]]);
        assert_eq!(
            exactly_once(&history, &cluster, &["x"]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn converged_reports_members_that_differ_or_are_down() {
        let mut members = cluster(&[&[append("a")], &[append("a")]]);
        assert_eq!(converged(&members, &["x"]), None);
        let behind = cluster(&[&[append("a")], &[]]);
        let found = converged(&behind, &["x"]).expect("member 1 is behind");
        assert!(found.contains("member 1 applied up to slot 0"), "{found}");
        let other = cluster(&[&[append("a")], &[append("b")]]);
        assert!(
            converged(&other, &["x"]).is_some(),
            "same slot, other value"
        );
        members.crash(1);
        assert_eq!(
            converged(&members, &["x"]).as_deref(),
            Some("member 1 is down")
        );
    }

    #[test]
    fn liveness_reports_a_late_and_a_lost_command() {
        let healed_at = 10 * SECOND;
        let bound = 5 * SECOND;
        let session = |seq| {
            let mut command = append("a");
            command.client_id = Some("c0".into());
            command.seq = Some(seq);
            command
        };
        let history = history(vec![
            // Answered within the bound after healing: fine.
            (session(1), Some((14 * SECOND, Answer::done(None, 1)))),
            // Answered, but 6 seconds after healing.
            (session(2), Some((16 * SECOND, Answer::done(None, 2)))),
            // Never answered.
            (session(3), None),
            // A plain client's command may be lost: it is not checked.
            (append("b"), None),
        ]);
        let found = liveness(&history, 1, healed_at, bound, 40 * SECOND);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found[0].contains("took 6s after healing"), "{}", found[0]);
        assert!(found[1].contains("never completed"), "{}", found[1]);
    }

    #[test]
    fn quiet_liveness_reports_a_command_lost_with_no_election_to_excuse_it() {
        let healed_at = 10 * SECOND;
        let settle = SECOND;
        let timeout = 2 * SECOND;
        let mut history = History::default();
        // Invoked well after healing and settling, never answered, and no election near it.
        let lost = history.invoke(0, append("a"), 20 * SECOND);
        let found = quiet_liveness(&history, 1, healed_at, &[], settle, timeout);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].contains("liveness: lost"), "{}", found[0]);
        // An election from shortly before it on excuses it.
        let excused = quiet_liveness(&history, 1, healed_at, &[20 * SECOND], settle, timeout);
        assert!(excused.is_empty(), "{excused:#?}");
        // So does an answer, however late, to an attempt its client gave up on.
        history.answered_late(lost, 30 * SECOND);
        assert!(quiet_liveness(&history, 1, healed_at, &[], settle, timeout).is_empty());
    }
}
