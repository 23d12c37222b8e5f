//! Members that disagree on who the members are: a member started with another `servers` list
//! is refused by the others (`409`, logged and counted with both lists' memberships) and never
//! counts toward a quorum, while the members that agree keep serving.

use std::time::Duration;

use paxos_tests::{Cluster, Runtime, json, scenarios, wait_until};

scenarios! {
    a_member_with_another_list_is_refused,
}

fn a_member_with_another_list_is_refused(runtime: Runtime) {
    let mut cluster = Cluster::builder(runtime).build();
    // Member 2 is given the same servers in another order: to it, member 0 is member 1.
    let mut stale = cluster.config.clone();
    stale.servers.swap(0, 1);
    cluster.set_member_config(2, stale);
    cluster.start_all();

    // Members 0 and 1 agree on a leader between them and serve.
    let leader = wait_until(
        "members 0 and 1 agree on a leader",
        Duration::from_secs(20),
        || {
            let leaders: Vec<_> = [0, 1]
                .iter()
                .map(|&i| cluster.status(i).and_then(|s| cluster.leader_of(i, &s)))
                .collect();
            leaders[0].filter(|_| leaders[0] == leaders[1])
        },
    );
    assert!(leader < 2, "member 2 cannot lead the others: {leader}");
    for i in 0..2 {
        cluster.ok(
            i,
            &json!({"op": "put", "key": "k", "value": format!("v{i}")}),
        );
    }

    // Each of them refused member 2's messages, said why, and counted them with both lists.
    let ours = membership(&cluster, 0);
    let theirs = membership(&cluster, 2);
    assert_ne!(ours, theirs);
    for i in 0..2 {
        let sample = format!(
            "paxos_peer_membership_mismatches_total{{ours=\"{ours}\",theirs=\"{theirs}\"}}"
        );
        let metrics = wait_until(
            &format!("member {i} counts member 2's refused messages"),
            Duration::from_secs(10),
            || {
                let body = cluster.client.get(&cluster.url(i, "/metrics")).ok()?.body;
                body.contains(&sample).then_some(body)
            },
        );
        assert!(
            metrics.contains("paxos_peer_requests_rejected_total"),
            "{metrics}"
        );
        let log = std::fs::read_to_string(&cluster.members[i].log).unwrap();
        assert!(
            log.contains("another member list") && log.contains(&theirs),
            "member {i} did not log the refusal:\n{log}"
        );
    }
    // Member 2 never learns a leader: nobody takes its messages, and it takes nobody's.
    let status = cluster.status(2).expect("member 2 answers /status");
    assert_eq!(status["leader"], json!(null), "{status}");
    assert_eq!(status["commit_index"], json!(0), "{status}");

    // Member 2 never counts toward a quorum: with the leader gone, the other member and member 2
    // are two of three, yet no command commits.
    let survivor = 1 - leader;
    cluster.kill(leader);
    let answer = cluster.request(survivor, &json!({"op": "put", "key": "k", "value": "lost"}));
    assert_eq!(
        answer.status, 503,
        "a command committed without a quorum: {}",
        answer.body
    );
    let value = cluster.status(survivor).unwrap();
    assert_ne!(value["role"], json!("leader"), "{value}");
}

/// The membership member `i` shows in `/status`.
fn membership(cluster: &Cluster, i: usize) -> String {
    let status = cluster.status(i).expect("/status");
    status["membership"]
        .as_str()
        .unwrap_or_else(|| panic!("member {i} /status has no membership: {status}"))
        .to_owned()
}
