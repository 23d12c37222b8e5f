//! The HTTP API's logic without an HTTP library: statuses, JSON bodies, and the checks of a peer
//! envelope. Which route a request takes is [`routing`](crate::routing)'s.
//!
//! Each server adapts these to its framework (rouille or axum), so both answer every request
//! with the same status and byte-for-byte the same body.

use std::time::Duration;

use paxos_core::message::PROTOCOL_VERSION;
use paxos_core::{Answer, Envelope, MemberId, Membership, Role};
use serde_json::json;

use crate::config::Config;
use crate::log;
use crate::metrics::Metrics;
use crate::status::Snapshot;

/// The largest client request body accepted; larger ones get `413`.
pub const MAX_BODY: usize = 1024 * 1024;
/// The largest peer request body accepted. An accept may carry up to `max_batch` commands of up
/// to [`MAX_BODY`] each, so peers get more room than clients; the cap still keeps one request
/// from exhausting memory.
pub const MAX_PEER_BODY: usize = 64 * 1024 * 1024;
/// The most client requests allowed to wait for their commands at once; more are refused with
/// [`overloaded`] at once. Each waiting request holds memory and a place in the driver's table on
/// both servers, and its connection's thread on the threaded one (never a thread a peer message
/// needs: each connection has its own); both servers share the bound so that they refuse alike.
/// The threaded server's `handler-pool` variant serves peers from the same pool of threads as
/// clients, and needs the bound to keep threads free for the peer messages that commit the
/// waiting commands.
pub const MAX_WAITING_CLIENTS: u64 = 480;
/// The Content-Type of every body except `/metrics`.
pub const JSON: &str = "application/json";

/// A status and a JSON body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    /// For `405`: the value of the `Allow` header.
    pub allow: Option<&'static str>,
}

impl Reply {
    pub fn new(status: u16, body: String) -> Reply {
        Reply {
            status,
            body,
            allow: None,
        }
    }
}

/// `{"error": "<sentence>"}` with `status`.
pub fn error(status: u16, sentence: &str) -> Reply {
    Reply::new(status, json!({ "error": sentence }).to_string())
}

pub fn body_too_large(limit: usize) -> Reply {
    error(
        413,
        &format!("the request body is over the limit of {} bytes", limit),
    )
}

/// `408` for a body that did not arrive within the client timeout.
pub fn body_timeout(client_timeout: Duration) -> Reply {
    let secs = client_timeout.as_secs_f64();
    error(
        408,
        &format!("the request body did not arrive within {secs} s; the command was not run"),
    )
}

/// A `400` for a body that is not a command, with the parser's sentence.
pub fn bad_request(sentence: &str) -> Reply {
    error(400, sentence)
}

/// `400` for a body that broke off or could not be read.
pub fn unreadable_body() -> Reply {
    error(400, "could not read the request body")
}

/// `200`, the id as a JSON string.
pub fn server_id(id: &str) -> Reply {
    Reply::new(200, json!(id).to_string())
}

/// The status and body for a command the log answered.
pub fn answer(answer: &Answer) -> Reply {
    let body = serde_json::to_string(answer).expect("answers always serialize");
    Reply::new(answer.http_status(), body)
}

/// `503` for a command that did not commit in time; whether it will is unknown.
pub fn timeout(request_timeout: Duration) -> Reply {
    let secs = request_timeout.as_secs_f64();
    let sentence = format!("the command was not committed within {secs} s; its outcome is unknown");
    error(503, &sentence)
}

/// `503` for a request cut short by shutdown.
pub fn shutting_down() -> Reply {
    error(
        503,
        "the server is shutting down; the command's outcome is unknown",
    )
}

/// `503` for a request that arrived while the server still looks for itself among `servers`
/// and the wait ran out.
pub fn still_discovering(request_timeout: Duration) -> Reply {
    let secs = request_timeout.as_secs_f64();
    let sentence = format!(
        "the server has not found itself among the config's servers within {secs} s, so it \
         cannot take commands yet; the command was not run"
    );
    error(503, &sentence)
}

/// `503` for a client request refused because too many are waiting already.
pub fn overloaded(waiting: u64) -> Reply {
    let sentence = format!(
        "the server is overloaded with {waiting} client requests waiting; the command was not \
         run, retry later"
    );
    error(503, &sentence)
}

/// `503` for a request whose body would take the server past its budget of bodies held at once.
pub fn bodies_over_budget(taken: usize, limit: usize) -> Reply {
    let sentence = format!(
        "the server holds {taken} bytes of request bodies already, against a budget of {limit} \
         bytes; the request was not read, retry later"
    );
    error(503, &sentence)
}

/// `503` for a watch refused because too many wait already.
pub fn too_many_watches(waiting: u64) -> Reply {
    let sentence = format!(
        "the server has {waiting} watches waiting, past its `max_watches`; retry later, or \
         watch through another member"
    );
    error(503, &sentence)
}

/// `403` for a peer envelope from another cluster: its sender knows the secret (or there is
/// none), but belongs elsewhere, so nothing it says may count here.
pub fn other_cluster(theirs: &str, ours: &str) -> Reply {
    error(
        403,
        &format!(
            "peer envelope from cluster `{theirs}`, but this server belongs to cluster `{ours}`; \
             clusters that share a secret need distinct `cluster` names"
        ),
    )
}

/// `409` for a peer envelope sent under another member list: the sender is of this cluster, but
/// its `servers` differ from ours, so its member indexes and quorums mean something else here.
pub fn other_membership(theirs: Membership, ours: Membership) -> Reply {
    error(
        409,
        &format!(
            "peer envelope sent under membership {theirs}, but this server runs under {ours}; \
             every member must be given the same `servers` list, in the same order and spelling"
        ),
    )
}

/// `503` for peer messages that arrive before this server knows which member it is.
pub fn peer_before_discovery() -> Reply {
    error(
        503,
        "this server has not found itself yet and takes no peer messages",
    )
}

/// `500` for a request whose handler panicked. The sentence names the route but not the panic,
/// which the log has: a client learns nothing of the server's insides.
pub fn handler_panicked(method: &str, path: &str) -> Reply {
    error(
        500,
        &format!(
            "the server failed while handling {method} {path}; if the request carried a \
             command, its outcome is unknown"
        ),
    )
}

/// `204`: peer messages taken.
pub fn accepted() -> Reply {
    Reply::new(204, String::new())
}

/// Parses a peer request body, refusing other protocol versions, other clusters (counted and
/// logged here) and unknown senders.
pub fn parse_envelope(body: &[u8], config: &Config, metrics: &Metrics) -> Result<Envelope, Reply> {
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|e| bad_request(&format!("malformed peer envelope: {e}")))?;
    if envelope.version != PROTOCOL_VERSION {
        return Err(bad_request(&format!(
            "peer protocol version {} is not spoken here; this server speaks version \
             {PROTOCOL_VERSION}",
            envelope.version
        )));
    }
    if envelope.cluster != config.cluster {
        let refused_before = metrics.peer_from_other_cluster();
        log::peer_from_other_cluster(&envelope.cluster, &config.cluster, refused_before);
        return Err(other_cluster(&envelope.cluster, &config.cluster));
    }
    let ours = config.membership();
    if envelope.membership != ours {
        let refused_before = metrics.peer_from_other_membership(ours, envelope.membership);
        log::peer_from_other_membership(envelope.membership, ours, refused_before);
        return Err(other_membership(envelope.membership, ours));
    }
    let members = config.servers.len();
    if envelope.from >= members {
        return Err(bad_request(&format!(
            "peer envelope from member {} but the config lists only {members} servers",
            envelope.from
        )));
    }
    Ok(envelope)
}

/// The role's name in `/status`.
pub fn role_name(role: Option<Role>) -> &'static str {
    match role {
        None => "discovering",
        Some(Role::Follower) => "follower",
        Some(Role::Candidate) => "candidate",
        Some(Role::Leader) => "leader",
    }
}

/// The `GET /status` body.
pub fn status(server_id: &str, runtime: &str, config: &Config, snapshot: &Snapshot) -> Reply {
    let servers = &config.servers;
    let entry = |member: Option<MemberId>| member.and_then(|m| servers.get(m)).cloned();
    let node = snapshot.node.as_ref();
    let ballot = node.map(|s| s.ballot).unwrap_or_default();
    let role = if snapshot.me.is_some() {
        Some(node.map_or(Role::Follower, |s| s.role))
    } else {
        None
    };
    let body = json!({
        "server_id": server_id,
        "self": entry(snapshot.me),
        "runtime": runtime,
        "leader": entry(node.and_then(|s| s.leader)),
        "ballot": {"round": ballot.round, "member": ballot.member},
        "commit_index": node.map_or(0, |s| s.commit_index),
        // The contract names both; a member applies each slot as it learns it is committed,
        // so they are one index (see `Status::commit_index`).
        "applied_index": node.map_or(0, |s| s.commit_index),
        "known_commit_index": node.map_or(0, |s| s.known_commit),
        "servers": servers,
        "membership": config.membership().to_string(),
        "role": role_name(role),
    });
    Reply::new(200, body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_core::{Ballot, Status};

    #[test]
    fn timeout_sentence_matches_the_contract() {
        let reply = timeout(Duration::from_secs(5));
        assert_eq!(reply.status, 503);
        assert_eq!(
            reply.body,
            r#"{"error":"the command was not committed within 5 s; its outcome is unknown"}"#
        );
        assert!(
            timeout(Duration::from_millis(1500))
                .body
                .contains("within 1.5 s")
        );
    }

    #[test]
    fn envelopes_are_checked() {
        let mut config = Config::with_servers(vec!["a:1".into(), "b:2".into(), "c:3".into()]);
        config.cluster = "blue".into();
        let metrics = Metrics::default();
        let ours = serde_json::to_string(&config.membership()).unwrap();
        let with = |version: u32, cluster: &str, membership: &str, from: usize| {
            format!(
                r#"{{"version":{version},"cluster":"{cluster}","membership":{membership},"from":{from},"messages":[]}}"#
            )
        };
        let envelope =
            |version: u32, cluster: &str, from: usize| with(version, cluster, &ours, from);
        let parse = |body: String| parse_envelope(body.as_bytes(), &config, &metrics);
        assert_eq!(
            parse(envelope(PROTOCOL_VERSION, "blue", 1)).unwrap().from,
            1
        );
        assert_eq!(parse("{".into()).unwrap_err().status, 400);
        let old = parse(envelope(PROTOCOL_VERSION - 1, "blue", 1)).unwrap_err();
        assert!(
            old.body
                .contains(&format!("version {}", PROTOCOL_VERSION - 1))
        );
        let stranger = parse(envelope(PROTOCOL_VERSION, "blue", 3)).unwrap_err();
        assert!(stranger.body.contains("member 3"));
        let other = parse(envelope(PROTOCOL_VERSION, "green", 1)).unwrap_err();
        assert_eq!(other.status, 403);
        assert!(other.body.contains("cluster `green`"), "{}", other.body);
        assert!(other.body.contains("cluster `blue`"), "{}", other.body);
        let reordered = Config::with_servers(vec!["b:2".into(), "a:1".into(), "c:3".into()]);
        let theirs = serde_json::to_string(&reordered.membership()).unwrap();
        for _ in 0..2 {
            let other = parse(with(PROTOCOL_VERSION, "blue", &theirs, 1)).unwrap_err();
            assert_eq!(other.status, 409);
            assert!(other.body.contains(&reordered.membership().to_string()));
            assert!(other.body.contains(&config.membership().to_string()));
        }
        let metrics_text = metrics.render("async", &Snapshot::default());
        assert!(metrics_text.contains("paxos_peer_cluster_mismatches_total 1"));
        let mismatches = format!(
            "paxos_peer_membership_mismatches_total{{ours=\"{}\",theirs=\"{}\"}} 2",
            config.membership(),
            reordered.membership()
        );
        assert!(metrics_text.contains(&mismatches), "{metrics_text}");
        let unnamed = format!(r#"{{"version":{PROTOCOL_VERSION},"from":1,"messages":[]}}"#);
        assert!(
            parse(unnamed)
                .unwrap_err()
                .body
                .contains("missing field `cluster`")
        );
    }

    #[test]
    fn status_names_config_entries() {
        let config = Config::with_servers(vec!["a:1".to_owned(), "b:2".to_owned()]);
        let discovering = status("id", "async", &config, &Snapshot::default());
        let json: serde_json::Value = serde_json::from_str(&discovering.body).unwrap();
        assert_eq!(json["role"], "discovering");
        assert_eq!(json["self"], serde_json::Value::Null);
        let snapshot = Snapshot {
            me: Some(1),
            node: Some(Status {
                role: Role::Leader,
                leader: Some(1),
                ballot: Ballot {
                    round: 4,
                    member: 1,
                },
                commit_index: 7,
                known_commit: 9,
            }),
            stats: Default::default(),
            leader_changes: 1,
        };
        let json: serde_json::Value =
            serde_json::from_str(&status("id", "async", &config, &snapshot).body).unwrap();
        assert_eq!(json["self"], "b:2");
        assert_eq!(json["leader"], "b:2");
        assert_eq!(json["ballot"], json!({"round": 4, "member": 1}));
        assert_eq!(json["role"], "leader");
        assert_eq!(json["commit_index"], 7);
        assert_eq!(json["applied_index"], 7);
        assert_eq!(json["known_commit_index"], 9);
        assert_eq!(json["membership"], config.membership().to_string());
    }
}
