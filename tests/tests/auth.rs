//! Peer authentication: with a `secret`, `/paxos/*` without the right bearer token gets `401`
//! and changes nothing, however tempting the forged message; and a message from another cluster
//! that shares the secret gets `403` and changes nothing either.

use paxos_core::message::{Entry, Envelope, LogValue, Message, Request, RequestId};
use paxos_core::{Ballot, Command, Membership, Op};
use paxos_tests::fixtures::assert_error_shape;
use paxos_tests::{Cluster, Json, Response, Runtime, json, scenarios};

scenarios! {
    peer_authentication,
    every_paxos_path_needs_the_secret,
    replayed_from_another_cluster,
}

/// The name the scenarios give their cluster (the config's `cluster`).
const CLUSTER: &str = "auth-a";

/// What must not change: who leads, at which ballot, and how far the log is decided.
fn fingerprint(cluster: &Cluster) -> Vec<Json> {
    (0..cluster.len())
        .map(|i| {
            let status = cluster.status(i).expect("/status");
            json!([
                status["leader"],
                status["ballot"],
                status["commit_index"],
                status["applied_index"],
                status["role"]
            ])
        })
        .collect()
}

/// An envelope from `from` of a cluster named `cluster` with this cluster's member list.
fn envelope(cluster: &Cluster, name: &str, from: usize, messages: Vec<Message>) -> Envelope {
    Envelope::new(
        name,
        Membership::of(&cluster.config.servers),
        from,
        messages,
    )
}

/// Posts `envelope` to member `i` as a peer would, with `bearer` as its authorization.
fn post_envelope(cluster: &Cluster, i: usize, envelope: &Envelope, bearer: &str) -> Response {
    let body = serde_json::to_vec(envelope).unwrap();
    let url = cluster.url(i, "/paxos/messages");
    cluster
        .client
        .post(&url, &body, &[("Authorization", bearer)])
        .unwrap()
}

/// A ballot above any the cluster will reach in a scenario, owned by `leader`, yet within what
/// a member accepts as a step up from the ballots it has seen.
fn huge_ballot(leader: usize) -> Ballot {
    Ballot {
        round: 1_000,
        member: leader,
    }
}

/// Messages that would each change something if they were believed: a put at the next slot,
/// its commit and its decision, and a prepare that outbids the leader.
fn forgeries(leader: usize, commit: u64) -> Vec<Message> {
    let huge = huge_ballot(leader);
    let forged_value = LogValue::Request(Request {
        id: RequestId {
            member: leader,
            incarnation: 42,
            n: 1,
        },
        floor: 0,
        command: Command::new(Op::Put {
            key: "auth".into(),
            value: "forged".into(),
        }),
    });
    vec![
        Message::Accept {
            ballot: huge,
            entries: vec![Entry {
                slot: commit + 1,
                value: forged_value.clone(),
            }],
            commit: commit + 1,
        },
        Message::Commit {
            ballot: huge,
            commit: commit + 1,
            read: 0,
        },
        Message::Decided {
            entries: vec![Entry {
                slot: commit + 1,
                value: forged_value,
            }],
            commit: commit + 1,
        },
        Message::Prepare {
            ballot: huge,
            from_slot: 1,
        },
    ]
}

/// Starts a cluster named [`CLUSTER`] with `secret`, puts a value through a follower, and waits
/// until every member applied it; returns the cluster, its leader and the commit index.
fn start_with_a_value(runtime: Runtime, secret: &str) -> (Cluster, usize, u64) {
    let cluster = Cluster::builder(runtime)
        .secret(secret)
        .tuning("cluster", CLUSTER)
        // Heartbeats would not change the fingerprint, but slow elections make a spurious one
        // (which would) very unlikely while the forged messages are checked.
        .tuning("election_timeout_ms", 2_000)
        .start();
    let leader = cluster.wait_for_leader();
    let follower = (leader + 1) % cluster.len();
    // Peers that share the secret work together.
    cluster.ok(
        follower,
        &json!({"op": "put", "key": "auth", "value": "before"}),
    );
    let commit = cluster.commit_index(leader).unwrap();
    paxos_tests::wait_for(
        "every member applied the put",
        std::time::Duration::from_secs(10),
        || {
            (0..cluster.len()).all(|i| {
                cluster.status(i).is_some_and(|s| {
                    s["commit_index"] == json!(commit) && s["applied_index"] == json!(commit)
                })
            })
        },
    );
    (cluster, leader, commit)
}

fn peer_authentication(runtime: Runtime) {
    let secret = format!("s3cret-{}", std::process::id());
    let (cluster, leader, commit) = start_with_a_value(runtime, &secret);
    let follower = (leader + 1) % cluster.len();
    let before = fingerprint(&cluster);

    let huge = huge_ballot(leader);
    let forgeries = forgeries(leader, commit);
    let wrong = format!("Bearer {secret}x");
    let basic = format!("Basic {secret}");
    let bare = secret.clone();
    let headers: [(&str, &[(&str, &str)]); 4] = [
        ("no Authorization", &[]),
        ("a wrong secret", &[("Authorization", &wrong)]),
        ("the secret as Basic", &[("Authorization", &basic)]),
        ("the secret without Bearer", &[("Authorization", &bare)]),
    ];
    for i in 0..cluster.len() {
        let url = cluster.url(i, "/paxos/messages");
        for message in &forgeries {
            let body =
                serde_json::to_vec(&envelope(&cluster, CLUSTER, leader, vec![message.clone()]))
                    .unwrap();
            for (what, headers) in headers {
                let response = cluster.client.post(&url, &body, headers).unwrap();
                assert_eq!(
                    response.status,
                    401,
                    "{} with {what} on member {i}: {}",
                    message.kind(),
                    response.body
                );
                assert_error_shape(401, &response.json());
            }
        }
    }

    assert_eq!(
        fingerprint(&cluster),
        before,
        "a refused message changed a member's state"
    );
    for i in 0..cluster.len() {
        let value = cluster.ok(i, &json!({"op": "get", "key": "auth"}))["value"].clone();
        assert_eq!(value, json!("before"), "member {i}");
    }

    // The control: with the secret, a harmless message is accepted.
    let catch_up = envelope(
        &cluster,
        CLUSTER,
        follower,
        vec![Message::CatchUp { from_slot: 1 }],
    );
    let bearer = format!("Bearer {secret}");
    let response = post_envelope(&cluster, leader, &catch_up, &bearer);
    assert_eq!(
        response.status, 204,
        "an authenticated catch-up: {}",
        response.body
    );

    // The control for the fingerprint: the forged prepare, sent with the secret, is believed,
    // and the follower's promised ballot shows it.
    let prepare = envelope(
        &cluster,
        CLUSTER,
        leader,
        vec![Message::Prepare {
            ballot: huge,
            from_slot: 1,
        }],
    );
    let response = post_envelope(&cluster, follower, &prepare, &bearer);
    assert_eq!(
        response.status, 204,
        "an authenticated prepare: {}",
        response.body
    );
    paxos_tests::wait_for(
        "the follower promises the authenticated prepare's ballot",
        std::time::Duration::from_secs(10),
        || {
            cluster
                .status(follower)
                .is_some_and(|s| s["ballot"]["round"].as_u64() >= Some(huge.round))
        },
    );
    assert_ne!(fingerprint(&cluster), before);
    // The cluster gets over it: a new leader with a higher ballot serves.
    cluster.wait_for_leader();
    cluster.ok(
        follower,
        &json!({"op": "put", "key": "auth", "value": "after"}),
    );
}

/// docs/security.md: every request to a path under `/paxos` must carry `Authorization: Bearer
/// <secret>`; anything else gets `401`, so an unauthenticated caller cannot even learn which peer
/// paths exist.
fn every_paxos_path_needs_the_secret(runtime: Runtime) {
    let cluster = Cluster::builder(runtime).secret("the-secret").start();
    for i in 0..cluster.len() {
        for path in ["/paxos/other", "/paxos/messages/extra", "/paxos/"] {
            let url = cluster.url(i, path);
            let post = cluster.client.post(&url, b"{}", &[]).unwrap();
            assert_eq!(
                post.status, 401,
                "POST {path} without the secret: {}",
                post.body
            );
            let get = cluster.client.get(&url).unwrap();
            assert_eq!(
                get.status, 401,
                "GET {path} without the secret: {}",
                get.body
            );
        }
        let get = cluster
            .client
            .get(&cluster.url(i, "/paxos/messages"))
            .unwrap();
        assert_eq!(
            get.status, 401,
            "GET /paxos/messages without the secret: {}",
            get.body
        );
    }
}

/// The secret proves a sender knows it, not that it belongs here: a message recorded in another
/// cluster that shares the secret, replayed here, is refused with `403` (counted in `/metrics`,
/// logged without the secret) and changes nothing.
fn replayed_from_another_cluster(runtime: Runtime) {
    let secret = format!("shared-s3cret-{}", std::process::id());
    let (cluster, leader, commit) = start_with_a_value(runtime, &secret);
    let before = fingerprint(&cluster);
    let bearer = format!("Bearer {secret}");
    let forgeries = forgeries(leader, commit);
    for i in 0..cluster.len() {
        for message in &forgeries {
            // What a member of cluster `auth-b`, with the same member ids, sends its peers.
            let captured = envelope(&cluster, "auth-b", leader, vec![message.clone()]);
            let response = post_envelope(&cluster, i, &captured, &bearer);
            assert_eq!(
                response.status,
                403,
                "{} from another cluster on member {i}: {}",
                message.kind(),
                response.body
            );
            assert_error_shape(403, &response.json());
            assert!(response.error_sentence().contains("auth-b"));
        }
    }
    assert_eq!(
        fingerprint(&cluster),
        before,
        "a message from another cluster changed a member's state"
    );
    for i in 0..cluster.len() {
        let value = cluster.ok(i, &json!({"op": "get", "key": "auth"}))["value"].clone();
        assert_eq!(value, json!("before"), "member {i}");
        let metrics = cluster
            .client
            .get(&cluster.url(i, "/metrics"))
            .unwrap()
            .body;
        let refused = format!("paxos_peer_cluster_mismatches_total {}", forgeries.len());
        assert!(
            metrics.contains(&refused),
            "member {i} /metrics:\n{metrics}"
        );
        let log = std::fs::read_to_string(&cluster.members[i].log).unwrap();
        assert!(
            log.contains("another cluster") && log.contains("auth-b"),
            "member {i} did not log the refusal:\n{log}"
        );
        assert!(!log.contains(&secret), "member {i} logged the secret");
    }

    // The control: the same message labelled with this cluster's name is taken.
    let prepare = envelope(
        &cluster,
        CLUSTER,
        leader,
        vec![Message::Prepare {
            ballot: huge_ballot(leader),
            from_slot: 1,
        }],
    );
    let follower = (leader + 1) % cluster.len();
    let response = post_envelope(&cluster, follower, &prepare, &bearer);
    assert_eq!(
        response.status, 204,
        "the same prepare from this cluster: {}",
        response.body
    );
}
