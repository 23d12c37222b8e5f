//! Printing a run step by step, for `PAXOS_SIM_TRACE=1`.

/// Prints a line for a step of `$sim`'s run, at its simulated time, when tracing is on.
macro_rules! trace {
    ($sim:expr, $($arg:tt)*) => {
        if $sim.trace {
            eprintln!("{:>12?} {}", $sim.now, format_args!($($arg)*));
        }
    };
}

pub(super) use trace;

/// A message in a line, for traces.
pub(super) fn brief(msg: &crate::Message) -> String {
    use crate::Message::*;
    let slots = |s: &mut dyn Iterator<Item = u64>| {
        let all: Vec<u64> = s.collect();
        match (all.first(), all.last()) {
            (Some(a), Some(b)) => format!("{a}..={b} ({})", all.len()),
            _ => "none".to_owned(),
        }
    };
    match msg {
        Prepare { ballot, from_slot } => format!("prepare {ballot} from {from_slot}"),
        Promise {
            ballot,
            accepted,
            decided,
            snapshot,
        } => format!(
            "promise {ballot} accepted {} decided {}{}",
            slots(&mut accepted.iter().map(|e| e.slot)),
            slots(&mut decided.iter().map(|e| e.slot)),
            snapshot
                .as_ref()
                .map_or(String::new(), |s| format!(" snapshot at {}", s.slot))
        ),
        Accept {
            ballot,
            entries,
            commit,
        } => format!(
            "accept {ballot} {} commit {commit}",
            slots(&mut entries.iter().map(|e| e.slot))
        ),
        Accepted { ballot, slots: s } => {
            format!("accepted {ballot} {}", slots(&mut s.iter().copied()))
        }
        Nack { ballot } => format!("nack {ballot}"),
        Commit {
            ballot,
            commit,
            read: 0,
        } => format!("commit {ballot} {commit}"),
        Commit {
            ballot,
            commit,
            read,
        } => format!("commit {ballot} {commit} read round {read}"),
        CatchUp { from_slot } => format!("catch_up from {from_slot}"),
        Decided { entries, commit } => format!(
            "decided {} commit {commit}",
            slots(&mut entries.iter().map(|e| e.slot))
        ),
        Forward { requests } => format!(
            "forward {:?}",
            requests.iter().map(|r| r.id.n).collect::<Vec<_>>()
        ),
        Snapshot { snapshot } => format!("snapshot at {}", snapshot.slot),
        ReadAck { ballot, read } => format!("read_ack {ballot} round {read}"),
        ReadIndex { id } => format!("read_index {}", id.n),
        ReadIndexOk { id, index } => format!("read_index_ok {} index {index}", id.n),
        ReadIndexRefused { id } => format!("read_index_refused {}", id.n),
    }
}
