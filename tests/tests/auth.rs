//! Peer authentication: with a `secret`, `/paxos/*` without the right bearer token gets `401`
//! and changes nothing, however tempting the forged message.

use paxos_core::message::{Entry, Envelope, LogValue, Message, Request, RequestId};
use paxos_core::{Ballot, Command, Op};
use paxos_tests::fixtures::assert_error_shape;
use paxos_tests::{Cluster, Json, Runtime, json, scenarios};

scenarios! {
    peer_authentication,
    every_paxos_path_needs_the_secret,
}

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

fn peer_authentication(runtime: Runtime) {
    let secret = format!("s3cret-{}", std::process::id());
    let cluster = Cluster::builder(runtime)
        .secret(&secret)
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
    let before = fingerprint(&cluster);

    // Forgeries that would each change something if they were believed.
    let huge = Ballot {
        round: 1 << 40,
        member: leader,
    };
    let forged_value = LogValue::Request(Request {
        id: RequestId {
            member: leader,
            incarnation: 42,
            n: 1,
        },
        command: Command::new(Op::Put {
            key: "auth".into(),
            value: "forged".into(),
        }),
    });
    let forgeries = [
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
    ];
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
            let body = serde_json::to_vec(&Envelope::new(leader, vec![message.clone()])).unwrap();
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
    let catch_up = Envelope::new(follower, vec![Message::CatchUp { from_slot: 1 }]);
    let bearer = format!("Bearer {secret}");
    let response = cluster
        .client
        .post(
            &cluster.url(leader, "/paxos/messages"),
            &serde_json::to_vec(&catch_up).unwrap(),
            &[("Authorization", &bearer)],
        )
        .unwrap();
    assert_eq!(
        response.status, 204,
        "an authenticated catch-up: {}",
        response.body
    );

    // The control for the fingerprint: the forged prepare, sent with the secret, is believed,
    // and the follower's promised ballot shows it.
    let prepare = Envelope::new(
        leader,
        vec![Message::Prepare {
            ballot: huge,
            from_slot: 1,
        }],
    );
    let response = cluster
        .client
        .post(
            &cluster.url(follower, "/paxos/messages"),
            &serde_json::to_vec(&prepare).unwrap(),
            &[("Authorization", &bearer)],
        )
        .unwrap();
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

/// api.md: "every `/paxos/*` request must carry `Authorization: Bearer <secret>`; anything else
/// gets `401`", so an unauthenticated caller cannot even learn which peer paths exist.
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
