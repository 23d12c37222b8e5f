//! Storage faults on a real member's data dir: a log torn at its end (as a crash mid-write
//! leaves it) is cut back to its last whole record and the member serves again with every
//! acknowledged command; a record damaged in the middle (which no crash produces) stops the
//! member with status 1 and one message naming the file and the byte offset, while the others
//! keep serving.
//!
//! The tests rely only on the record format of the log file, `len: u32 LE | crc32: u32 LE |
//! payload`, never on which records it holds, so that compaction may rewrite the file freely.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use paxos_tests::{Cluster, Json, Runtime, json, scenarios, wait_until};

scenarios! {
    torn_tail_is_cut_off,
    damage_in_the_middle_stops_the_member,
}

/// The log file inside a data dir (see `paxos_host::data_dir::LOG_FILE`).
const LOG_FILE: &str = "paxos.log";
const HEADER: usize = 8;
const RESTART: Duration = Duration::from_secs(20);

/// Where each whole frame of `bytes` starts and ends, in order; panics on anything else, since
/// the tests only damage logs that a member wrote whole.
fn frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut frames = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        let len = u32::from_le_bytes(bytes[start..start + 4].try_into().unwrap()) as usize;
        let end = start + HEADER + len;
        assert!(end <= bytes.len(), "the member's log ends inside a frame");
        frames.push((start, end));
        start = end;
    }
    frames
}

/// Writes a few acknowledged commands through every member and waits until every member has
/// applied them (so each log holds them); returns what each key must hold.
fn acknowledged_writes(cluster: &Cluster) -> Vec<(String, Json)> {
    let mut expected = Vec::new();
    let mut list = Vec::new();
    for k in 0..9 {
        let i = k % cluster.len();
        let key = format!("sf-{k}");
        let value = format!("value-{k}");
        cluster.ok(i, &json!({"op": "put", "key": key, "value": value}));
        expected.push((key, json!(value)));
        list.push(format!("item-{k}"));
        cluster.ok(
            i,
            &json!({"op": "append", "key": "sf-list", "value": list.last().unwrap()}),
        );
    }
    expected.push(("sf-list".to_owned(), json!(list)));
    let leader = cluster.wait_for_leader();
    let commit = cluster
        .commit_index(leader)
        .expect("the leader's commit index");
    for i in 0..cluster.len() {
        wait_until(
            &format!("member {i} applied slot {commit}"),
            Duration::from_secs(10),
            || {
                let status = cluster.status(i)?;
                (status["applied_index"].as_u64()? >= commit).then_some(())
            },
        );
    }
    expected
}

/// Panics unless member `i` answers every key as `expected` (reads go through the log).
fn assert_serves(cluster: &Cluster, i: usize, expected: &[(String, Json)]) {
    for (key, value) in expected {
        let got = cluster.ok(i, &json!({"op": "get", "key": key}));
        assert_eq!(&got["value"], value, "key {key} on member {i}");
    }
}

/// What member `i` logged since it was last started.
fn last_run_log(cluster: &Cluster, i: usize) -> String {
    let log = std::fs::read_to_string(&cluster.members[i].log).expect("the member's log");
    let start = log.rfind("=== start #").expect("a start marker");
    log[start..].to_owned()
}

fn log_path(cluster: &Cluster, i: usize) -> PathBuf {
    cluster.members[i].data_dir.join(LOG_FILE)
}

/// Panics unless member `i` said, in its last start, that it cut `torn` bytes off its log, and
/// its log now holds whole records only (whichever they are: it may have appended more, or
/// compacted the file since).
fn assert_cut(cluster: &Cluster, i: usize, torn: usize) {
    let log = last_run_log(cluster, i);
    let said = log.lines().any(|line| {
        line.contains("cut a record torn by a crash")
            && line.contains(&format!("torn_bytes={torn}"))
    });
    assert!(said, "member {i} did not log cutting {torn} bytes:\n{log}");
    frames(&std::fs::read(log_path(cluster, i)).expect("the member's log"));
}

/// Restarts member `i` and waits until it has caught up with the leader's commit index.
fn restart_and_catch_up(cluster: &mut Cluster, i: usize) {
    cluster.start(i);
    let leader = cluster.wait_for_leader();
    let commit = cluster
        .commit_index(leader)
        .expect("the leader's commit index");
    cluster.wait_for_commit(i, commit, RESTART);
}

fn torn_tail_is_cut_off(runtime: Runtime) {
    let mut cluster = Cluster::builder(runtime).start();
    let expected = acknowledged_writes(&cluster);
    let victim = (cluster.wait_for_leader() + 1) % cluster.len();
    let path = log_path(&cluster, victim);

    // A crash in the middle of writing the last record: the file ends inside it.
    cluster.kill(victim);
    let whole = std::fs::read(&path).expect("the victim's log");
    let (last_start, last_end) = *frames(&whole).last().expect("records in the log");
    let cut = last_start + HEADER + (last_end - last_start - HEADER) / 2;
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(cut as u64).unwrap();
    drop(file);
    restart_and_catch_up(&mut cluster, victim);
    assert_cut(&cluster, victim, cut - last_start);
    assert_serves(&cluster, victim, &expected);

    // A crash that left part of a record's frame after the last whole one.
    cluster.kill(victim);
    let mut garbage = 200u32.to_le_bytes().to_vec();
    garbage.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    garbage.extend_from_slice(b"{\"record\":\"pro");
    OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(&garbage))
        .unwrap();
    restart_and_catch_up(&mut cluster, victim);
    assert_cut(&cluster, victim, garbage.len());
    assert_serves(&cluster, victim, &expected);
    for i in 0..cluster.len() {
        assert_serves(&cluster, i, &expected);
    }
}

fn damage_in_the_middle_stops_the_member(runtime: Runtime) {
    let mut cluster = Cluster::builder(runtime).start();
    let expected = acknowledged_writes(&cluster);
    let victim = (cluster.wait_for_leader() + 1) % cluster.len();
    let path = log_path(&cluster, victim);

    cluster.kill(victim);
    let mut bytes = std::fs::read(&path).expect("the victim's log");
    let frames = frames(&bytes);
    assert!(
        frames.len() >= 3,
        "too few records to damage one in the middle"
    );
    let (start, end) = frames[frames.len() / 2];
    bytes[start + HEADER + (end - start - HEADER) / 2] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();

    cluster.start(victim);
    let status = cluster
        .wait_exit(victim, RESTART)
        .expect("the member exits on a damaged log");
    assert_eq!(status.code(), Some(1), "exit status");
    let log = last_run_log(&cluster, victim);
    let offset = format!("byte offset {start}");
    let lines: Vec<&str> = log.lines().filter(|line| line.contains(&offset)).collect();
    assert_eq!(lines.len(), 1, "one message names the offset:\n{log}");
    assert!(
        lines[0].contains(&path.display().to_string()),
        "the message does not name the file: {}",
        lines[0]
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the member changed a log it refused"
    );

    // The others keep serving, reads and writes.
    let survivors: Vec<usize> = (0..cluster.len()).filter(|&i| i != victim).collect();
    for &i in &survivors {
        assert_serves(&cluster, i, &expected);
        cluster.ok(
            i,
            &json!({"op": "put", "key": "after", "value": i.to_string()}),
        );
    }
}
