//! Members on separate hosts: each member in a Linux network namespace of its own, with two
//! addresses and three names in its hosts file, the clients on a host of their own, partitions
//! made by taking links down (`tests/src/netns.rs`). Each scenario is skipped, with one line
//! saying why, where namespaces cannot be made (not root, no `ip`), and fails there instead
//! when `PAXOS_TESTS_REQUIRE_NETNS` is set.

use std::path::Path;
use std::time::{Duration, Instant};

use paxos_tests::cluster::{Exit, run_command_to_exit};
use paxos_tests::netns::{Lan, Network, PORT};
use paxos_tests::tempdir::TempDir;
use paxos_tests::{Cluster, Config, Runtime, json, scenarios, shuffled, wait_until};

scenarios! {
    discovery_across_hosts,
    discovery_refuses_configs_without_this_host,
    readdressed_member_finds_itself,
    partition_by_link_down,
    peers_reach_a_name_by_its_second_address,
    discovery_refuses_a_member_named_twice,
}

/// Every cluster here listens on addresses that are not loopback, so it needs a secret.
const SECRET: &str = "netns scenarios: the same long random string on every member";
/// The pause between two members' starts: minutes between real hosts, scaled down.
const START_GAP: Duration = Duration::from_secs(2);

/// The scenario's network of `hosts` hosts, or `None` (after one line saying why) where
/// namespaces cannot be made.
fn network(runtime: Runtime, scenario: &str, hosts: usize) -> Option<Network> {
    let module = match runtime {
        Runtime::Threaded => "threaded",
        Runtime::Async => "async_",
    };
    Network::for_scenario(&format!("hosts::{module}::{scenario}"), hosts)
}

/// Member `i`'s `/status` field `field` as a string.
fn status_str(cluster: &Cluster, i: usize, field: &str) -> Option<String> {
    cluster.status(i)?[field].as_str().map(str::to_owned)
}

/// Discovery finds every member whatever spelling the config gives it (any of its three names or
/// two addresses), with the members started in a random order seconds apart. Two clusters, one
/// after the other on the same hosts, spell their members in every one of the five ways between
/// them; each member finds itself under its own spelling as soon as it starts, and the cluster
/// serves from every member.
fn discovery_across_hosts(runtime: Runtime) {
    let Some(net) = network(runtime, "discovery_across_hosts", 3) else {
        return;
    };
    let took = Instant::now();
    // A random start order, then its reverse: every member starts first once and last once.
    let mut order = shuffled(net.hosts.len());
    for round in 0..2 {
        let entries: Vec<String> = net
            .hosts
            .iter()
            .enumerate()
            .map(|(i, host)| host.spellings()[(3 * round + i) % 5].clone())
            .collect();
        if round > 0 {
            order.reverse();
        }
        eprintln!("round {round}: servers {entries:?}, start order {order:?}");
        let mut cluster = Cluster::builder(runtime)
            .on_network(&net, &entries)
            .secret(SECRET)
            .build();
        for (n, &i) in order.iter().enumerate() {
            if n > 0 {
                std::thread::sleep(START_GAP);
            }
            cluster.start(i);
            // A member finds itself alone: its own entry answers, whoever else is up.
            let me = wait_until(
                &format!("member {i} ({}) finds itself", entries[i]),
                Duration::from_secs(20),
                || status_str(&cluster, i, "self"),
            );
            assert_eq!(me, entries[i], "member {i} found itself at the wrong entry");
        }
        let leader = cluster.wait_for_leader();
        let key = format!("round-{round}");
        for i in 0..cluster.len() {
            let status = cluster.status(i).expect("a status");
            assert_eq!(status["self"], json!(entries[i]), "member {i}: {status}");
            assert_eq!(status["servers"], json!(entries), "member {i}: {status}");
            let answer = cluster.ok(
                i,
                &json!({"op": "append", "key": key, "value": format!("m{i}")}),
            );
            assert_eq!(
                answer["value"].as_array().map(Vec::len),
                Some(i + 1),
                "member {i} appended to the wrong list: {answer}"
            );
        }
        let target = cluster.commit_index(leader).expect("the leader's status");
        for i in 0..cluster.len() {
            cluster.wait_for_commit(i, target, Duration::from_secs(20));
        }
    }
    eprintln!("discovery_across_hosts took {:?}", took.elapsed());
}

/// Runs a member of `runtime` on host `host` with `config` until it exits (at most `timeout`),
/// its files in `dir/<name>/`.
fn stray(
    runtime: Runtime,
    net: &Network,
    host: usize,
    config: &Config,
    dir: &Path,
    name: &str,
    timeout: Duration,
) -> Exit {
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir).expect("a directory for the stray member");
    let config_path = dir.join("cluster.json");
    config.write(&config_path);
    let mut command = Network::command(&net.hosts[host].ns, &runtime.binary());
    command
        .arg("--config")
        .arg(&config_path)
        .args(["--listen", &format!("0.0.0.0:{PORT}")])
        .arg("--data-dir")
        .arg(dir.join("data"));
    run_command_to_exit(command, &dir, timeout)
}

/// A config that names no entry this member answers to fails discovery with exit status 1 and
/// one line listing what each entry answered: at once when every entry is another live member
/// (each listed with that member's id), at the discovery timeout when some entry does not answer
/// (each listed with why: another member's id, connection refused, timed out).
fn discovery_refuses_configs_without_this_host(runtime: Runtime) {
    let Some(net) = network(runtime, "discovery_refuses_configs_without_this_host", 4) else {
        return;
    };
    let took = Instant::now();
    let hosts = &net.hosts;
    let entries = vec![
        hosts[0].short_entry(),
        hosts[1].names()[2].clone() + &format!(":{PORT}"),
        format!("{}:{PORT}", hosts[2].addr(Lan::A)),
    ];
    let cluster = Cluster::builder(runtime)
        .on_network(&net, &entries)
        .secret(SECRET)
        .start();
    let ids: Vec<String> = (0..cluster.len())
        .map(|i| status_str(&cluster, i, "server_id").expect("a server id"))
        .collect();
    let dir = TempDir::new("hosts-refusals");

    // Host 3 given the cluster's own config: every entry answers, with another member's id.
    let exit = stray(
        runtime,
        &net,
        3,
        &cluster.config,
        dir.path(),
        "others-only",
        Duration::from_secs(25),
    );
    let said = format!("{}{}", exit.stdout, exit.stderr);
    assert_eq!(exit.status.code(), Some(1), "exit status; output:\n{said}");
    assert!(
        exit.elapsed < Duration::from_secs(10),
        "took {:?} to see that every entry is another member (its timeout is 30 s)",
        exit.elapsed
    );
    for (entry, id) in entries.iter().zip(&ids) {
        let listed = format!("{entry} (answered another member's id {id})");
        assert!(
            exit.stderr.contains(&listed),
            "the message does not list `{listed}`; stderr:\n{}",
            exit.stderr
        );
    }
    eprintln!("others only: {}", exit.stderr.trim());

    // Host 3 given entries that are another member, a port of its own nobody listens on, and an
    // address nobody has: it waits for its timeout and lists each with what it last answered.
    let entries = vec![
        hosts[0].cluster_entry(),
        format!("{}:7009", hosts[3].label),
        format!("{}:{PORT}", Lan::A.address(99)),
    ];
    let timeout_ms = 3_000;
    let mut config = Config::fast(entries.clone())
        .set("discovery_timeout_ms", timeout_ms)
        .set("discovery_retry_ms", 200);
    config.secret = Some(SECRET.to_owned());
    let exit = stray(
        runtime,
        &net,
        3,
        &config,
        dir.path(),
        "nobody",
        Duration::from_secs(25),
    );
    let said = format!("{}{}", exit.stdout, exit.stderr);
    assert_eq!(exit.status.code(), Some(1), "exit status; output:\n{said}");
    assert!(
        exit.elapsed >= Duration::from_millis(timeout_ms - 100),
        "gave up after {:?}, before its timeout",
        exit.elapsed
    );
    assert!(
        exit.elapsed <= Duration::from_millis(timeout_ms) + Duration::from_secs(4),
        "gave up after {:?}, well past its timeout",
        exit.elapsed
    );
    let expected = [
        format!("{} (answered another member's id {})", entries[0], ids[0]),
        format!("{} (connection refused)", entries[1]),
        format!("{} (", entries[2]),
    ];
    for listed in &expected {
        assert!(
            exit.stderr.contains(listed.as_str()),
            "the message does not list `{listed}`; stderr:\n{}",
            exit.stderr
        );
    }
    eprintln!("nobody: {}", exit.stderr.trim());
    drop(cluster);
    eprintln!(
        "discovery_refuses_configs_without_this_host took {:?}",
        took.elapsed()
    );
}

/// A member whose host gets new addresses between two runs, its names kept (the hosts files
/// updated), finds itself again under the same entry, and the cluster carries on with its data:
/// the others reach it at its new addresses, it serves what was written before, and it keeps up
/// with what is written after.
fn readdressed_member_finds_itself(runtime: Runtime) {
    let Some(mut net) = network(runtime, "readdressed_member_finds_itself", 3) else {
        return;
    };
    let took = Instant::now();
    let entries: Vec<String> = vec![
        net.hosts[0].short_entry(),
        net.hosts[1].cluster_entry(),
        net.hosts[2].names()[2].clone() + &format!(":{PORT}"),
    ];
    let mut cluster = Cluster::builder(runtime)
        .on_network(&net, &entries)
        .secret(SECRET)
        .start();
    for n in 0..20 {
        cluster.ok(
            n % 3,
            &json!({"op": "append", "key": "before", "value": n.to_string()}),
        );
    }
    // The leader moves: the others must find it again by its name, and elect another meanwhile.
    let moved = cluster.wait_for_leader();
    let old_front = cluster.members[moved].reach;
    let status = cluster.terminate(moved, Duration::from_secs(10));
    assert!(status.success(), "member {moved} stopped with {status}");
    let addrs = net.readdress(moved);
    eprintln!(
        "member {moved} ({}) moved to {addrs:?}\n{}",
        entries[moved],
        net.describe()
    );
    cluster.members[moved].reach = net.hosts[moved].front();
    for n in 20..30 {
        let via = (moved + 1 + n % 2) % 3;
        cluster.ok(
            via,
            &json!({"op": "append", "key": "before", "value": n.to_string()}),
        );
    }
    cluster.start(moved);
    let me = wait_until(
        "the moved member finds itself",
        Duration::from_secs(20),
        || status_str(&cluster, moved, "self"),
    );
    assert_eq!(me, entries[moved]);
    let leader = cluster.wait_for_leader();
    eprintln!("member {leader} leads after the move");
    // It serves what was written before, and after, its move.
    let list = cluster.ok(moved, &json!({"op": "get", "key": "before"}));
    let expected: Vec<String> = (0..30).map(|n: usize| n.to_string()).collect();
    assert_eq!(list["value"], json!(expected), "the moved member's read");
    // What the others commit reaches it at its new address.
    for n in 0..10 {
        cluster.ok(
            (moved + 1) % 3,
            &json!({"op": "put", "key": format!("after-{n}"), "value": n.to_string()}),
        );
    }
    let target = cluster
        .commit_index((moved + 1) % 3)
        .expect("a commit index");
    cluster.wait_for_commit(moved, target, Duration::from_secs(20));
    // Nobody answers at its old address any more.
    let old = cluster
        .new_client(Duration::from_secs(2))
        .get(&format!("http://{old_front}/status"));
    assert!(old.is_err(), "its old address still answers: {old:?}");
    eprintln!("readdressed_member_finds_itself took {:?}", took.elapsed());
}

/// The leader's link to the cluster network is taken down (`ip link set ... down` on its switch
/// port, no proxy): the others elect a new leader and serve, while the old one, still reachable
/// by clients on the front network, commits nothing; the link comes back and the old leader
/// catches up with what was written without it.
fn partition_by_link_down(runtime: Runtime) {
    let Some(net) = network(runtime, "partition_by_link_down", 3) else {
        return;
    };
    let took = Instant::now();
    // Names on the cluster network only, so that the cut leaves the members no other way.
    let entries: Vec<String> = net.hosts.iter().map(|h| h.cluster_entry()).collect();
    let cluster = Cluster::builder(runtime)
        .on_network(&net, &entries)
        .secret(SECRET)
        .start();
    for n in 0..10 {
        cluster.ok(
            n % 3,
            &json!({"op": "append", "key": "log", "value": n.to_string()}),
        );
    }
    let old = cluster.wait_for_leader();
    let others: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    let cut_at = Instant::now();
    net.set_port(old, Lan::A, false);
    eprintln!("cut {}'s link to lan A", net.hosts[old].label);

    // The others agree on a new leader among themselves.
    let new = wait_until(
        "the others elect a new leader",
        Duration::from_secs(20),
        || {
            let leaders: Vec<Option<usize>> = others
                .iter()
                .map(|&i| cluster.leader_of(i, &cluster.status(i)?))
                .collect();
            let leader = leaders[0].filter(|l| others.contains(l))?;
            let says = status_str(&cluster, leader, "role")?;
            (leaders.iter().all(|l| *l == Some(leader)) && says == "leader").then_some(leader)
        },
    );
    eprintln!("member {new} leads after {:?}", cut_at.elapsed());
    for n in 10..20 {
        let via = others[n % 2];
        cluster.ok(
            via,
            &json!({"op": "append", "key": "log", "value": n.to_string()}),
        );
    }
    // The old leader still answers on the front network, but cannot commit.
    let before = cluster.commit_index(old).expect("the cut member's status");
    let refused = cluster.request(old, &json!({"op": "put", "key": "cut-off", "value": "1"}));
    assert_eq!(
        refused.status, 503,
        "a write to the cut-off old leader: {}",
        refused.body
    );
    assert_eq!(
        cluster.commit_index(old),
        Some(before),
        "the cut-off member committed"
    );

    net.heal_all();
    let healed_at = Instant::now();
    let target = cluster.commit_index(new).expect("the new leader's status");
    cluster.wait_for_commit(old, target, Duration::from_secs(20));
    eprintln!(
        "member {old} caught up {:?} after the heal",
        healed_at.elapsed()
    );
    let leader = cluster.wait_for_leader();
    let list = cluster.ok(old, &json!({"op": "get", "key": "log"}));
    let expected: Vec<String> = (0..20).map(|n: usize| n.to_string()).collect();
    assert_eq!(
        list["value"],
        json!(expected),
        "read through the old leader (now {leader} leads)"
    );
    eprintln!("partition_by_link_down took {:?}", took.elapsed());
}

/// Two entries of a config that name the same member (its short name and its address) make it
/// a list of more members than there are, whose majority needs one that does not exist. The
/// member named twice sees both entries echo its own id, and refuses the list with exit status 1
/// and one line that lists every entry with what it answered, whether or not the other members
/// are up. Another member given the list refuses it too when both entries answer it with the
/// same other id (here the named member runs a cluster of its own, so that it answers).
fn discovery_refuses_a_member_named_twice(runtime: Runtime) {
    let Some(net) = network(runtime, "discovery_refuses_a_member_named_twice", 2) else {
        return;
    };
    let took = Instant::now();
    let entries = vec![
        net.hosts[0].short_entry(),
        format!("{}:{PORT}", net.hosts[0].addr(Lan::A)),
        net.hosts[1].short_entry(),
    ];
    let mut config = Config::fast(entries.clone());
    config.secret = Some(SECRET.to_owned());
    let dir = TempDir::new("hosts-twice");
    let limit = Duration::from_secs(10);
    let refused = |exit: Exit, host: usize, expected: [&str; 3]| {
        let said = format!("{}{}", exit.stdout, exit.stderr);
        assert_eq!(exit.status.code(), Some(1), "host {host}: {said}");
        assert!(
            exit.stderr
                .contains("servers names one member twice: entries 0 and 1"),
            "host {host}: {said}"
        );
        for (entry, answer) in entries.iter().zip(expected) {
            let listed = format!("{entry} ({answer}");
            assert!(
                exit.stderr.contains(&listed),
                "host {host} does not list `{listed}`: {said}"
            );
        }
        eprintln!("host {host}: {}", exit.stderr.trim());
    };

    // The member named twice, alone: entry 2's host runs nothing yet.
    let exit = stray(runtime, &net, 0, &config, dir.path(), "named", limit);
    // Two entries with its own id settle it, whatever entry 2 has answered by then.
    let mine = "answered my own id)";
    refused(exit, 0, [mine, mine, ""]);

    // Another member, while the named one serves a cluster of its own.
    let single = Cluster::builder(runtime)
        .on_network(&net, &entries[..1])
        .secret(SECRET)
        .start();
    let id = status_str(&single, 0, "server_id").expect("a server id");
    let exit = stray(runtime, &net, 1, &config, dir.path(), "other", limit);
    let other = format!("answered another member's id {id})");
    refused(exit, 1, [&other, &other, ""]);
    drop(single);
    eprintln!(
        "discovery_refuses_a_member_named_twice took {:?}",
        took.elapsed()
    );
}

/// A member named by a name with two addresses (`nodeI`: lan A's, then lan B's) stays reachable
/// when its first address is not: the leader's cluster-network port is taken down, and the
/// cluster carries on over the front network, every member serving writes and keeping up.
///
/// Each address of a name gets its share of the connect timeout on both servers (ureq's way on
/// threads; `peers::connect_any` on tokio), so a first address behind a port that is down, which
/// hangs a connect rather than refusing it, does not cut the member off.
fn peers_reach_a_name_by_its_second_address(runtime: Runtime) {
    let Some(net) = network(runtime, "peers_reach_a_name_by_its_second_address", 3) else {
        return;
    };
    let took = Instant::now();
    let entries: Vec<String> = net.hosts.iter().map(|h| h.short_entry()).collect();
    let cluster = Cluster::builder(runtime)
        .on_network(&net, &entries)
        .secret(SECRET)
        .start();
    let cut = cluster.wait_for_leader();
    cluster.ok(cut, &json!({"op": "put", "key": "before", "value": "x"}));
    net.set_port(cut, Lan::A, false);
    let cut_at = Instant::now();
    // Every member, the cut one included, serves a write again: its peers reach it over lan B.
    for i in (0..3).map(|n| (cut + n) % 3) {
        wait_until(
            &format!(
                "member {i} serves a write with {}'s lan A link down",
                net.hosts[cut].label
            ),
            Duration::from_secs(30),
            || {
                let put = json!({"op": "put", "key": format!("during-{i}"), "value": "y"});
                let answer = cluster.try_request(i, &put).ok()?;
                (answer.status == 200).then_some(())
            },
        );
        eprintln!("member {i} serves {:?} after the cut", cut_at.elapsed());
    }
    let target = (0..3)
        .filter_map(|i| cluster.commit_index(i))
        .max()
        .expect("a commit index");
    for i in 0..3 {
        cluster.wait_for_commit(i, target, Duration::from_secs(20));
    }
    eprintln!(
        "peers_reach_a_name_by_its_second_address took {:?}",
        took.elapsed()
    );
}
