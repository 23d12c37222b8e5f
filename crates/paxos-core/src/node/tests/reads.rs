//! Reads without a log slot: read rounds at the leader, read indexes at followers, and what
//! keeps a leader that may be deposed from answering.

use super::*;
use crate::Consistency;

fn get() -> Command {
    Command::new(Op::Get { key: "k".into() })
}

fn serializable_get() -> Command {
    Command {
        consistency: Consistency::Serializable,
        ..get()
    }
}

fn list(items: &[&str]) -> Option<Value> {
    Some(Value::List(items.iter().map(|s| s.to_string()).collect()))
}

/// The value of `id`'s answer at member `m`, if it was answered.
fn answer(h: &Hand, m: MemberId, id: RequestId) -> Option<Option<Value>> {
    h.answered[m]
        .iter()
        .find(|(answered, _)| *answered == id)
        .map(|(_, answer)| match answer {
            Answer::Done { value, .. } => value.clone(),
            other => panic!("a read answered {other:?}"),
        })
}

/// Elects node 0 with node 1's promise and decides `append(value)` in slot 1 with node 1: node
/// 0 has then committed a slot of its ballot, and node 1 has applied it. Node 2 heard nothing.
fn leader_with_one_write(h: &mut Hand, value: &str) {
    h.elect(0, &[1]);
    h.nodes[0].submit(h.now, append(value));
    h.carry_out(0);
    h.deliver(0, 1, "accept");
    h.deliver(1, 0, "accepted");
    assert_eq!(h.nodes[0].status().commit_index, 1);
    h.deliver(0, 1, "commit");
    assert_eq!(h.nodes[1].status().commit_index, 1);
    h.wire.retain(|(_, to, _)| *to != 2);
}

/// A read at the leader costs one round of acknowledgements from a majority: no slot, no
/// accept, no record.
/// A second later, leader 0's heartbeat reaches node 2 alone; everything else on the wire is
/// dropped.
fn heartbeat_to_node_2(h: &mut Hand) {
    h.now += Duration::from_secs(1);
    let now = h.now;
    h.nodes[0].handle_timeout(now);
    h.carry_out(0);
    h.wire.retain(|(_, to, m)| *to == 2 && m.kind() == "commit");
    h.deliver(0, 2, "commit");
}

#[test]
fn a_read_at_the_leader_is_answered_after_a_majority_acknowledges() {
    let mut h = Hand::new(3);
    leader_with_one_write(&mut h, "x");
    let records = h.logs[0].len();
    let id = h.nodes[0].submit(h.now, get());
    h.carry_out(0);
    assert_eq!(answer(&h, 0, id), None, "not before a round confirms");
    // The round goes out at once, in a commit that names it, not at the next heartbeat.
    let round = |m: &Message| matches!(m, Message::Commit { read: 1, .. });
    assert_eq!(h.wire.iter().filter(|(_, _, m)| round(m)).count(), 2);
    assert_eq!(h.deliver(0, 1, "commit"), 1);
    assert_eq!(h.deliver(1, 0, "read_ack"), 1);
    assert_eq!(answer(&h, 0, id), Some(list(&["x"])));
    assert_eq!(h.logs[0].len(), records, "the read wrote nothing");
    // Its incarnation and promise, and the write's acceptance and decision.
    assert_eq!(h.logs[1].len(), 4, "node 1 wrote nothing for the read");
    assert!(h.wire.iter().all(|(_, _, m)| m.kind() != "accept"));
    let stats = h.nodes[0].stats();
    assert_eq!((stats.read_rounds, stats.reads_linearizable), (1, 1));
    assert_eq!(stats.slots_proposed, 1);
}

/// One round covers every read that arrived before it began; a read that arrives while a round
/// is in flight waits for the next one, which begins as soon as the first is confirmed.
#[test]
fn reads_share_a_round_and_a_late_one_waits_for_the_next() {
    let mut h = Hand::new(3);
    leader_with_one_write(&mut h, "x");
    let early = [
        h.nodes[0].submit(h.now, get()),
        h.nodes[0].submit(h.now, get()),
    ];
    h.carry_out(0);
    let late = h.nodes[0].submit(h.now, get());
    h.carry_out(0);
    h.deliver(0, 1, "commit");
    h.deliver(1, 0, "read_ack");
    assert!(early.iter().all(|&id| answer(&h, 0, id).is_some()));
    assert_eq!(answer(&h, 0, late), None, "its round began after the first");
    h.deliver(0, 1, "commit");
    h.deliver(1, 0, "read_ack");
    assert_eq!(answer(&h, 0, late), Some(list(&["x"])));
    assert_eq!(h.nodes[0].stats().read_rounds, 2);
}

/// A follower asks the leader for a read index and answers from its own store once it has
/// applied that far, catching up first if it must.
#[test]
fn a_read_at_a_follower_goes_through_a_read_index() {
    let mut h = Hand::new(3);
    leader_with_one_write(&mut h, "x");
    // Node 2 learns who leads, but missed slot 1; its catch-up request waits on the wire.
    heartbeat_to_node_2(&mut h);
    assert_eq!(h.nodes[2].status().leader, Some(0));
    assert_eq!(h.nodes[2].status().commit_index, 0);

    let id = h.nodes[2].submit(h.now, get());
    h.carry_out(2);
    assert_eq!(h.deliver(2, 0, "read_index"), 1);
    assert_eq!(h.deliver(0, 1, "commit"), 1);
    assert_eq!(h.deliver(1, 0, "read_ack"), 1);
    let [Message::ReadIndexOk { index: 1, .. }] = h
        .wire
        .iter()
        .filter(|(_, to, m)| *to == 2 && m.kind() == "read_index_ok")
        .map(|(_, _, m)| m.clone())
        .collect::<Vec<_>>()[..]
    else {
        panic!("one read index for node 2: {:?}", h.wire);
    };
    assert_eq!(h.deliver(0, 2, "read_index_ok"), 1);
    assert_eq!(answer(&h, 2, id), None, "node 2 has not applied slot 1");
    assert_eq!(h.deliver(2, 0, "catch_up"), 1);
    assert_eq!(h.deliver(0, 2, "decided"), 1);
    assert_eq!(answer(&h, 2, id), Some(list(&["x"])));
    assert_eq!(h.nodes[0].stats().slots_proposed, 1, "no slot for the read");
}

/// A new leader answers no read before it has committed a slot of its own ballot: with nothing
/// else to propose, it proposes a no-op for that at once.
#[test]
fn a_new_leader_reads_only_after_committing_a_slot_of_its_ballot() {
    let mut h = Hand::new(3);
    h.elect(0, &[1]);
    let id = h.nodes[0].submit(h.now, get());
    h.carry_out(0);
    assert!(
        h.wire
            .iter()
            .all(|(_, _, m)| !matches!(m, Message::Commit { read, .. } if *read > 0)),
        "no round before a slot of the ballot is committed"
    );
    let [Message::Accept { entries, .. }] = &h
        .wire
        .iter()
        .filter(|(_, to, m)| *to == 1 && m.kind() == "accept")
        .map(|(_, _, m)| m.clone())
        .collect::<Vec<_>>()[..]
    else {
        panic!("one accept to node 1");
    };
    assert_eq!(entries[0].value, LogValue::Noop);
    h.deliver(0, 1, "accept");
    h.deliver(1, 0, "accepted");
    assert_eq!(answer(&h, 0, id), None, "the round has only begun");
    h.deliver(0, 1, "commit");
    h.deliver(1, 0, "read_ack");
    assert_eq!(answer(&h, 0, id), Some(None));
}

/// A leader cut off from the others after a newer one took over gets no majority for its round,
/// and answers nothing; its read goes to the new leader once it hears of it. A leader sabotaged
/// to skip the round answers at once, from a store that misses the new leader's write.
#[test]
fn a_deposed_leader_cannot_answer_a_linearizable_read() {
    for sabotaged in [false, true] {
        let mut h = Hand::new(3);
        h.nodes[0].unconfirmed_reads = sabotaged;
        leader_with_one_write(&mut h, "x");
        // Node 0 is cut off: node 2 leads with node 1 and decides a second append.
        h.wire.clear();
        h.elect(2, &[1]);
        h.nodes[2].submit(h.now, append("y"));
        h.carry_out(2);
        h.deliver(2, 1, "accept");
        h.deliver(1, 2, "accepted");
        assert_eq!(h.nodes[2].store().peek("k"), list(&["x", "y"]).as_ref());
        assert_eq!(
            h.nodes[0].status().role,
            Role::Leader,
            "node 0 heard nothing"
        );

        let id = h.nodes[0].submit(h.now, get());
        h.carry_out(0);
        if sabotaged {
            assert_eq!(answer(&h, 0, id), Some(list(&["x"])), "the stale read");
            continue;
        }
        assert_eq!(answer(&h, 0, id), None);
        // Its round reaches node 1, which promised node 2's higher ballot and says so.
        h.deliver(0, 1, "commit");
        assert!(h.wire.iter().all(|(_, _, m)| m.kind() != "read_ack"));
        h.deliver(1, 0, "nack");
        assert_eq!(h.nodes[0].status().role, Role::Follower);
        assert_eq!(answer(&h, 0, id), None);
        // Node 2's heartbeat reaches node 0, which asks it for the read index.
        h.now += Duration::from_secs(1);
        let now = h.now;
        h.nodes[2].handle_timeout(now);
        h.carry_out(2);
        h.wire.retain(|(_, to, m)| *to == 0 && m.kind() == "commit");
        h.deliver(2, 0, "commit");
        h.deliver(0, 2, "read_index");
        h.deliver(2, 1, "commit");
        h.deliver(1, 2, "read_ack");
        h.deliver(2, 0, "read_index_ok");
        h.deliver(0, 2, "catch_up");
        h.deliver(2, 0, "decided");
        assert_eq!(answer(&h, 0, id), Some(list(&["x", "y"])));
    }
}

/// A serializable read is answered at once from the member's own store, stale or not, without
/// a message.
#[test]
fn a_serializable_read_is_answered_at_once() {
    let mut h = Hand::new(3);
    leader_with_one_write(&mut h, "x");
    // Node 2 missed slot 1: its answer is stale, and says which slot it reflects.
    let stale = h.nodes[2].submit(h.now, serializable_get());
    let fresh = h.nodes[1].submit(h.now, serializable_get());
    let wire = h.wire.len();
    assert_eq!(h.carry_out(2).len(), 1);
    assert_eq!(h.carry_out(1).len(), 1);
    assert_eq!(h.wire.len(), wire, "no message");
    assert_eq!(answer(&h, 2, stale), Some(None));
    assert!(matches!(h.answered[2][0].1, Answer::Done { index: 0, .. }));
    assert_eq!(answer(&h, 1, fresh), Some(list(&["x"])));
    assert_eq!(h.nodes[1].stats().reads_serializable, 1);
}

/// A read whose ask goes unanswered is asked again after an election timeout, and is given up
/// at the request timeout like a write.
#[test]
fn an_unanswered_read_is_asked_again_and_then_given_up() {
    let mut h = Hand::new(3);
    leader_with_one_write(&mut h, "x");
    let id = h.nodes[1].submit(h.now, get());
    h.carry_out(1);
    h.wire.clear();
    let tuning = Tuning::default();
    let retry = h.now + tuning.election_timeout;
    assert_eq!(h.nodes[1].poll_timeout(), retry);
    h.nodes[1].handle_timeout(retry);
    h.carry_out(1);
    let asks = |h: &Hand| {
        h.wire
            .iter()
            .filter(|(_, _, m)| matches!(m, Message::ReadIndex { id: asked } if *asked == id))
            .count()
    };
    assert_eq!(asks(&h), 1);
    h.wire.clear();
    let expired = retry + tuning.request_timeout;
    h.nodes[1].handle_timeout(expired);
    h.carry_out(1);
    assert_eq!(asks(&h), 0, "given up");
    assert_eq!(h.nodes[1].reads.unanswered(), 0);
}

/// A leader holds at most `max_reads_waiting` reads. Past it, its own client's read is answered
/// `Overloaded` at once, and a follower's ask is refused, which the follower answers its client
/// the same way; once the round in flight is confirmed, reads are taken again.
#[test]
fn reads_past_the_cap_are_refused_and_taken_again_once_a_round_confirms() {
    let overloaded = |h: &Hand, m: MemberId, id: RequestId| {
        h.answered[m]
            .iter()
            .any(|(answered, a)| *answered == id && matches!(a, Answer::Overloaded { .. }))
    };
    let tuning = Tuning {
        max_reads_waiting: 2,
        ..Tuning::default()
    };
    let mut h = Hand::tuned(3, tuning);
    leader_with_one_write(&mut h, "x");
    // Node 2 learns who leads from a heartbeat.
    heartbeat_to_node_2(&mut h);
    assert_eq!(h.nodes[2].status().leader, Some(0));

    // Two reads fill the round, which nobody acknowledges yet.
    let held = [
        h.nodes[0].submit(h.now, get()),
        h.nodes[0].submit(h.now, get()),
    ];
    h.carry_out(0);
    let own = h.nodes[0].submit(h.now, get());
    h.carry_out(0);
    assert!(overloaded(&h, 0, own), "the leader's own third read");
    let asked = h.nodes[2].submit(h.now, get());
    h.carry_out(2);
    assert_eq!(h.deliver(2, 0, "read_index"), 1);
    assert_eq!(h.deliver(0, 2, "read_index_refused"), 1);
    assert!(overloaded(&h, 2, asked), "the follower's read");
    assert_eq!(h.nodes[0].stats().reads_refused, 2);
    assert_eq!(h.nodes[2].reads.unanswered(), 0, "node 2 forgot the read");
    assert!(held.iter().all(|&id| answer(&h, 0, id).is_none()));

    // The round is confirmed: its reads are answered, and the next ask is taken.
    h.deliver(0, 1, "commit");
    assert_eq!(h.deliver(1, 0, "read_ack"), 1);
    assert!(
        held.iter()
            .all(|&id| answer(&h, 0, id) == Some(list(&["x"])))
    );
    let again = h.nodes[2].submit(h.now, get());
    h.carry_out(2);
    assert_eq!(h.deliver(2, 0, "read_index"), 1);
    h.deliver(0, 1, "commit");
    assert_eq!(h.deliver(1, 0, "read_ack"), 1);
    assert_eq!(h.deliver(0, 2, "read_index_ok"), 1);
    h.deliver(2, 0, "catch_up");
    h.deliver(0, 2, "decided");
    assert_eq!(answer(&h, 2, again), Some(list(&["x"])));
    assert_eq!(h.nodes[0].stats().reads_refused, 2);
}
