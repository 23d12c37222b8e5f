//! Fuzzing the decoding of peer messages: `serde_json` into [`Envelope`] and [`Message`], which
//! every `POST /paxos/messages` body reaches once it passed the secret check.
//!
//! Properties: no input panics the decoder, and whatever decodes serializes back to JSON that
//! decodes to the same value (so a member never forwards something it cannot read again). The
//! inputs are arbitrary bytes, and the samples of `shared/fixtures/peer-messages.json` (every
//! variant) mutated in their JSON tree (a value replaced by one of another type or size, a field
//! dropped, an element repeated) and in their bytes (flipped, cut, spliced).

mod fuzz_support;
#[path = "fuzz_support/json_tree.rs"]
mod json_tree;

use std::path::PathBuf;
use std::sync::LazyLock;

use json_tree::json_tree;
use paxos_core::{Envelope, Message};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value as Json, json};

/// The envelopes of the wire fixtures, as JSON.
static SEEDS: LazyLock<Vec<Json>> = LazyLock::new(|| {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/peer-messages.json");
    let text = std::fs::read_to_string(&path).expect("the peer message fixtures");
    let samples: Vec<Json> = serde_json::from_str(&text).expect("fixtures are JSON");
    samples.iter().map(|s| s["envelope"].clone()).collect()
});

fn seed() -> impl Strategy<Value = Json> {
    any::<Index>().prop_map(|i| i.get(&SEEDS).clone())
}

/// What to put in place of a value: other types, integers past `u64` and `usize`, negative
/// numbers where counts go, long strings, and nesting.
fn replacement() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        Just(json!(u64::MAX)),
        Just(serde_json::from_str::<Json>("18446744073709551616").unwrap()),
        Just(json!(-1)),
        any::<f64>().prop_map(Json::from),
        "\\PC{0,12}".prop_map(Json::from),
        prop_oneof![
            Just("prepare"),
            Just("promise"),
            Just("snapshot"),
            Just("noop"),
            Just("request"),
        ]
        .prop_map(Json::from),
        (0usize..5000).prop_map(|n| Json::from("x".repeat(n))),
    ];
    json_tree(leaf, 3, 12, 3)
}

#[derive(Clone, Debug)]
enum TreeMutation {
    /// Replace the value there.
    Replace(Json),
    /// Drop it from its object or array.
    Remove,
    /// Repeat it in its array (or re-insert it under a second name in its object).
    Repeat,
}

fn tree_mutation() -> impl Strategy<Value = (Index, TreeMutation)> {
    let action = prop_oneof![
        replacement().prop_map(TreeMutation::Replace),
        Just(TreeMutation::Remove),
        Just(TreeMutation::Repeat),
    ];
    (any::<Index>(), action)
}

/// How many values the tree holds, itself included.
fn size(json: &Json) -> usize {
    1 + match json {
        Json::Array(items) => items.iter().map(size).sum(),
        Json::Object(fields) => fields.values().map(size).sum(),
        _ => 0,
    }
}

/// Applies `mutation` to the `target`-th value below `json` in pre-order (0 is its first child).
/// Returns how many values it passed without reaching the target.
fn mutate(json: &mut Json, target: usize, mutation: &TreeMutation) -> Result<(), usize> {
    let mut passed = 0;
    match json {
        Json::Array(items) => {
            for i in 0..items.len() {
                if passed == target {
                    match mutation {
                        TreeMutation::Replace(value) => items[i] = value.clone(),
                        TreeMutation::Remove => drop(items.remove(i)),
                        TreeMutation::Repeat => items.insert(i, items[i].clone()),
                    }
                    return Ok(());
                }
                passed += 1;
                match mutate(&mut items[i], target - passed, mutation) {
                    Ok(()) => return Ok(()),
                    Err(n) => passed += n,
                }
            }
        }
        Json::Object(fields) => {
            let keys: Vec<String> = fields.keys().cloned().collect();
            for key in keys {
                if passed == target {
                    match mutation {
                        TreeMutation::Replace(value) => drop(fields.insert(key, value.clone())),
                        TreeMutation::Remove => drop(fields.remove(&key)),
                        TreeMutation::Repeat => {
                            let value = fields[&key].clone();
                            fields.insert(format!("{key}_"), value);
                        }
                    }
                    return Ok(());
                }
                passed += 1;
                match mutate(fields.get_mut(&key).unwrap(), target - passed, mutation) {
                    Ok(()) => return Ok(()),
                    Err(n) => passed += n,
                }
            }
        }
        _ => {}
    }
    Err(passed)
}

#[derive(Clone, Debug)]
enum ByteMutation {
    Flip(Index, u8),
    Cut(Index),
    Delete(Index, Index),
    Insert(Index, Vec<u8>),
}

fn byte_mutation() -> impl Strategy<Value = ByteMutation> {
    prop_oneof![
        (any::<Index>(), 1u8..).prop_map(|(i, x)| ByteMutation::Flip(i, x)),
        any::<Index>().prop_map(ByteMutation::Cut),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| ByteMutation::Delete(a, b)),
        (
            any::<Index>(),
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 1..8),
                Just(b"{".to_vec()),
                Just(b"[[[[".to_vec()),
                Just(b"\"\\u0000\"".to_vec()),
                Just(b"1e999".to_vec()),
                Just(b",".to_vec()),
            ]
        )
            .prop_map(|(i, bytes)| ByteMutation::Insert(i, bytes)),
    ]
}

fn apply_bytes(bytes: &mut Vec<u8>, mutation: &ByteMutation) {
    let len = bytes.len();
    match mutation {
        ByteMutation::Flip(i, x) if len > 0 => bytes[i.index(len)] ^= x,
        ByteMutation::Flip(..) => {}
        ByteMutation::Cut(i) => bytes.truncate(i.index(len + 1)),
        ByteMutation::Delete(a, b) => {
            let (a, b) = (a.index(len + 1), b.index(len + 1));
            bytes.drain(a.min(b)..a.max(b));
        }
        ByteMutation::Insert(i, new) => {
            let at = i.index(len + 1);
            bytes.splice(at..at, new.iter().copied());
        }
    }
}

/// Decodes `bytes` as an envelope and, on its own, as a message; whatever decodes must
/// round-trip.
fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(envelope) = serde_json::from_slice::<Envelope>(bytes) {
        let again = serde_json::to_vec(&envelope).expect("envelopes serialize");
        prop_assert_eq!(
            serde_json::from_slice::<Envelope>(&again).ok(),
            Some(envelope)
        );
    }
    if let Ok(message) = serde_json::from_slice::<Message>(bytes) {
        let again = serde_json::to_vec(&message).expect("messages serialize");
        prop_assert_eq!(
            serde_json::from_slice::<Message>(&again).ok(),
            Some(message)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(fuzz_support::config(256))]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes)?;
    }

    #[test]
    fn fixtures_decode(seed in seed()) {
        // The control: unmutated seeds decode, so the mutations start from valid input.
        let bytes = serde_json::to_vec(&seed).unwrap();
        prop_assert!(serde_json::from_slice::<Envelope>(&bytes).is_ok(), "{}", seed);
        check(&bytes)?;
    }

    #[test]
    fn mutated_trees(seed in seed(), mutations in proptest::collection::vec(tree_mutation(), 1..4)) {
        let mut json = seed;
        for (target, mutation) in &mutations {
            let below = size(&json) - 1;
            if below > 0 {
                mutate(&mut json, target.index(below), mutation).expect("the target is in the tree");
            }
        }
        check(&serde_json::to_vec(&json).unwrap())?;
        // A mutated message alone, as the inner decoder sees it.
        if let Some(first) = json.get("messages").and_then(|m| m.get(0)) {
            check(&serde_json::to_vec(first).unwrap())?;
        }
    }

    #[test]
    fn mutated_bytes(seed in seed(), mutations in proptest::collection::vec(byte_mutation(), 1..6)) {
        let mut bytes = serde_json::to_vec(&seed).unwrap();
        for mutation in &mutations {
            apply_bytes(&mut bytes, mutation);
        }
        check(&bytes)?;
    }

    #[test]
    fn deep_nesting(seed in seed(), depth in 0usize..100_000) {
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let mut json = seed;
        json["messages"] = Json::String(String::new());
        let text = json.to_string().replace(r#""messages":"""#, &format!(r#""messages":{nested}"#));
        check(text.as_bytes())?;
        check(nested.as_bytes())?;
    }
}
