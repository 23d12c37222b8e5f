//! A linearizability checker for the key-value history (Wing & Gong's search with Lowe's
//! memoization).
//!
//! A history is linearizable when every operation can be given a point between its invocation
//! and its completion such that, run one after another in that order, a single sequential
//! key-value store gives every completed operation the answer its client saw. An operation whose
//! outcome is unknown has no completion: it may take effect at any point after its invocation,
//! or never.
//!
//! The search builds the order one operation at a time. The next operation may be any one not yet
//! placed that was invoked before the earliest completion among the completed operations not yet
//! placed (otherwise that one would come after something that started after it ended). It
//! backtracks when nothing fits, and it remembers every (set of placed operations, model state)
//! it has already explored, which turns the exponential search into one bounded by the number of
//! distinct configurations (Lowe, "Testing for linearizability", 2017).
//!
//! Every operation touches one key, and linearizability is compositional, so each key is checked
//! on its own, which keeps the sets small.
//!
//! The model is the one in `kv.rs`, answers compared without their slot `index` (the model has
//! no log). Exactly-once sessions need no modelling: a retried command is one operation here,
//! and the store answers a retry with the first answer.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use super::history::OpRecord;
use crate::{Answer, Op, Time, Value};

/// The search gives up after exploring this many configurations of one key, rather than run for
/// hours; the workload is sized so that this never happens.
const MAX_CONFIGURATIONS: usize = 2_000_000;

/// Checks every key's history; returns one sentence per key that is not linearizable.
pub fn check(ops: &[OpRecord]) -> Vec<String> {
    let mut keys: std::collections::BTreeMap<&str, Vec<&OpRecord>> = Default::default();
    // A serializable read may be stale by design: it promises no place in the order.
    for op in ops.iter().filter(|op| !op.command.is_serializable_read()) {
        keys.entry(op.key()).or_default().push(op);
    }
    keys.into_iter()
        .filter_map(|(key, ops)| check_key(&ops).err().map(|e| format!("key `{key}`: {e}")))
        .collect()
}

/// A key's value with its strings interned, so states are cheap to clone, hash and compare.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum State {
    Absent,
    Str(u32),
    List(Vec<u32>),
}

#[derive(Clone, Debug)]
enum ModelOp {
    Get,
    Put(u32),
    Delete,
    Cas { expected: Option<u32>, value: u32 },
    Append(u32),
}

/// An answer without its slot index.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ModelAnswer {
    Done(State),
    Mismatch(State),
    Rejected,
}

#[derive(Debug)]
struct Interner<'a> {
    ids: HashMap<&'a str, u32>,
    names: Vec<&'a str>,
}

impl<'a> Interner<'a> {
    fn id(&mut self, s: &'a str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(s);
        self.ids.insert(s, id);
        id
    }

    fn state(&mut self, value: &'a Option<Value>) -> State {
        match value {
            None => State::Absent,
            Some(Value::Str(s)) => State::Str(self.id(s)),
            Some(Value::List(items)) => State::List(items.iter().map(|s| self.id(s)).collect()),
        }
    }

    fn show(&self, state: &State) -> String {
        match state {
            State::Absent => "null".to_owned(),
            State::Str(s) => format!("{:?}", self.names[*s as usize]),
            State::List(items) => {
                let items: Vec<&str> = items.iter().map(|s| self.names[*s as usize]).collect();
                format!("{items:?}")
            }
        }
    }
}

/// Applies `op` to `state` as `KvStore::apply_op` does; returns the new state and the answer.
fn step(state: &State, op: &ModelOp) -> (State, ModelAnswer) {
    match op {
        ModelOp::Get => (state.clone(), ModelAnswer::Done(state.clone())),
        ModelOp::Put(v) => (State::Str(*v), ModelAnswer::Done(State::Str(*v))),
        ModelOp::Delete => (State::Absent, ModelAnswer::Done(State::Absent)),
        ModelOp::Cas { expected, value } => {
            let matches = match (state, expected) {
                (State::Absent, None) => true,
                (State::Str(now), Some(want)) => now == want,
                _ => false,
            };
            if matches {
                (State::Str(*value), ModelAnswer::Done(State::Str(*value)))
            } else {
                (state.clone(), ModelAnswer::Mismatch(state.clone()))
            }
        }
        ModelOp::Append(v) => match state {
            State::Absent => {
                let list = State::List(vec![*v]);
                (list.clone(), ModelAnswer::Done(list))
            }
            State::List(items) => {
                let mut items = items.clone();
                items.push(*v);
                let list = State::List(items);
                (list.clone(), ModelAnswer::Done(list))
            }
            State::Str(_) => (state.clone(), ModelAnswer::Rejected),
        },
    }
}

#[derive(Debug)]
struct LinOp<'a> {
    record: &'a OpRecord,
    op: ModelOp,
    invoke: Time,
    /// `None` for an operation whose outcome is unknown.
    complete: Option<Time>,
    outcome: Option<ModelAnswer>,
}

/// Checks the operations of one key.
fn check_key(records: &[&OpRecord]) -> Result<(), String> {
    let mut names = Interner {
        ids: HashMap::new(),
        names: Vec::new(),
    };
    let mut ops: Vec<LinOp> = Vec::new();
    for &record in records {
        // A read whose answer nobody saw constrains nothing.
        if record.completion.is_none() && !record.command.op.is_write() {
            continue;
        }
        let op = match &record.command.op {
            Op::Get { .. } => ModelOp::Get,
            Op::Put { value, .. } => ModelOp::Put(names.id(value)),
            Op::Delete { .. } => ModelOp::Delete,
            Op::Cas {
                expected, value, ..
            } => ModelOp::Cas {
                expected: expected.as_deref().map(|e| names.id(e)),
                value: names.id(value),
            },
            Op::Append { value, .. } => ModelOp::Append(names.id(value)),
        };
        // A command refused before it ran tells nothing of its outcome.
        let outcome = record.answer().and_then(|answer| match answer {
            Answer::Done { value, .. } => Some(ModelAnswer::Done(names.state(value))),
            Answer::Mismatch { value, .. } => Some(ModelAnswer::Mismatch(names.state(value))),
            Answer::Rejected { .. } => Some(ModelAnswer::Rejected),
            Answer::Overloaded { .. } => None,
        });
        ops.push(LinOp {
            record,
            op,
            invoke: record.invoke,
            complete: record.completed_at(),
            outcome,
        });
    }
    let unique = tighten(&mut ops);
    let order_of_list = if unique {
        list_order(&ops, &names)?
    } else {
        None
    };
    // Whether a state can lie on the way to the list every answer is a prefix of.
    let viable = |state: &State| match (state, &order_of_list) {
        (State::List(items), Some(order)) => order.starts_with(items),
        _ => true,
    };
    // For a register with distinct written values, after `tighten`: a write whose outcome is
    // unknown is there because some answer saw its value, and nothing can see that value once
    // another write replaced it. So the operation right after it must be a read of it, a get or
    // a cas; a blind write there would leave the value unseen. Without this, the search tries
    // every subset and order of the pending unknown writes.
    let register = unique && ops.iter().all(|op| !matches!(op.op, ModelOp::Append(_)));
    let blind_unknown =
        |op: &LinOp| op.outcome.is_none() && matches!(op.op, ModelOp::Put(_) | ModelOp::Cas { .. });
    let reads =
        |op: &LinOp| op.outcome.is_some() && matches!(op.op, ModelOp::Get | ModelOp::Cas { .. });
    ops.sort_by_key(|op| op.invoke);
    let n = ops.len();
    let mut by_completion: Vec<usize> = (0..n).filter(|&i| ops[i].complete.is_some()).collect();
    by_completion.sort_by_key(|&i| ops[i].complete);

    let mut placed = vec![0u64; n.div_ceil(64)];
    let is_placed = |placed: &[u64], i: usize| placed[i / 64] & (1 << (i % 64)) != 0;
    let mut state = State::Absent;
    // The placed operations in order, each with the state before it.
    let mut order: Vec<(usize, State)> = Vec::new();
    let mut unplaced_completed = by_completion.len();
    let mut seen: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut deepest: (usize, Vec<usize>, State) = (0, Vec::new(), State::Absent);
    // Where to resume the scan for candidates at the current depth.
    let mut cursor = 0;
    loop {
        if unplaced_completed == 0 {
            return Ok(());
        }
        let first_unplaced = *by_completion
            .iter()
            .find(|&&i| !is_placed(&placed, i))
            .expect("some completed op is unplaced");
        let bound = ops[first_unplaced].complete.expect("completed");
        let mut next = None;
        let after_unknown_write =
            register && order.last().is_some_and(|&(i, _)| blind_unknown(&ops[i]));
        for i in cursor..n {
            if ops[i].invoke > bound {
                break;
            }
            if is_placed(&placed, i) || after_unknown_write && !reads(&ops[i]) {
                continue;
            }
            let (after, outcome) = step(&state, &ops[i].op);
            if ops[i].outcome.as_ref().is_some_and(|seen| *seen != outcome) || !viable(&after) {
                continue;
            }
            placed[i / 64] |= 1 << (i % 64);
            if seen.insert((placed.clone(), after.clone())) {
                next = Some((i, after));
                break;
            }
            placed[i / 64] &= !(1 << (i % 64));
        }
        if seen.len() > MAX_CONFIGURATIONS {
            return Err(format!(
                "gave up after {MAX_CONFIGURATIONS} configurations of {n} operations \
                 (inconclusive: make the workload smaller)"
            ));
        }
        match next {
            Some((i, after)) => {
                order.push((i, std::mem::replace(&mut state, after)));
                if ops[i].complete.is_some() {
                    unplaced_completed -= 1;
                }
                if order.len() > deepest.0 {
                    deepest = (
                        order.len(),
                        order.iter().map(|(i, _)| *i).collect(),
                        state.clone(),
                    );
                }
                cursor = 0;
            }
            None => {
                let Some((i, before)) = order.pop() else {
                    return Err(explain(&ops, &names, &deepest));
                };
                state = before;
                placed[i / 64] &= !(1 << (i % 64));
                if ops[i].complete.is_some() {
                    unplaced_completed += 1;
                }
                cursor = i + 1;
            }
        }
    }
}

/// Narrows the writes whose outcome is unknown, when every write of the key writes a distinct
/// value (the simulator's workload does), without changing whether the history is linearizable.
///
/// Such a write of `v` is the only way `v` gets into the key. If no completed operation ever saw
/// `v`, the write may as well never have applied, so it is dropped: applying it could only put
/// an unseen value in front of the readers (for a key that takes appends, where a string and a
/// list answer an append differently, only appends are dropped). If some completed operation saw
/// `v`, the write applied before that operation took effect, hence before it completed: that
/// completion becomes the write's own. Without this, each unknown write could be placed anywhere
/// or nowhere, and a few dozen of them make the search explode.
fn tighten(ops: &mut Vec<LinOp>) -> bool {
    let written = |op: &ModelOp| match op {
        ModelOp::Put(v) | ModelOp::Append(v) | ModelOp::Cas { value: v, .. } => Some(*v),
        ModelOp::Get | ModelOp::Delete => None,
    };
    let mut values: Vec<u32> = ops.iter().filter_map(|op| written(&op.op)).collect();
    let total = values.len();
    values.sort_unstable();
    values.dedup();
    if values.len() != total {
        return false;
    }
    let mut seen_by: HashMap<u32, Time> = HashMap::new();
    for op in ops.iter() {
        let (Some(outcome), Some(complete)) = (&op.outcome, op.complete) else {
            continue;
        };
        let mut saw = |v: u32| {
            let at = seen_by.entry(v).or_insert(complete);
            *at = (*at).min(complete);
        };
        match outcome {
            ModelAnswer::Done(state) | ModelAnswer::Mismatch(state) => match state {
                State::Str(v) => saw(*v),
                State::List(items) => items.iter().copied().for_each(&mut saw),
                State::Absent => {}
            },
            ModelAnswer::Rejected => {}
        }
        if let (
            ModelOp::Cas {
                expected: Some(e), ..
            },
            ModelAnswer::Done(_),
        ) = (&op.op, outcome)
        {
            saw(*e);
        }
    }
    let has_appends = ops.iter().any(|op| matches!(op.op, ModelOp::Append(_)));
    ops.retain_mut(|op| {
        if op.complete.is_some() {
            return true;
        }
        let Some(v) = written(&op.op) else {
            return true;
        };
        match seen_by.get(&v) {
            Some(&at) => {
                op.complete = Some(at.max(op.invoke));
                true
            }
            None => !matches!(op.op, ModelOp::Append(_)) && has_appends,
        }
    });
    true
}

/// For a key that only takes appends and reads, with distinct appended values, after
/// [`tighten`]: the list every state of a linearization must be a prefix of.
///
/// Such a list only grows at its end, so every list an answer reports is a prefix of the final
/// list, and so is every state on the way; after `tighten`, every applied value shows up in some
/// answer, so the longest answer is that final list as far as anyone can tell. Placing an append
/// anywhere but at its position in that list leads nowhere, and refusing it at once keeps the
/// search from trying every order of the appends whose outcome is unknown (a factorial).
/// Answers that are not prefixes of one another are a violation in themselves.
fn list_order(ops: &[LinOp], names: &Interner) -> Result<Option<Vec<u32>>, String> {
    if !ops
        .iter()
        .all(|op| matches!(op.op, ModelOp::Append(_) | ModelOp::Get))
    {
        return Ok(None);
    }
    let mut lists: Vec<(&[u32], &LinOp)> = Vec::new();
    for op in ops {
        match &op.outcome {
            Some(ModelAnswer::Done(State::List(items))) => lists.push((items, op)),
            Some(ModelAnswer::Done(State::Absent)) => lists.push((&[], op)),
            // Anything else is an answer the model never gives here; the search will say so.
            _ => {}
        }
    }
    let Some(&(longest, longest_op)) = lists.iter().max_by_key(|(items, _)| items.len()) else {
        return Ok(None);
    };
    for &(items, op) in &lists {
        if !longest.starts_with(items) {
            return Err(format!(
                "not linearizable: two answers saw lists of which neither extends the other, \
                 but appends only ever extend a list:\n      {}\n      {}\n      (as lists: \
                 {} and {})",
                op.record,
                longest_op.record,
                names.show(&State::List(items.to_vec())),
                names.show(&State::List(longest.to_vec())),
            ));
        }
    }
    Ok(Some(longest.to_vec()))
}

/// Describes the longest linearizable prefix found and the operations that could not follow it.
fn explain(ops: &[LinOp], names: &Interner, deepest: &(usize, Vec<usize>, State)) -> String {
    let (depth, prefix, state) = deepest;
    let mut text = format!(
        "not linearizable ({} operations, {} completed); the longest linearizable prefix has \
         {depth} operations and leaves the value {}",
        ops.len(),
        ops.iter().filter(|op| op.complete.is_some()).count(),
        names.show(state)
    );
    let placed: HashSet<usize> = prefix.iter().copied().collect();
    for &i in &prefix[prefix.len().saturating_sub(3)..] {
        let _ = write!(text, "\n      placed: {}", ops[i].record);
    }
    let bound = ops
        .iter()
        .enumerate()
        .filter(|(i, op)| !placed.contains(i) && op.complete.is_some())
        .filter_map(|(_, op)| op.complete)
        .min();
    for (i, op) in ops.iter().enumerate() {
        if placed.contains(&i) || bound.is_some_and(|b| op.invoke > b) {
            continue;
        }
        let (_, outcome) = step(state, &op.op);
        let expected = match outcome {
            ModelAnswer::Done(s) => format!("ok {}", names.show(&s)),
            ModelAnswer::Mismatch(s) => format!("mismatch {}", names.show(&s)),
            ModelAnswer::Rejected => "rejected".to_owned(),
        };
        let _ = write!(
            text,
            "\n      cannot follow: {} (the model would answer {expected})",
            op.record
        );
    }
    text
}

#[cfg(test)]
mod tests;
