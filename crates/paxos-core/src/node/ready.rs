//! What a node hands its runtime after a turn of inputs.

use crate::command::Answer;
use crate::log::{MemberId, RequestId};
use crate::message::Message;
use crate::storage::Record;

/// What a node asks its runtime to do, in order: make `persist` durable (write and fsync), then
/// send `messages` and give `replies`.
#[derive(Debug, Default)]
pub struct Ready {
    pub persist: Vec<Record>,
    /// When set, `persist` is everything the node needs to restart: it replaces the log file
    /// (atomically: a crash must leave the old file or the new one) instead of extending it.
    pub rewrite: bool,
    pub messages: Vec<(To, Message)>,
    /// Answers to this member's own client requests, by the id [`Node::submit`](super::Node::submit) returned.
    pub replies: Vec<(RequestId, Answer)>,
}

/// Whom a message in [`Ready::messages`] goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum To {
    Member(MemberId),
    /// Every member but the sender. A broadcast is one message, not a copy per peer, so that a
    /// large value is held, and can be encoded, once.
    Peers,
}

impl Ready {
    pub fn is_empty(&self) -> bool {
        self.persist.is_empty() && self.messages.is_empty() && self.replies.is_empty()
    }
}
