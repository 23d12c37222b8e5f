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
