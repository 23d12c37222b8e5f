//! Peer traffic's HTTP side, minus the HTTP client: where to send, with which header, how long
//! to wait, and how a queue of messages becomes request bodies.
//!
//! Each server runs one sender per peer that drains everything queued for that peer and posts it
//! as one [`paxos_core::Envelope`]. Paxos tolerates lost messages (the core retransmits what
//! matters), so a failed post is counted and dropped, never retried here.

use std::time::Duration;

use paxos_core::{Envelope, MemberId, Message};
use serde_json::value::{RawValue, to_raw_value};

use crate::Config;

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
/// A message bigger than the limit on its own still goes, alone. Each message is encoded once:
/// its encoding is what the envelope is cut by, and then what it carries.
pub fn envelopes(config: &Config, from: MemberId, messages: Vec<Message>) -> Vec<Body> {
    let (cluster, membership) = (config.cluster.as_str(), config.membership());
    let mut bodies = Vec::new();
    let mut batch: Vec<Box<RawValue>> = Vec::new();
    let mut bytes = 0;
    let mut close = |batch: Vec<Box<RawValue>>| {
        let messages = batch.len();
        let envelope = Envelope::new(cluster, membership, from, batch);
        let json = serde_json::to_vec(&envelope).expect("envelopes always serialize");
        bodies.push(Body { messages, json });
    };
    for message in messages {
        let encoded = to_raw_value(&message).expect("messages always serialize");
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
            })
            .collect();
        let config = config("c\"1");
        let bodies = envelopes(&config, 2, messages.clone());
        assert_eq!(bodies.len(), 1);
        assert_eq!(bodies[0].messages, 3);
        let envelope: Envelope = serde_json::from_slice(&bodies[0].json).unwrap();
        let membership = config.membership();
        assert_eq!(envelope, Envelope::new("c\"1", membership, 2, messages));
        assert!(envelopes(&config, 0, Vec::new()).is_empty());
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
        let bodies = envelopes(&config("c"), 0, messages.clone());
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
}
