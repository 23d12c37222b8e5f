//! The durable record format: what a member writes to its data dir, and how it reads it back.
//!
//! The core never touches a file. It hands the runtime [`Record`]s in
//! [`Ready::persist`](crate::Ready::persist); the runtime appends [`encode`]d frames to one log
//! file and fsyncs before it sends anything else from the same `Ready`. At start-up the runtime
//! reads the file whole and passes it to [`replay`], whose result restarts the node.
//!
//! To keep the file bounded, a node compacts now and then: it asks for the whole file to be
//! replaced ([`Ready::rewrite`](crate::Ready::rewrite)) by a few records that say everything the
//! old ones did, a [`Snapshot`] of the applied state first. The runtime writes them to a new
//! file, fsyncs it and renames it over the old one, so a crash leaves one file or the other.
//!
//! A frame is `len: u32 LE | crc32(payload): u32 LE | payload`, the payload being the record as
//! JSON. A crash can tear only the last frame, so a short or checksum-failing frame at the very
//! end is dropped (and the runtime truncates the file there). A bad frame with good frames after
//! it cannot come from a crash; replay refuses it, naming the offset, rather than serve a log
//! with a hole in it.
//!
//! Replay also refuses a record holding a ballot past [`MAX_ROUND`]. Members never take such a
//! ballot now, but builds from before ballots were bounded did, from one forged or garbled
//! message. Starting from it would leave the member promised to a ballot no election can
//! outbid, so that it nacks every leader for good; and lowering the promise would break the
//! rule that an acceptor never goes back on a promise, so it is not done behind anyone's back.

use std::collections::{BTreeMap, btree_map};

use serde::{Deserialize, Serialize};

use crate::message::{Ballot, LogValue, MAX_ROUND, Slot};
use crate::snapshot::Snapshot;

/// One durable fact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    /// The acceptor promised not to accept below `ballot`.
    Promise { ballot: Ballot },
    /// The acceptor accepted `value` for `slot` at `ballot`.
    #[serde(rename = "accept")]
    Accepted {
        slot: Slot,
        ballot: Ballot,
        value: LogValue,
    },
    /// `value` is decided for `slot`.
    #[serde(rename = "decide")]
    Decided { slot: Slot, value: LogValue },
    /// The value this member accepted for `slot` at `ballot`, in a [`Record::Accepted`] earlier
    /// in the file, is decided. A member that learns a decision it accepted writes this, not
    /// the value a second time.
    #[serde(rename = "decide_accepted")]
    DecidedAccepted { slot: Slot, ballot: Ballot },
    /// The applied state as of `snapshot.slot`, which stands for every slot up to it.
    Snapshot { snapshot: Box<Snapshot> },
    /// The node started as `incarnation`; the next start must use a higher one.
    Incarnation { incarnation: u64 },
}

const HEADER: usize = 8;

/// Frames a record for appending to the log file.
pub fn encode(record: &Record) -> Vec<u8> {
    let payload = serde_json::to_vec(record).expect("records always serialize");
    let len = u32::try_from(payload.len()).expect("a record is far below 4 GiB");
    let mut frame = Vec::with_capacity(HEADER + payload.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    frame.extend_from_slice(&payload);
    frame
}

/// Frames many records into one buffer, for one write and one fsync.
pub fn encode_all(records: &[Record]) -> Vec<u8> {
    records.iter().flat_map(encode).collect()
}

/// Everything a member persisted, folded into the state it restarts from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Durable {
    pub promised: Ballot,
    /// The latest acceptance per slot.
    pub accepted: BTreeMap<Slot, (Ballot, LogValue)>,
    /// Decided values after the snapshot's slot.
    pub decided: BTreeMap<Slot, LogValue>,
    pub snapshot: Option<Box<Snapshot>>,
    /// The highest incarnation recorded.
    pub incarnation: u64,
}

impl Durable {
    /// Folds one record in, in log order.
    pub fn apply(&mut self, record: Record) {
        match record {
            Record::Promise { ballot } => self.promised = self.promised.max(ballot),
            Record::Accepted {
                slot,
                ballot,
                value,
            } => {
                self.promised = self.promised.max(ballot);
                if self.snapshot.as_ref().is_none_or(|s| slot > s.slot) {
                    self.accepted.insert(slot, (ballot, value));
                }
            }
            Record::Decided { slot, value } => {
                if self.snapshot.as_ref().is_none_or(|s| slot > s.slot) {
                    self.decided.insert(slot, value);
                }
            }
            // No member writes one without the acceptance it names before it, after any
            // snapshot that covers the slot; one that names none is passed over.
            Record::DecidedAccepted { slot, ballot } => {
                if let btree_map::Entry::Occupied(acceptance) = self.accepted.entry(slot)
                    && acceptance.get().0 == ballot
                {
                    let (_, value) = acceptance.remove();
                    self.decided.insert(slot, value);
                }
            }
            Record::Snapshot { snapshot } => {
                if self
                    .snapshot
                    .as_ref()
                    .is_some_and(|s| s.slot >= snapshot.slot)
                {
                    return;
                }
                // A snapshot at the last slot there is leaves no slot after it; `slot + 1` would
                // overflow.
                match snapshot.slot.checked_add(1) {
                    Some(after) => {
                        self.decided = self.decided.split_off(&after);
                        self.accepted = self.accepted.split_off(&after);
                    }
                    None => {
                        self.decided.clear();
                        self.accepted.clear();
                    }
                }
                self.snapshot = Some(snapshot);
            }
            Record::Incarnation { incarnation } => {
                self.incarnation = self.incarnation.max(incarnation);
            }
        }
    }
}

/// What [`replay`] found.
#[derive(Debug)]
pub struct Replayed {
    pub state: Durable,
    /// How many bytes of the file are whole frames. When it is less than the file's length, the
    /// tail was torn by a crash and the runtime should truncate the file to this length before
    /// appending to it.
    pub valid_len: u64,
}

impl Record {
    /// The ballot the record holds, if any.
    fn ballot(&self) -> Option<Ballot> {
        match self {
            Record::Promise { ballot }
            | Record::Accepted { ballot, .. }
            | Record::DecidedAccepted { ballot, .. } => Some(*ballot),
            Record::Decided { .. } | Record::Snapshot { .. } | Record::Incarnation { .. } => None,
        }
    }
}

/// Why [`replay`] refuses a log file.
#[derive(Debug, PartialEq, Eq)]
pub enum ReplayError {
    /// A damaged frame with intact frames after it.
    Corrupt(Corruption),
    /// The record at byte `offset` holds `ballot`, whose round is past [`MAX_ROUND`].
    BallotPastMaxRound { offset: u64, ballot: Ballot },
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayError::Corrupt(corruption) => corruption.fmt(f),
            ReplayError::BallotPastMaxRound { offset, ballot } => write!(
                f,
                "the record at byte offset {offset} holds ballot {ballot}, past the highest \
                 round a member takes ({MAX_ROUND}); a build from before ballots were bounded \
                 took it from a forged or garbled message, and no election could outbid it"
            ),
        }
    }
}

impl std::error::Error for ReplayError {}

/// A log file that cannot be trusted: a damaged frame with intact frames after it.
#[derive(Debug, PartialEq, Eq)]
pub struct Corruption {
    pub offset: u64,
    pub reason: String,
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "corrupt record at byte offset {}: {}",
            self.offset, self.reason
        )
    }
}

impl std::error::Error for Corruption {}

/// Reads a whole log file back.
pub fn replay(bytes: &[u8]) -> Result<Replayed, ReplayError> {
    let mut state = Durable::default();
    let mut offset = 0usize;
    while offset < bytes.len() {
        let reason = match read_frame(&bytes[offset..]) {
            Ok(Some((record, len))) => {
                if let Some(ballot) = record.ballot().filter(|b| b.round > MAX_ROUND) {
                    return Err(ReplayError::BallotPastMaxRound {
                        offset: offset as u64,
                        ballot,
                    });
                }
                state.apply(record);
                offset += len;
                continue;
            }
            Ok(None) => "its length runs past the end of the file".to_owned(),
            Err(reason) => reason,
        };
        // A crash tears only the last frame, so nothing whole follows a torn one: then this is
        // the tail, and it is dropped. A whole frame after it means other damage, perhaps to the
        // length field that says where this frame ends; dropping the frames after it would lose
        // what they say, so the log is refused.
        match whole_frame_after(bytes, offset) {
            None => break,
            Some(next) => {
                return Err(ReplayError::Corrupt(Corruption {
                    offset: offset as u64,
                    reason: format!("{reason}, but a whole record follows at byte offset {next}"),
                }));
            }
        }
    }
    Ok(Replayed {
        state,
        valid_len: offset as u64,
    })
}

/// Decodes the frame at the start of `bytes`: `Ok(None)` when it is incomplete.
fn read_frame(bytes: &[u8]) -> Result<Option<(Record, usize)>, String> {
    let Some(len) = frame_len(bytes) else {
        return Ok(None);
    };
    if bytes.len() < HEADER + len {
        return Ok(None);
    }
    let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("four bytes"));
    let payload = &bytes[HEADER..HEADER + len];
    if crc32fast::hash(payload) != crc {
        return Err("checksum mismatch".to_owned());
    }
    let record = serde_json::from_slice(payload).map_err(|e| format!("undecodable record: {e}"))?;
    Ok(Some((record, HEADER + len)))
}

fn frame_len(bytes: &[u8]) -> Option<usize> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
    usize::try_from(len).ok()
}

/// The offset of the first whole, intact frame that starts after `offset`, if any. The search
/// is made only past a bad frame, and is quick: a JSON payload holds no zero bytes, so inside a
/// frame almost every position claims a length past the end of the file and is passed over
/// without a checksum.
fn whole_frame_after(bytes: &[u8], offset: usize) -> Option<usize> {
    (offset + 1..bytes.len()).find(|&at| matches!(read_frame(&bytes[at..]), Ok(Some(_))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<Record> {
        let b = Ballot {
            round: 2,
            member: 1,
        };
        vec![
            Record::Promise { ballot: b },
            Record::Accepted {
                slot: 1,
                ballot: b,
                value: LogValue::Noop,
            },
            Record::Decided {
                slot: 1,
                value: LogValue::Noop,
            },
        ]
    }

    #[test]
    fn replays_what_was_written() {
        let bytes = encode_all(&records());
        let replayed = replay(&bytes).unwrap();
        assert_eq!(replayed.valid_len, bytes.len() as u64);
        assert_eq!(replayed.state.promised.round, 2);
        assert_eq!(replayed.state.decided.get(&1), Some(&LogValue::Noop));
    }

    #[test]
    fn drops_a_torn_tail_at_every_cut() {
        let whole = encode_all(&records());
        let last_start = whole.len() - encode(&records()[2]).len();
        for cut in last_start..whole.len() {
            let replayed = replay(&whole[..cut]).unwrap();
            assert_eq!(replayed.valid_len, last_start as u64, "cut at {cut}");
            assert!(replayed.state.decided.is_empty());
        }
    }

    #[test]
    fn drops_a_garbled_last_frame() {
        let mut bytes = encode_all(&records());
        let n = bytes.len();
        bytes[n - 2] ^= 0xff;
        let replayed = replay(&bytes).unwrap();
        assert!(replayed.valid_len < n as u64);
    }

    #[test]
    fn a_snapshot_stands_for_the_slots_behind_it() {
        let mut records = records();
        records.push(Record::Decided {
            slot: 2,
            value: LogValue::Noop,
        });
        records.push(Record::Snapshot {
            snapshot: Box::new(Snapshot {
                slot: 1,
                ..Snapshot::default()
            }),
        });
        records.push(Record::Decided {
            slot: 1,
            value: LogValue::Noop,
        });
        let state = replay(&encode_all(&records)).unwrap().state;
        assert_eq!(state.snapshot.map(|s| s.slot), Some(1));
        assert_eq!(state.decided.keys().copied().collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn replays_requests_written_before_the_floor_existed() {
        let old = br#"{"record":"decide","slot":1,"value":{"kind":"request","id":{"member":0,"incarnation":1,"n":1},"command":{"op":"get","key":"k"}}}"#;
        let record: Record = serde_json::from_slice(old).unwrap();
        let Record::Decided {
            value: LogValue::Request(request),
            ..
        } = record
        else {
            panic!("not a decided request: {record:?}");
        };
        assert_eq!(request.floor, 0);
    }

    /// A decision that names an acceptance takes that acceptance's value; one that names an
    /// acceptance the log no longer holds (another ballot replaced it) decides nothing.
    #[test]
    fn a_decision_takes_the_value_of_the_acceptance_it_names() {
        let (b, later) = (
            Ballot {
                round: 2,
                member: 1,
            },
            Ballot {
                round: 3,
                member: 0,
            },
        );
        let accept = |slot, ballot| Record::Accepted {
            slot,
            ballot,
            value: LogValue::Noop,
        };
        let log = [
            accept(1, b),
            accept(2, b),
            accept(2, later),
            Record::DecidedAccepted { slot: 1, ballot: b },
            Record::DecidedAccepted { slot: 2, ballot: b },
        ];
        let state = replay(&encode_all(&log)).unwrap().state;
        assert_eq!(state.decided.keys().copied().collect::<Vec<_>>(), vec![1]);
        assert_eq!(state.accepted.keys().copied().collect::<Vec<_>>(), vec![2]);
        let json = serde_json::to_string(&log[3]).unwrap();
        assert_eq!(
            json,
            r#"{"record":"decide_accepted","slot":1,"ballot":{"round":2,"member":1}}"#
        );
    }

    /// Logs from before decisions named acceptances repeat the value in a plain decision, which
    /// replays as it always did.
    #[test]
    fn replays_decisions_that_repeat_the_accepted_value() {
        let old = [
            r#"{"record":"accept","slot":1,"ballot":{"round":2,"member":1},"value":{"kind":"noop"}}"#,
            r#"{"record":"decide","slot":1,"value":{"kind":"noop"}}"#,
        ];
        let records: Vec<Record> = old
            .iter()
            .map(|json| serde_json::from_str(json).unwrap())
            .collect();
        let state = replay(&encode_all(&records)).unwrap().state;
        assert_eq!(state.decided.get(&1), Some(&LogValue::Noop));
    }

    #[test]
    fn refuses_damage_in_the_middle() {
        let mut bytes = encode_all(&records());
        bytes[HEADER + 3] ^= 0xff;
        let Err(ReplayError::Corrupt(err)) = replay(&bytes) else {
            panic!("damage in the middle was taken");
        };
        assert_eq!(err.offset, 0);
        assert!(err.to_string().contains("byte offset 0"));
    }

    /// A data dir written before ballots were bounded may hold a promise or an acceptance that
    /// no election can outbid; the member refuses to start from it, naming the record. One at
    /// the cap itself is a ballot a member may hold, and replays.
    #[test]
    fn refuses_a_ballot_past_the_cap() {
        let past = Ballot {
            round: MAX_ROUND + 1,
            member: 0,
        };
        let at_cap = Ballot {
            round: MAX_ROUND,
            member: 2,
        };
        let prefix = encode_all(&records());
        for record in [
            Record::Promise { ballot: past },
            Record::Accepted {
                slot: 2,
                ballot: past,
                value: LogValue::Noop,
            },
        ] {
            let mut bytes = prefix.clone();
            bytes.extend(encode(&record));
            let err = replay(&bytes).unwrap_err();
            assert_eq!(
                err,
                ReplayError::BallotPastMaxRound {
                    offset: prefix.len() as u64,
                    ballot: past,
                }
            );
            let shown = err.to_string();
            assert!(
                shown.contains(&format!("byte offset {}", prefix.len()))
                    && shown.contains("no election"),
                "{shown}"
            );
        }
        let mut bytes = prefix;
        bytes.extend(encode(&Record::Promise { ballot: at_cap }));
        assert_eq!(replay(&bytes).unwrap().state.promised, at_cap);
    }
}
