//! Fuzzing the client command parser, [`Command::from_json`], which every `POST /client-request`
//! body reaches unfiltered.
//!
//! Properties: no input panics it; what it refuses, it refuses with one line; what it accepts is
//! a command within the size limits that says what the body said and survives a round trip
//! through the wire format peers use. Inputs are arbitrary bytes, and valid commands mutated the
//! ways a client gets them wrong: a field dropped, a field of the wrong type, huge numbers, long
//! or non-ASCII strings, unknown fields, and deep nesting.

mod fuzz_support;
#[path = "fuzz_support/json_tree.rs"]
mod json_tree;

use json_tree::json_tree;
use paxos_core::Command;
use paxos_core::command::{MAX_KEY_BYTES, MAX_VALUE_BYTES};
use proptest::prelude::*;
use serde_json::{Map, Value as Json, json};

/// A valid command object: every op, with and without the exactly-once fields.
fn valid_command() -> impl Strategy<Value = Map<String, Json>> {
    let text = || prop_oneof!["[a-z]{0,8}", "\\PC{0,8}", Just(String::new())];
    let op = prop_oneof![
        Just("get"),
        Just("put"),
        Just("delete"),
        Just("cas"),
        Just("append"),
    ];
    let identity = proptest::option::of(("\\PC{1,8}", any::<u64>()));
    (op, text(), text(), proptest::option::of(text()), identity).prop_map(
        |(op, key, value, expected, identity)| {
            let mut fields = Map::new();
            fields.insert("op".into(), json!(op));
            fields.insert("key".into(), json!(key));
            if matches!(op, "put" | "cas" | "append") {
                fields.insert("value".into(), json!(value));
            }
            if op == "cas" {
                fields.insert("expected".into(), json!(expected));
            }
            if let Some((client_id, seq)) = identity {
                fields.insert("client_id".into(), json!(client_id));
                fields.insert("seq".into(), json!(seq));
            }
            fields
        },
    )
}

/// JSON a field should not hold, or should hold only sometimes: other types, numbers at and
/// beyond every integer limit, long strings around the size limits, and nesting.
fn odd_json() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        any::<f64>().prop_map(Json::from),
        "\\PC{0,16}".prop_map(Json::from),
        (MAX_KEY_BYTES - 2..MAX_KEY_BYTES + 3).prop_map(|n| Json::from("k".repeat(n))),
        (MAX_VALUE_BYTES - 2..MAX_VALUE_BYTES + 3).prop_map(|n| Json::from("v".repeat(n))),
    ];
    json_tree(leaf, 4, 16, 4)
}

/// One way to get a valid command wrong.
#[derive(Clone, Debug)]
enum Mutation {
    Drop(String),
    Set(String, Json),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let name = prop_oneof![
        Just("op".to_owned()),
        Just("key".to_owned()),
        Just("value".to_owned()),
        Just("expected".to_owned()),
        Just("client_id".to_owned()),
        Just("seq".to_owned()),
        "\\PC{0,6}",
    ];
    let op = prop_oneof![
        Just(json!("get")),
        Just(json!("GET")),
        Just(json!("cas")),
        Just(json!("put\u{0}")),
        "\\PC{0,6}".prop_map(Json::from),
    ];
    prop_oneof![
        name.clone().prop_map(Mutation::Drop),
        (name, odd_json()).prop_map(|(n, v)| Mutation::Set(n, v)),
        op.prop_map(|op| Mutation::Set("op".into(), op)),
    ]
}

/// Checks what the parser made of `body`.
fn check(body: &[u8]) -> Result<(), TestCaseError> {
    match Command::from_json(body) {
        Err(sentence) => {
            prop_assert!(!sentence.is_empty());
            prop_assert!(!sentence.contains('\n'), "not one line: {sentence:?}");
        }
        Ok(command) => {
            let op = &command.op;
            prop_assert!(op.key().len() <= MAX_KEY_BYTES);
            prop_assert!(
                command
                    .client_id
                    .as_ref()
                    .is_none_or(|c| c.len() <= MAX_KEY_BYTES)
            );
            let json: Json = serde_json::from_slice(body).expect("an accepted body is JSON");
            prop_assert_eq!(json["key"].as_str(), Some(op.key()));
            prop_assert_eq!(json.get("seq").and_then(Json::as_u64), command.seq);
            // Peers carry commands with serde's derive; it must read back what the parser made.
            let wire = serde_json::to_vec(&command).expect("commands serialize");
            let back: Command = serde_json::from_slice(&wire).expect("and deserialize");
            prop_assert_eq!(&back, &command);
            prop_assert_eq!(Command::from_json(&wire), Ok(command));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(fuzz_support::config(256))]

    #[test]
    fn arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        check(&body)?;
    }

    #[test]
    fn arbitrary_json_objects(body in odd_json()) {
        check(body.to_string().as_bytes())?;
    }

    #[test]
    fn valid_commands_are_accepted(fields in valid_command()) {
        let body = Json::Object(fields).to_string();
        prop_assert!(Command::from_json(body.as_bytes()).is_ok(), "{}", body);
        check(body.as_bytes())?;
    }

    #[test]
    fn mutated_commands(
        fields in valid_command(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let mut fields = fields;
        for mutation in mutations {
            match mutation {
                Mutation::Drop(name) => fields.remove(&name),
                Mutation::Set(name, value) => fields.insert(name, value),
            };
        }
        check(Json::Object(fields).to_string().as_bytes())?;
    }

    #[test]
    fn truncated_commands(fields in valid_command(), cut in any::<prop::sample::Index>()) {
        let body = Json::Object(fields).to_string();
        check(&body.as_bytes()[..cut.index(body.len() + 1)])?;
    }

    #[test]
    fn deep_nesting(depth in 0usize..100_000, field in prop_oneof![Just("key"), Just("op"), Just("seq")]) {
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let body = format!(r#"{{"op":"get","key":"k","{field}":{nested}}}"#);
        check(body.as_bytes())?;
        check(nested.as_bytes())?;
    }
}
