//! Peer traffic's HTTP side, minus the HTTP client: where to send, with which header, how long
//! to wait, and how a queue of messages becomes request bodies.
//!
//! Each server runs one sender per peer that drains everything queued for that peer and posts it
//! as one [`paxos_core::Envelope`]. Paxos tolerates lost messages (the core retransmits what
//! matters), so a failed post is counted and dropped, never retried here.

use std::time::Duration;

use paxos_core::message::PROTOCOL_VERSION;
use paxos_core::{MemberId, Message};

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

/// The URL peer messages go to.
pub fn messages_url(server: &str) -> String {
    format!("http://{server}/paxos/messages")
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

/// Turns queued messages into as few envelopes as [`MAX_ENVELOPE_BYTES`] allows, in order.
/// A message bigger than the limit on its own still goes, alone.
pub fn envelopes(cluster: &str, from: MemberId, messages: Vec<Message>) -> Vec<Body> {
    let cluster = serde_json::to_string(cluster).expect("a string serializes");
    let head =
        format!(r#"{{"version":{PROTOCOL_VERSION},"cluster":{cluster},"from":{from},"messages":["#);
    let mut bodies = Vec::new();
    let mut current = Body {
        messages: 0,
        json: head.clone().into_bytes(),
    };
    for message in messages {
        let encoded = serde_json::to_vec(&message).expect("messages always serialize");
        if current.messages > 0 && current.json.len() + encoded.len() > MAX_ENVELOPE_BYTES {
            current.json.extend_from_slice(b"]}");
            bodies.push(current);
            current = Body {
                messages: 0,
                json: head.clone().into_bytes(),
            };
        }
        if current.messages > 0 {
            current.json.push(b',');
        }
        current.json.extend_from_slice(&encoded);
        current.messages += 1;
    }
    if current.messages > 0 {
        current.json.extend_from_slice(b"]}");
        bodies.push(current);
    }
    bodies
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_core::{Ballot, Envelope};

    #[test]
    fn envelopes_parse_back_in_order() {
        let messages: Vec<Message> = (0..3)
            .map(|c| Message::Commit {
                ballot: Ballot::ZERO,
                commit: c,
            })
            .collect();
        let bodies = envelopes("c\"1", 2, messages.clone());
        assert_eq!(bodies.len(), 1);
        assert_eq!(bodies[0].messages, 3);
        let envelope: Envelope = serde_json::from_slice(&bodies[0].json).unwrap();
        assert_eq!(envelope, Envelope::new("c\"1", 2, messages));
        assert!(envelopes("c", 0, Vec::new()).is_empty());
    }
}
