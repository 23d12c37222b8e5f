//! The wire fixtures in `shared/fixtures/` against the core's wire types.
//!
//! Every sample must parse into the core type and serialize back to the very same JSON value, and
//! every malformed command must be refused with the sentence the fixture names. The integration
//! suite (`tests/`) sends the same fixtures to both servers, so the core, the servers and the
//! contract in `docs/api.md` and `docs/protocol.md` cannot drift apart on the wire.

use std::collections::BTreeSet;
use std::path::PathBuf;

use paxos_core::message::{Envelope, LogValue, Message, PROTOCOL_VERSION};
use paxos_core::{Answer, Ballot, Command, Membership};
use serde_json::Value as Json;

fn fixture(name: &str) -> Vec<Json> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    let json: Json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("fixture {} is not JSON: {e}", path.display()));
    let Json::Array(samples) = json else {
        panic!(
            "fixture {} must be an array of named samples",
            path.display()
        );
    };
    assert!(!samples.is_empty(), "fixture {} is empty", path.display());
    samples
}

fn name(sample: &Json) -> &str {
    sample["name"]
        .as_str()
        .unwrap_or_else(|| panic!("sample without a name: {sample}"))
}

fn field<'a>(sample: &'a Json, key: &str) -> &'a Json {
    sample
        .get(key)
        .unwrap_or_else(|| panic!("sample `{}` has no `{key}`", name(sample)))
}

#[test]
fn commands_parse_and_round_trip() {
    let mut ops = BTreeSet::new();
    let mut with_identity = BTreeSet::new();
    let mut without_identity = BTreeSet::new();
    for sample in fixture("commands.json") {
        let json = field(&sample, "command");
        let body = serde_json::to_vec(json).unwrap();
        let parsed = Command::from_json(&body)
            .unwrap_or_else(|e| panic!("command `{}` refused: {e}", name(&sample)));
        assert_eq!(
            &serde_json::to_value(&parsed).unwrap(),
            json,
            "command `{}` does not re-serialize to itself",
            name(&sample)
        );
        // Forwarded commands travel inside peer messages through serde's derive; it must agree
        // with the hand-written parser.
        let derived: Command = serde_json::from_value(json.clone())
            .unwrap_or_else(|e| panic!("command `{}` refused by serde: {e}", name(&sample)));
        assert_eq!(derived, parsed, "command `{}`", name(&sample));
        let op = json["op"].as_str().unwrap().to_owned();
        if parsed.client_id.is_some() {
            with_identity.insert(op.clone());
        } else {
            without_identity.insert(op.clone());
        }
        ops.insert(op);
    }
    let every_op: BTreeSet<String> = ["get", "put", "delete", "cas", "append"]
        .map(String::from)
        .into();
    assert_eq!(ops, every_op, "commands.json must cover every op");
    assert_eq!(with_identity, every_op, "every op with client_id/seq");
    assert_eq!(without_identity, every_op, "every op without client_id/seq");
}

#[test]
fn malformed_commands_are_refused_with_the_fixture_sentence() {
    for sample in fixture("malformed-commands.json") {
        let body = field(&sample, "body").as_str().unwrap();
        let error = Command::from_json(body.as_bytes())
            .err()
            .unwrap_or_else(|| panic!("malformed command `{}` was accepted", name(&sample)));
        match (sample.get("error"), sample.get("error_prefix")) {
            (Some(Json::String(exact)), None) => {
                assert_eq!(&error, exact, "sentence for `{}`", name(&sample))
            }
            (None, Some(Json::String(prefix))) => assert!(
                error.starts_with(prefix.as_str()),
                "sentence for `{}` is {error:?}, expected it to start with {prefix:?}",
                name(&sample)
            ),
            _ => panic!(
                "sample `{}` needs exactly one of `error`, `error_prefix`",
                name(&sample)
            ),
        }
    }
}

#[test]
fn answers_parse_and_round_trip() {
    let mut kinds = BTreeSet::new();
    for sample in fixture("answers.json") {
        let json = field(&sample, "answer");
        let answer: Answer = serde_json::from_value(json.clone())
            .unwrap_or_else(|e| panic!("answer `{}` does not parse: {e}", name(&sample)));
        assert_eq!(
            &serde_json::to_value(&answer).unwrap(),
            json,
            "answer `{}` does not re-serialize to itself",
            name(&sample)
        );
        assert_eq!(
            Some(u64::from(answer.http_status())),
            field(&sample, "status").as_u64(),
            "status of answer `{}`",
            name(&sample)
        );
        let kind = match &answer {
            Answer::Done { value: None, .. } => "done-null",
            Answer::Done {
                value: Some(paxos_core::Value::Str(_)),
                ..
            } => "done-string",
            Answer::Done {
                value: Some(paxos_core::Value::List(_)),
                ..
            } => "done-list",
            Answer::Mismatch { .. } => "mismatch",
            // One body shape, `{"error": …}`, told apart by the status only: it parses as
            // `Rejected`, and the `503` of an `Overloaded` is the runtimes' own error shape.
            Answer::Rejected { .. } | Answer::Overloaded { .. } => "rejected",
        };
        kinds.insert(kind);
    }
    let every_kind = BTreeSet::from([
        "done-null",
        "done-string",
        "done-list",
        "mismatch",
        "rejected",
    ]);
    assert_eq!(
        kinds, every_kind,
        "answers.json must cover every answer shape"
    );
}

#[test]
fn error_bodies_are_one_sentence() {
    let mut statuses = BTreeSet::new();
    for sample in fixture("errors.json") {
        let body = field(&sample, "body");
        let Some(object) = body.as_object() else {
            panic!("error `{}` is not an object", name(&sample));
        };
        assert_eq!(
            object.len(),
            1,
            "error `{}` has extra fields",
            name(&sample)
        );
        let answer: Answer = serde_json::from_value(body.clone())
            .unwrap_or_else(|e| panic!("error `{}` does not parse: {e}", name(&sample)));
        let Answer::Rejected { error } = &answer else {
            panic!("error `{}` parses as {answer:?}", name(&sample));
        };
        assert!(!error.is_empty(), "error `{}` is empty", name(&sample));
        assert_eq!(&serde_json::to_value(&answer).unwrap(), body);
        statuses.insert(field(&sample, "status").as_u64().unwrap());
    }
    assert_eq!(
        statuses,
        BTreeSet::from([400, 401, 403, 404, 405, 408, 409, 413, 503]),
        "errors.json must cover every error status of the contract"
    );
}

/// Names every variant; a new variant without a fixture stops this file from compiling.
fn variant(message: &Message) -> &'static str {
    match message {
        Message::Prepare { .. } => "prepare",
        Message::Promise { .. } => "promise",
        Message::Accept { .. } => "accept",
        Message::Accepted { .. } => "accepted",
        Message::Nack { .. } => "nack",
        Message::Commit { .. } => "commit",
        Message::CatchUp { .. } => "catch_up",
        Message::Decided { .. } => "decided",
        Message::Forward { .. } => "forward",
        Message::Snapshot { .. } => "snapshot",
        Message::ReadAck { .. } => "read_ack",
        Message::ReadIndex { .. } => "read_index",
        Message::ReadIndexOk { .. } => "read_index_ok",
        Message::ReadIndexRefused { .. } => "read_index_refused",
    }
}

fn log_values(message: &Message) -> Vec<&LogValue> {
    match message {
        Message::Promise {
            accepted, decided, ..
        } => accepted
            .iter()
            .map(|a| &a.value)
            .chain(decided.iter().map(|e| &e.value))
            .collect(),
        Message::Accept { entries, .. } | Message::Decided { entries, .. } => {
            entries.iter().map(|e| &e.value).collect()
        }
        _ => Vec::new(),
    }
}

#[test]
fn peer_messages_parse_and_round_trip() {
    let mut variants = BTreeSet::new();
    let mut values = BTreeSet::new();
    for sample in fixture("peer-messages.json") {
        let json = field(&sample, "envelope");
        let envelope: Envelope = serde_json::from_value(json.clone())
            .unwrap_or_else(|e| panic!("envelope `{}` does not parse: {e}", name(&sample)));
        assert_eq!(
            &serde_json::to_value(&envelope).unwrap(),
            json,
            "envelope `{}` does not re-serialize to itself",
            name(&sample)
        );
        assert_eq!(envelope.version, PROTOCOL_VERSION, "`{}`", name(&sample));
        for message in &envelope.messages {
            assert_eq!(variant(message), message.kind());
            // The `type` tag on the wire is the same name the logs and metrics use.
            variants.insert(variant(message));
            for value in log_values(message) {
                values.insert(match value {
                    LogValue::Noop => "noop",
                    LogValue::Request(_) => "request",
                });
            }
        }
    }
    let every_variant = BTreeSet::from([
        "prepare",
        "promise",
        "accept",
        "accepted",
        "nack",
        "commit",
        "catch_up",
        "decided",
        "forward",
        "snapshot",
        "read_ack",
        "read_index",
        "read_index_ok",
        "read_index_refused",
    ]);
    assert_eq!(
        variants, every_variant,
        "peer-messages.json must cover every Message"
    );
    assert_eq!(
        values,
        BTreeSet::from(["noop", "request"]),
        "every LogValue"
    );
}

#[test]
fn message_type_tags_are_the_kind_names() {
    for sample in fixture("peer-messages.json") {
        for message in field(&sample, "envelope")["messages"].as_array().unwrap() {
            let parsed: Message = serde_json::from_value(message.clone()).unwrap();
            assert_eq!(message["type"].as_str(), Some(parsed.kind()));
        }
    }
}

#[test]
fn status_samples_have_the_contract_fields() {
    let fields = BTreeSet::from([
        "server_id",
        "self",
        "runtime",
        "leader",
        "ballot",
        "commit_index",
        "applied_index",
        "known_commit_index",
        "servers",
        "membership",
        "role",
    ]);
    for sample in fixture("status.json") {
        let status = field(&sample, "status").as_object().unwrap();
        let keys: BTreeSet<&str> = status.keys().map(String::as_str).collect();
        assert_eq!(keys, fields, "status `{}`", name(&sample));
        let _: Ballot = serde_json::from_value(status["ballot"].clone())
            .unwrap_or_else(|e| panic!("ballot of `{}`: {e}", name(&sample)));
        assert!(["threaded", "async"].contains(&status["runtime"].as_str().unwrap()));
        let servers: Vec<&str> = status["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(
            status["membership"].as_str(),
            Some(Membership::of(&servers).to_string().as_str()),
            "the membership of `{}` is its servers'",
            name(&sample)
        );
        assert!(
            ["discovering", "follower", "candidate", "leader"]
                .contains(&status["role"].as_str().unwrap())
        );
    }
}
