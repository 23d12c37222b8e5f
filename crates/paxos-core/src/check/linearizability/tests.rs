//! The checker on small histories, linearizable and not.

use std::time::Duration;

use super::*;
use crate::Command;

fn ms(n: u64) -> Time {
    Duration::from_millis(n)
}

fn list(items: &[&str]) -> Option<Value> {
    Some(Value::List(items.iter().map(|s| s.to_string()).collect()))
}

fn text(s: &str) -> Option<Value> {
    Some(Value::Str(s.to_owned()))
}

fn record(op: Op, invoke: u64, done: Option<(u64, Answer)>) -> OpRecord {
    OpRecord {
        client: 0,
        command: Command::new(op),
        invoke: ms(invoke),
        completion: done.map(|(at, answer)| (ms(at), answer)),
        attempts: 1,
        late_answer: None,
    }
}

fn append(v: &str, invoke: u64, done: Option<(u64, &[&str])>) -> OpRecord {
    let op = Op::Append {
        key: "k".into(),
        value: v.into(),
    };
    record(
        op,
        invoke,
        done.map(|(at, l)| (at, Answer::done(list(l), 0))),
    )
}

fn get(invoke: u64, done: u64, value: Option<Value>) -> OpRecord {
    record(
        Op::Get { key: "k".into() },
        invoke,
        Some((done, Answer::done(value, 0))),
    )
}

fn put(v: &str, invoke: u64, done: Option<u64>) -> OpRecord {
    let op = Op::Put {
        key: "k".into(),
        value: v.into(),
    };
    record(op, invoke, done.map(|at| (at, Answer::done(text(v), 0))))
}

fn cas(expected: Option<&str>, v: &str, invoke: u64, done: u64, answer: Answer) -> OpRecord {
    let op = Op::Cas {
        key: "k".into(),
        expected: expected.map(str::to_owned),
        value: v.into(),
    };
    record(op, invoke, Some((done, answer)))
}

fn linearizable(history: &[OpRecord]) -> bool {
    let result = check(history);
    result.is_empty()
}

#[test]
fn accepts_sequential_and_concurrent_appends() {
    assert!(linearizable(&[
        append("a", 0, Some((10, &["a"]))),
        append("b", 20, Some((30, &["a", "b"]))),
        get(40, 50, list(&["a", "b"])),
    ]));
    // Overlapping appends may take effect in either order.
    assert!(linearizable(&[
        append("a", 0, Some((30, &["b", "a"]))),
        append("b", 10, Some((20, &["b"]))),
    ]));
    assert!(linearizable(&[get(0, 1, None)]));
}

#[test]
fn accepts_unknown_outcomes_applied_late_or_never() {
    // `b` timed out, yet shows up in a read long after: it applied late.
    assert!(linearizable(&[
        append("a", 0, Some((10, &["a"]))),
        append("b", 5, None),
        get(20, 30, list(&["a"])),
        get(100, 110, list(&["a", "b"])),
    ]));
    // `c` timed out and never shows up: it never applied.
    assert!(linearizable(&[
        append("c", 0, None),
        append("a", 5, Some((10, &["a"]))),
        get(20, 30, list(&["a"])),
    ]));
}

#[test]
fn accepts_registers_with_cas() {
    assert!(linearizable(&[
        put("1", 0, Some(10)),
        cas(Some("1"), "2", 20, 30, Answer::done(text("2"), 0)),
        cas(Some("1"), "3", 40, 50, Answer::mismatch(text("2"), 0)),
        get(60, 70, text("2")),
        record(
            Op::Delete { key: "k".into() },
            80,
            Some((90, Answer::done(None, 0)))
        ),
        cas(None, "4", 100, 110, Answer::done(text("4"), 0)),
    ]));
    // A put whose outcome is unknown explains a concurrent read of its value.
    assert!(linearizable(&[put("1", 0, None), get(5, 15, text("1"))]));
}

#[test]
fn rejects_a_stale_read() {
    assert!(!linearizable(&[
        put("1", 0, Some(10)),
        put("2", 20, Some(30)),
        get(40, 50, text("1")),
    ]));
}

#[test]
fn rejects_a_lost_append() {
    assert!(!linearizable(&[
        append("a", 0, Some((10, &["a"]))),
        append("b", 20, Some((30, &["a", "b"]))),
        get(40, 50, list(&["b"])),
    ]));
}

#[test]
fn rejects_a_duplicated_append() {
    assert!(!linearizable(&[
        append("a", 0, Some((10, &["a"]))),
        get(20, 30, list(&["a", "a"])),
    ]));
    // Even when the append's outcome is unknown, it applies at most once.
    assert!(!linearizable(&[
        append("a", 0, None),
        get(20, 30, list(&["a", "a"]))
    ]));
}

#[test]
fn rejects_appends_reordered_against_real_time() {
    // `a` completed before `b` was invoked, so no read may show `b` first.
    assert!(!linearizable(&[
        append("a", 0, Some((10, &["a"]))),
        append("b", 20, None),
        get(40, 50, list(&["b", "a"])),
    ]));
    assert!(!linearizable(&[
        append("a", 0, Some((10, &["a"]))),
        append("b", 20, Some((30, &["b", "a"]))),
    ]));
}

#[test]
fn rejects_a_value_seen_before_it_was_written() {
    assert!(!linearizable(&[
        get(0, 10, list(&["a"])),
        append("a", 20, None)
    ]));
}

#[test]
fn rejects_cas_success_on_a_wrong_value() {
    assert!(!linearizable(&[
        put("1", 0, Some(10)),
        cas(Some("2"), "3", 20, 30, Answer::done(text("3"), 0)),
    ]));
    // And a mismatch that reports a value the key never held at that time.
    assert!(!linearizable(&[
        put("1", 0, Some(10)),
        cas(Some("1"), "3", 20, 30, Answer::mismatch(text("0"), 0)),
    ]));
}

/// Appends whose outcome is unknown, seen only by a late read, may have applied in any order;
/// trying every order would take forever, so the search must follow the read's order.
#[test]
fn many_unknown_appends_are_placed_by_what_was_read() {
    let values: Vec<String> = (0..40).map(|i| format!("v{i}")).collect();
    let mut history: Vec<OpRecord> = values.iter().map(|v| append(v, 0, None)).collect();
    let mut shuffled: Vec<&str> = values.iter().map(String::as_str).collect();
    shuffled.reverse();
    shuffled.swap(3, 17);
    history.push(get(100, 110, list(&shuffled)));
    assert!(linearizable(&history));
    // The same read, after an append that completed before the others began, in second place.
    history.push(append("first", 0, Some((0, &["first"]))));
    for op in &mut history[..40] {
        op.invoke = ms(1);
    }
    let mut wrong = shuffled.clone();
    wrong.insert(1, "first");
    history[40] = get(100, 110, list(&wrong));
    let errors = check(&history);
    assert_eq!(errors.len(), 1, "{errors:?}");
}

/// Likewise for puts whose outcome is unknown, each seen by one late read.
#[test]
fn many_unknown_puts_are_placed_by_what_was_read() {
    let mut history: Vec<OpRecord> = (0..40).map(|i| put(&format!("v{i}"), 0, None)).collect();
    for i in 0..40 {
        history.push(get(
            100 + 20 * i,
            110 + 20 * i,
            text(&format!("v{}", (i * 7) % 40)),
        ));
    }
    assert!(linearizable(&history));
    history.push(get(2000, 2010, text("v0")));
    assert!(
        !linearizable(&history),
        "v0 cannot come back after v7 replaced it"
    );
}

#[test]
fn rejects_reads_that_disagree_on_the_order() {
    let errors = check(&[
        append("a", 0, None),
        append("b", 0, None),
        get(10, 20, list(&["a", "b"])),
        get(10, 20, list(&["b"])),
    ]);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].contains("neither extends the other"),
        "{}",
        errors[0]
    );
}

#[test]
fn explains_what_does_not_fit() {
    let errors = check(&[put("1", 0, Some(10)), get(20, 30, None)]);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("key `k`: not linearizable"),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("cannot follow"), "{}", errors[0]);
}
