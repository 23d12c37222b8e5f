//! Log compaction: under endless writes the data dirs stay within a bound set by the snapshot
//! interval and the store, not by the number of writes; a member that lost its data dir catches
//! up from a snapshot.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use paxos_tests::{Cluster, Runtime, json, scenarios, wait_until};

scenarios! {
    data_dirs_stay_bounded_under_endless_writes,
    large_values_stay_within_the_byte_budgets,
    a_member_with_an_empty_data_dir_catches_up_from_a_snapshot,
}

/// Compact every this many slots, so that 50,000 writes compact dozens of times.
const SNAPSHOT_EVERY: u64 = 1_000;
/// Writes overwrite this many keys, so the store itself stays small.
const KEYS: u64 = 50;
const WRITERS: usize = 48;
const CATCH_UP: Duration = Duration::from_secs(60);

/// A put is about 500 bytes of log (its acceptance and its decision), so one interval of slots
/// is about 0.5 MB, and the snapshot of 50 short keys a few kilobytes. Without compaction the
/// 50,000 writes below would leave about 25 MB in each data dir.
const BOUND: u64 = 2 << 20;

/// The byte budgets of the large-value scenario, a quarter of the defaults' so that it runs in
/// seconds: compact after 16 MiB of values, keep 8 MiB of applied values in memory.
const SNAPSHOT_BYTES: u64 = 16 << 20;
const MAX_DECIDED_BYTES: u64 = 8 << 20;

/// Large values fill the log and the memory of applied values long before their slot counts do
/// (10,000 slots between compactions, 1,024 applied values kept), so both are bounded by bytes
/// as well: 200 puts of 500 KiB to one key leave each data dir within one byte budget of values
/// (and the store), and each member's peak memory far below the 200 MB that passed through it.
/// Counted by slots alone, each data dir would hold 200 MB (a follower wrote every value twice)
/// and each member's memory every value.
fn large_values_stay_within_the_byte_budgets(runtime: Runtime) {
    let cluster = Cluster::builder(runtime)
        .tuning("snapshot_bytes", SNAPSHOT_BYTES)
        .tuning("max_decided_bytes", MAX_DECIDED_BYTES)
        // Half-megabyte values through a busy two-core machine: what is measured is bytes, not
        // time, so a slow fsync must neither depose the leader nor time a put out.
        .tuning("election_timeout_ms", 2_000)
        .tuning("request_timeout_ms", 30_000)
        .start();
    let leader = cluster.wait_for_leader();
    let value = "v".repeat(500 << 10);
    for n in 0..200 {
        let command = json!({"op": "put", "key": "large", "value": format!("{n:03}{value}")});
        cluster.ok(leader, &command);
    }
    let index = cluster.commit_index(leader).expect("the leader's status");
    for i in 0..cluster.len() {
        cluster.wait_for_commit(i, index, CATCH_UP);
    }
    // One budget of values, the store (one value) and the records of a slot or two more.
    let bound = SNAPSHOT_BYTES + (4 << 20);
    // The runtime, its buffers, the values in flight and those queued for slow peers, with room
    // for an allocator that keeps what it freed. Sequential runs peak at 25 to 40 MiB; a leader
    // whose followers fall behind on a busy machine has peaked near 200 MiB, its peer queues
    // holding re-sent values. Counted by slots, 3,000 such puts took a member to 1.6 GiB.
    let peak_bound = 320 << 20;
    for i in 0..cluster.len() {
        let size = dir_size(&cluster.members[i].data_dir);
        assert!(
            size < bound,
            "member {i}'s data dir holds {size} bytes, over {bound}"
        );
        let pid = cluster.pid(i).expect("member runs");
        let peak = peak_memory(pid);
        println!(
            "member {i}: peak memory {} MiB, data dir {} MiB",
            peak >> 20,
            size >> 20
        );
        assert!(
            peak < peak_bound,
            "member {i} peaked at {peak} bytes of memory, over {peak_bound}"
        );
        assert!(
            metric(&cluster, i, "paxos_compactions_total") >= 4,
            "member {i} compacted too little"
        );
    }
    let read = cluster.ok(
        (leader + 1) % cluster.len(),
        &json!({"op": "get", "key": "large"}),
    );
    assert!(read["value"].as_str().is_some_and(|v| v.starts_with("199")));
}

/// The most resident memory process `pid` has held (`VmHWM`), in bytes.
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmHWM:")?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .expect("VmHWM in /proc status");
    kib << 10
}

fn data_dirs_stay_bounded_under_endless_writes(runtime: Runtime) {
    let cluster = Cluster::builder(runtime)
        .tuning("snapshot_every", SNAPSHOT_EVERY)
        .start();
    cluster.wait_for_leader();
    let mut largest = 0;
    // Five rounds of 10,000 writes; the data dirs are measured after each.
    let written = AtomicU64::new(0);
    for round in 1..=5 {
        put_concurrently(&cluster, &[0, 1, 2], &written, round * 10_000);
        let sizes: Vec<u64> = cluster
            .members
            .iter()
            .map(|m| dir_size(&m.data_dir))
            .collect();
        largest = largest.max(*sizes.iter().max().unwrap());
        assert!(
            sizes.iter().all(|&size| size < BOUND),
            "after {} writes the data dirs hold {sizes:?} bytes, over the bound of {BOUND}",
            round * 10_000
        );
    }
    println!("largest data dir over 50,000 writes: {largest} bytes");
    // Compaction happened on every member, and lost nothing: a fresh write to each key reads
    // back through every member.
    for i in 0..cluster.len() {
        assert!(
            metric(&cluster, i, "paxos_compactions_total") >= 40,
            "member {i} compacted fewer than 40 times in 50,000 writes"
        );
    }
    for key in 0..KEYS {
        let key = format!("key-{key}");
        let last = cluster.ok(0, &json!({"op": "get", "key": key}))["value"].clone();
        assert!(last.is_string(), "{key} lost its value: {last}");
        for i in 1..cluster.len() {
            let seen = cluster.ok(i, &json!({"op": "get", "key": key}))["value"].clone();
            assert_eq!(seen, last, "member {i} disagrees on {key}");
        }
    }
}

fn a_member_with_an_empty_data_dir_catches_up_from_a_snapshot(runtime: Runtime) {
    let mut cluster = Cluster::builder(runtime)
        .tuning("snapshot_every", 100)
        .start();
    let leader = cluster.wait_for_leader();
    let lost = (leader + 1) % cluster.len();
    cluster.kill(lost);
    std::fs::remove_dir_all(&cluster.members[lost].data_dir).expect("wipe the data dir");
    // Far more than the others keep in memory (the catch-up batch, 1,024 slots), so the lost
    // member cannot catch up with entries alone.
    let written = AtomicU64::new(0);
    let live: Vec<usize> = (0..cluster.len()).filter(|&i| i != lost).collect();
    put_concurrently(&cluster, &live, &written, 3_000);
    let target = cluster
        .commit_index(leader)
        .expect("the leader's commit index");
    cluster.start(lost);
    wait_until(
        &format!("member {lost}, started empty, applies up to {target}"),
        CATCH_UP,
        || {
            let status = cluster.status(lost)?;
            (status["applied_index"].as_u64()? >= target).then_some(())
        },
    );
    assert!(
        metric(&cluster, lost, "paxos_snapshots_installed_total") >= 1,
        "member {lost} caught up without a snapshot"
    );
    for key in 0..KEYS {
        let key = format!("key-{key}");
        let expected = cluster.ok(leader, &json!({"op": "get", "key": key}))["value"].clone();
        let seen = cluster.ok(lost, &json!({"op": "get", "key": key}))["value"].clone();
        assert_eq!(seen, expected, "member {lost} disagrees on {key}");
    }
}

/// Puts to the keys in turn, from [`WRITERS`] threads spread over `members`, until `written`
/// reaches `target`. Every put must succeed: nothing fails in these scenarios.
fn put_concurrently(cluster: &Cluster, members: &[usize], written: &AtomicU64, target: u64) {
    std::thread::scope(|scope| {
        for writer in 0..WRITERS {
            let url = cluster.url(members[writer % members.len()], "/client-request");
            scope.spawn(move || {
                loop {
                    let n = written.fetch_add(1, Ordering::Relaxed);
                    if n >= target {
                        written.fetch_sub(1, Ordering::Relaxed);
                        return;
                    }
                    let put = json!({"op": "put", "key": format!("key-{}", n % KEYS), "value": n.to_string()});
                    let response = cluster
                        .client
                        .post_json(&url, &put)
                        .unwrap_or_else(|e| panic!("put {n}: {e}"));
                    assert_eq!(response.status, 200, "put {n}: {}", response.body);
                }
            });
        }
    });
}

/// The bytes of every file in `dir`.
fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("a data dir")
        .filter_map(|entry| entry.ok()?.metadata().ok())
        .filter(|meta| meta.is_file())
        .map(|meta| meta.len())
        .sum()
}

/// A counter from member `i`'s `/metrics`.
fn metric(cluster: &Cluster, i: usize, name: &str) -> u64 {
    let page = cluster
        .client
        .get(&cluster.url(i, "/metrics"))
        .expect("/metrics");
    page.body
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no {name} in member {i}'s metrics")) as u64
}
