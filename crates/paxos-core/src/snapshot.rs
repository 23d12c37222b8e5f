//! The replicated state as of one slot: what log compaction keeps in place of the log behind it.
//!
//! Applying slots `1..=slot` in order always gives the same store and the same table of applied
//! requests, so a member may keep this instead of those slots. It is what a member writes at the
//! head of its log file when it compacts, and what it sends a member that asks for slots it no
//! longer holds ([`Message::Snapshot`](crate::Message::Snapshot)), or a candidate that starts
//! before them (in its promise).

use serde::{Deserialize, Serialize};

use crate::applied::AppliedRequests;
use crate::kv::KvStore;
use crate::message::Slot;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Every slot up to here is applied in this state.
    pub slot: Slot,
    pub kv: KvStore,
    pub applied: AppliedRequests,
}
