//! Peer traffic's HTTP side, minus the HTTP client: where to send, with which header, how long
//! to wait, and how a queue of messages becomes request bodies.
//!
//! Each server runs one sender per peer that drains everything queued for that peer and posts it
//! as one [`paxos_core::Envelope`]. Paxos tolerates lost messages (the core retransmits what
//! matters), so a failed post is counted and dropped, never retried here.

use std::time::Duration;

use std::sync::{Arc, OnceLock};

use paxos_core::{Envelope, MemberId, Message, To};
use serde_json::value::{RawValue, to_raw_value};

use crate::{Config, Metrics, log};

/// How long connecting to a peer may take. Peers are on a LAN: a slow connect means a dead peer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How long one post may take in all. A peer answers `204` as soon as it has queued the messages
/// (it does not wait for its fsync), so this only has to cover a large body on a busy host.
pub const POST_TIMEOUT: Duration = Duration::from_secs(2);
/// The most bytes of messages one envelope carries; a longer queue goes out in several posts.
/// It keeps every envelope well under the receiver's [`MAX_PEER_BODY`](crate::http::MAX_PEER_BODY).
pub const MAX_ENVELOPE_BYTES: usize = 8 * 1024 * 1024;
/// The most messages a sender takes off its queue for one round of posts.
pub const MAX_DRAIN: usize = 4096;

/// Counts what one post of `messages` to `server` came to, which took `took`, and logs a
/// failure: the messages are delivered when the peer answers `204`, and dropped otherwise.
pub fn posted(
    metrics: &Metrics,
    server: &str,
    messages: usize,
    took: Duration,
    posted: Result<u16, String>,
) {
    metrics.peer_post(took);
    match posted {
        Ok(204) => metrics.peer_sent(messages),
        Ok(status) => {
            metrics.peer_send_error();
            log::peer_send_failed(server, messages, format!("answered HTTP {status}"));
        }
        Err(reason) => {
            metrics.peer_send_error();
            log::peer_send_failed(server, messages, reason);
        }
    }
}

/// The `Authorization` header value peers must send, when the cluster has a secret.
pub fn authorization(secret: Option<&str>) -> Option<String> {
    secret.map(|secret| format!("Bearer {secret}"))
}

/// One request body: a JSON [`paxos_core::Envelope`] and how many messages it carries.
#[derive(Debug)]
pub struct Body {
    pub messages: usize,
    pub json: Vec<u8>,
}

/// A message queued for one peer or several. A broadcast is one `Outgoing` shared by every
/// peer's queue, and encoded once, by whichever sender needs it first.
#[derive(Debug)]
pub struct Outgoing {
    message: Message,
    encoded: OnceLock<Box<RawValue>>,
}

impl Outgoing {
    pub fn new(message: Message) -> Arc<Outgoing> {
        Arc::new(Outgoing {
            message,
            encoded: OnceLock::new(),
        })
    }

    /// The message's JSON.
    pub fn encoded(&self) -> &RawValue {
        self.encoded
            .get_or_init(|| to_raw_value(&self.message).expect("messages always serialize"))
    }
}

/// The members `to` names among `members`, this one included for [`To::Peers`]: each server
/// keeps no queue at its own index, so its own is skipped there.
pub fn recipients(to: To, members: usize) -> std::ops::Range<MemberId> {
    match to {
        To::Member(member) => member..member + 1,
        To::Peers => 0..members,
    }
}

/// Turns queued messages into as few envelopes as [`MAX_ENVELOPE_BYTES`] allows, in order.
/// A message bigger than the limit on its own still goes, alone. Each message's encoding is what
/// the envelope is cut by, and then what it carries.
pub fn envelopes(config: &Config, from: MemberId, messages: &[Arc<Outgoing>]) -> Vec<Body> {
    let (cluster, membership) = (config.cluster.as_str(), config.membership());
    let mut bodies = Vec::new();
    let mut batch: Vec<&RawValue> = Vec::new();
    let mut bytes = 0;
    let mut close = |batch: Vec<&RawValue>| {
        let messages = batch.len();
        let envelope = Envelope::new(cluster, membership, from, batch);
        let json = serde_json::to_vec(&envelope).expect("envelopes always serialize");
        bodies.push(Body { messages, json });
    };
    for message in messages {
        let encoded = message.encoded();
        if !batch.is_empty() && bytes + encoded.get().len() > MAX_ENVELOPE_BYTES {
            close(std::mem::take(&mut batch));
            bytes = 0;
        }
        bytes += encoded.get().len();
        batch.push(encoded);
    }
    if !batch.is_empty() {
        close(batch);
    }
    bodies
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_core::Ballot;

    fn config(cluster: &str) -> Config {
        let servers = ["a:1", "b:2", "c:3"].map(String::from).to_vec();
        Config {
            cluster: cluster.to_owned(),
            ..Config::with_servers(servers)
        }
    }

    #[test]
    fn envelopes_parse_back_in_order() {
        let messages: Vec<Message> = (0..3)
            .map(|c| Message::Commit {
                ballot: Ballot::ZERO,
                commit: c,
                read: 0,
            })
            .collect();
        let config = config("c\"1");
        let queued: Vec<_> = messages.iter().cloned().map(Outgoing::new).collect();
        let bodies = envelopes(&config, 2, &queued);
        assert_eq!(bodies.len(), 1);
        assert_eq!(bodies[0].messages, 3);
        let envelope: Envelope = serde_json::from_slice(&bodies[0].json).unwrap();
        let membership = config.membership();
        assert_eq!(envelope, Envelope::new("c\"1", membership, 2, messages));
        assert!(envelopes(&config, 0, &[]).is_empty());
    }

    #[test]
    fn a_long_queue_is_cut_by_bytes() {
        let big = "x".repeat(MAX_ENVELOPE_BYTES / 3);
        let forward = |n: u64| Message::Forward {
            requests: vec![paxos_core::Request {
                id: paxos_core::RequestId {
                    member: 0,
                    incarnation: 1,
                    n,
                },
                floor: 0,
                command: paxos_core::Command::new(paxos_core::Op::Put {
                    key: "k".into(),
                    value: big.clone(),
                }),
            }],
        };
        let messages: Vec<Message> = (1..=5).map(forward).collect();
        let queued: Vec<_> = messages.iter().cloned().map(Outgoing::new).collect();
        let bodies = envelopes(&config("c"), 0, &queued);
        assert_eq!(
            bodies.iter().map(|b| b.messages).collect::<Vec<_>>(),
            [2, 2, 1]
        );
        let mut back = Vec::new();
        for body in &bodies {
            assert!(body.json.len() <= MAX_ENVELOPE_BYTES + 200);
            let envelope: Envelope = serde_json::from_slice(&body.json).unwrap();
            back.extend(envelope.messages);
        }
        assert_eq!(back, messages);
    }

    #[test]
    fn a_broadcast_goes_to_every_queue_but_is_encoded_once() {
        assert_eq!(recipients(To::Member(2), 3), 2..3);
        assert_eq!(recipients(To::Peers, 3), 0..3);
        let shared = Outgoing::new(Message::Commit {
            ballot: Ballot::ZERO,
            commit: 9,
            read: 0,
        });
        let first: *const RawValue = shared.encoded();
        let again: *const RawValue = Arc::clone(&shared).encoded();
        assert_eq!(
            first, again,
            "the second sender reuses the first's encoding"
        );
    }
}
