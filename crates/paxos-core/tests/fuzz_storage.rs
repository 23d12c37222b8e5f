//! Fuzzing [`storage::replay`], which reads a data dir's log file at every start.
//!
//! Properties: no input panics it; what it keeps is a prefix of whole frames that replays to the
//! same result again (so truncating the file there, as the runtime does, changes nothing on the
//! next start); a valid log cut anywhere replays to exactly the whole frames before the cut;
//! damage to one frame is refused, naming that frame's offset, when whole frames follow it, and
//! when it is the last frame, either refused the same way or dropped like a torn tail; a record
//! holding a ballot past `MAX_ROUND` is refused, naming its offset, wherever it is.

mod fuzz_support;
#[path = "fuzz_support/wire.rs"]
#[allow(dead_code)] // This target builds records; it has no use for messages.
mod wire;

use paxos_core::message::MAX_ROUND;
use paxos_core::storage::{self, Durable, Record, ReplayError};
use paxos_core::{Ballot, LogValue};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

#[test]
fn every_kind_of_record_is_fuzzed() {
    wire::assert_makes_every_kind(
        wire::record(wire::Slots::Any),
        wire::RECORD_KINDS,
        wire::record_kind,
    );
}

/// A log of records, as frames, with where each frame starts (and, last, the end).
fn log() -> impl Strategy<Value = (Vec<Record>, Vec<u8>, Vec<usize>)> {
    vec(wire::record(wire::Slots::Any), 1..8).prop_map(|records| {
        let mut bytes = Vec::new();
        let mut starts = vec![0];
        for record in &records {
            bytes.extend(storage::encode(record));
            starts.push(bytes.len());
        }
        (records, bytes, starts)
    })
}

fn fold(records: &[Record]) -> Durable {
    let mut state = Durable::default();
    for record in records {
        state.apply(record.clone());
    }
    state
}

proptest! {
    #![proptest_config(fuzz_support::config(512))]

    #[test]
    fn arbitrary_bytes(bytes in vec(any::<u8>(), 0..256)) {
        if let Ok(replayed) = storage::replay(&bytes) {
            let kept = usize::try_from(replayed.valid_len).unwrap();
            prop_assert!(kept <= bytes.len());
            let again = storage::replay(&bytes[..kept]).expect("the kept prefix replays");
            prop_assert_eq!(again.valid_len, replayed.valid_len);
            prop_assert_eq!(again.state, replayed.state);
        }
    }

    #[test]
    fn a_valid_log_replays_whole((records, bytes, _) in log()) {
        let replayed = storage::replay(&bytes).expect("a valid log replays");
        prop_assert_eq!(replayed.valid_len, bytes.len() as u64);
        prop_assert_eq!(replayed.state, fold(&records));
    }

    /// A data dir from before ballots were bounded may hold one past the cap, in a promise or
    /// an acceptance; replay refuses it, naming its record, wherever it is.
    #[test]
    fn a_ballot_past_the_cap_is_refused(
        (records, _, _) in log(),
        at in any::<Index>(),
        round in MAX_ROUND + 1..=u64::MAX,
        accepted in any::<bool>(),
    ) {
        let ballot = Ballot { round, member: 0 };
        let past = if accepted {
            Record::Accepted { slot: 1, ballot, value: LogValue::Noop }
        } else {
            Record::Promise { ballot }
        };
        let at = at.index(records.len() + 1);
        let before = storage::encode_all(&records[..at]);
        let mut bytes = before.clone();
        bytes.extend(storage::encode(&past));
        bytes.extend(storage::encode_all(&records[at..]));
        let refused = storage::replay(&bytes).map(|r| r.valid_len);
        let expected = ReplayError::BallotPastMaxRound { offset: before.len() as u64, ballot };
        prop_assert_eq!(refused, Err(expected));
    }

    #[test]
    fn a_cut_drops_the_torn_frame((records, bytes, starts) in log(), cut in any::<Index>()) {
        let cut = cut.index(bytes.len() + 1);
        let replayed = storage::replay(&bytes[..cut]).expect("a cut log replays");
        let whole = starts.iter().rposition(|&start| start <= cut).unwrap();
        prop_assert_eq!(replayed.valid_len, starts[whole] as u64);
        prop_assert_eq!(replayed.state, fold(&records[..whole]));
    }

    #[test]
    fn a_partial_garbage_frame_at_the_end_is_dropped(
        (records, bytes, _) in log(),
        garbage in vec(any::<u8>(), 1..8),
    ) {
        // Fewer than a header's 8 bytes: whatever they say, they cannot be a whole frame.
        let mut torn = bytes.clone();
        torn.extend(&garbage);
        let replayed = storage::replay(&torn).expect("a log with a partial frame at its end replays");
        prop_assert_eq!(replayed.valid_len, bytes.len() as u64);
        prop_assert_eq!(replayed.state, fold(&records));
    }

    #[test]
    fn damage_is_refused_or_dropped_at_the_tail(
        (records, bytes, starts) in log(),
        frame in any::<Index>(),
        flips in vec((any::<Index>(), 1u8..), 1..4),
    ) {
        let frame = frame.index(records.len());
        let (start, end) = (starts[frame], starts[frame + 1]);
        let mut damaged = bytes.clone();
        for (at, mask) in &flips {
            damaged[start + at.index(end - start)] ^= mask;
        }
        // Flips at one place can cancel out; what is left to check is then the undamaged log.
        prop_assume!(damaged != bytes);
        let last = frame + 1 == records.len();
        match storage::replay(&damaged) {
            Err(ReplayError::BallotPastMaxRound { offset, ballot }) => {
                prop_assert!(false, "ballot {} at byte offset {} was never written", ballot, offset);
            }
            Err(ReplayError::Corrupt(corruption)) => {
                prop_assert_eq!(corruption.offset, start as u64);
                let names_it = format!("byte offset {start}");
                prop_assert!(corruption.to_string().contains(&names_it), "{}", corruption);
            }
            Ok(replayed) => {
                prop_assert!(last, "damage in frame {} of {} with whole frames after it was taken", frame, records.len());
                prop_assert_eq!(replayed.valid_len, start as u64);
                prop_assert_eq!(replayed.state, fold(&records[..frame]));
            }
        }
    }
}
