//! Client commands and their answers: the JSON a client sends to `POST /client-request` and what
//! it gets back.
//!
//! Parsing is written by hand over `serde_json::Value` rather than derived, because a client that
//! sends `{"op": "put", "key": "k"}` deserves "missing field `value` for op `put`", not serde's
//! generic "unknown variant" or "data did not match any variant" messages. Both servers call
//! [`Command::from_json`], so they answer every malformed request with the same sentence.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// The longest key, and the longest `client_id`, in bytes of UTF-8. Both are kept in the
/// replicated state (the `client_id` in the exactly-once table), so neither may be as big as a
/// body allows.
pub const MAX_KEY_BYTES: usize = 1024;
/// The longest `value` (and `expected`) in bytes of UTF-8. It leaves room in a 1 MiB body for the
/// rest of the command, and keeps a single command far below a peer message's limit.
pub const MAX_VALUE_BYTES: usize = 512 * 1024;

/// One operation on the key-value store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Op {
    /// Read a key; the answer's value is `null` when the key is absent.
    Get { key: String },
    /// Set a key to a string.
    Put { key: String, value: String },
    /// Remove a key; deleting an absent key succeeds.
    Delete { key: String },
    /// Set `key` to `value` only if it currently holds `expected` (`None` means absent).
    Cas {
        key: String,
        expected: Option<String>,
        value: String,
    },
    /// Treat `key` as a list of strings (empty when absent), push `value`, answer the whole list.
    Append { key: String, value: String },
}

impl Op {
    /// The operation's name, as the `op` field of a command spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Get { .. } => "get",
            Op::Put { .. } => "put",
            Op::Delete { .. } => "delete",
            Op::Cas { .. } => "cas",
            Op::Append { .. } => "append",
        }
    }

    /// The key this operation reads or writes. Every operation touches exactly one key, which is
    /// what lets the linearizability checker judge each key on its own.
    pub fn key(&self) -> &str {
        match self {
            Op::Get { key }
            | Op::Put { key, .. }
            | Op::Delete { key }
            | Op::Cas { key, .. }
            | Op::Append { key, .. } => key,
        }
    }

    /// Whether the operation can change the store. Only writes need exactly-once bookkeeping.
    pub fn is_write(&self) -> bool {
        !matches!(self, Op::Get { .. })
    }
}

/// A client's command: an operation plus the optional exactly-once identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    #[serde(flatten)]
    pub op: Op,
    /// With `seq`, makes the command exactly-once: a retry of the same pair is answered with the
    /// first answer and not applied again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// How a `get` reads; every other op is linearizable and takes the default. Left out of the
    /// JSON when it is the default, so that the log's records are what they were before it.
    #[serde(default, skip_serializing_if = "Consistency::is_linearizable")]
    pub consistency: Consistency,
}

/// How fresh a `get` must be: the `consistency` field of a command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    /// Reflects every write that completed before the read began: the leader confirms with a
    /// majority that it still leads before the read is answered (see [`crate::node`]).
    #[default]
    Linearizable,
    /// Answered from the member's own store at once: it may miss recent writes.
    Serializable,
}

impl Consistency {
    pub fn is_linearizable(&self) -> bool {
        *self == Consistency::Linearizable
    }
}

impl Command {
    /// A command without exactly-once identity.
    pub fn new(op: Op) -> Self {
        Command {
            op,
            client_id: None,
            seq: None,
            consistency: Consistency::Linearizable,
        }
    }

    /// Whether this is a `get` answered from the member's own store, without asking anyone.
    pub fn is_serializable_read(&self) -> bool {
        !self.op.is_write() && self.consistency == Consistency::Serializable
    }

    /// Parses a request body, answering malformed input with one sentence fit for a `400`.
    pub fn from_json(body: &[u8]) -> Result<Command, String> {
        let json: Json =
            serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
        let Json::Object(fields) = json else {
            return Err("the command must be a JSON object".to_owned());
        };
        Command::from_fields(&fields)
    }

    fn from_fields(fields: &Map<String, Json>) -> Result<Command, String> {
        let op = match fields.get("op") {
            None => return Err("missing field `op`".to_owned()),
            Some(Json::String(op)) => op.as_str(),
            Some(_) => return Err("field `op` must be a string".to_owned()),
        };
        let field = |name: &str| -> Result<String, String> {
            match fields.get(name) {
                Some(Json::String(s)) => within_limit(name, s).map(|()| s.clone()),
                Some(_) => Err(format!("field `{name}` of op `{op}` must be a string")),
                None => Err(format!("missing field `{name}` for op `{op}`")),
            }
        };
        let op = match op {
            "get" => Op::Get { key: field("key")? },
            "put" => Op::Put {
                key: field("key")?,
                value: field("value")?,
            },
            "delete" => Op::Delete { key: field("key")? },
            "append" => Op::Append {
                key: field("key")?,
                value: field("value")?,
            },
            "cas" => Op::Cas {
                key: field("key")?,
                expected: match fields.get("expected") {
                    Some(Json::Null) => None,
                    Some(Json::String(s)) => Some(within_limit("expected", s).map(|()| s.clone())?),
                    Some(_) => {
                        return Err("field `expected` of op `cas` must be a string or null".into());
                    }
                    None => {
                        return Err(
                            "missing field `expected` for op `cas` (use null for an absent key)"
                                .into(),
                        );
                    }
                },
                value: field("value")?,
            },
            other => {
                return Err(format!(
                    "unknown op `{other}`; expected one of get, put, delete, cas, append"
                ));
            }
        };
        let client_id = match fields.get("client_id") {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) => Some(within_limit("client_id", s).map(|()| s.clone())?),
            Some(_) => return Err("field `client_id` must be a string".to_owned()),
        };
        let seq = match fields.get("seq") {
            None | Some(Json::Null) => None,
            Some(n) => Some(
                n.as_u64()
                    .ok_or("field `seq` must be a non-negative integer")?,
            ),
        };
        if client_id.is_some() != seq.is_some() {
            return Err("fields `client_id` and `seq` go together: give both or neither".into());
        }
        let consistency = match fields.get("consistency") {
            None | Some(Json::Null) => Consistency::Linearizable,
            Some(Json::String(c)) if c == "linearizable" => Consistency::Linearizable,
            Some(Json::String(c)) if c == "serializable" && !op.is_write() => {
                Consistency::Serializable
            }
            Some(Json::String(c)) if c == "serializable" => {
                return Err(format!(
                    "field `consistency` may be `serializable` only for op `get`; op `{}` is \
                     always linearizable",
                    op.name()
                ));
            }
            Some(_) => {
                return Err(
                    "field `consistency` must be `linearizable` or `serializable`".to_owned(),
                );
            }
        };
        Ok(Command {
            op,
            client_id,
            seq,
            consistency,
        })
    }
}

/// Refuses a string field over its limit: [`MAX_KEY_BYTES`] for `key` and `client_id`,
/// [`MAX_VALUE_BYTES`] for `value` and `expected`.
pub fn within_limit(name: &str, s: &str) -> Result<(), String> {
    let (limit, what) = match name {
        "key" | "client_id" => (MAX_KEY_BYTES, "1 KiB"),
        _ => (MAX_VALUE_BYTES, "512 KiB"),
    };
    if s.len() > limit {
        return Err(format!(
            "field `{name}` is {} bytes long; it may be at most {limit} bytes ({what})",
            s.len()
        ));
    }
    Ok(())
}

/// What a key holds: `append` makes lists, `put` and `cas` make strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Str(String),
    List(Vec<String>),
}

/// The answer to a command that reached the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Answer {
    /// `200 {"ok": true, "value": …, "index": …, "modified": …}`: `index` is the slot the
    /// command was decided in (for a read, the slot it reflects), `modified` the slot that last
    /// changed the key, so a client can read and then watch from there.
    Done {
        ok: True,
        value: Option<Value>,
        index: u64,
        /// Answers kept from before modification indexes existed have none: 0.
        #[serde(default)]
        modified: u64,
    },
    /// `200 {"ok": false, "value": <current>, "modified": …}`: a `cas` whose `expected` did not
    /// match.
    Mismatch {
        ok: False,
        value: Option<Value>,
        #[serde(default)]
        modified: u64,
    },
    /// `400 {"error": …}`: the command was ordered but could not apply, e.g. `append` to a key
    /// that holds a string. It changed nothing.
    Rejected { error: String },
    /// `503 {"error": …}`: the command was refused before it ran, because too much waits
    /// already (a leader's reads past `max_reads_waiting`); the client may retry.
    Overloaded { error: String },
}

impl Answer {
    /// The answer to a write decided in slot `index`, which changed its key there.
    pub fn done(value: Option<Value>, index: u64) -> Answer {
        Answer::read(value, index, index)
    }

    /// The answer to a read at `index` of a key last changed at `modified`.
    pub fn read(value: Option<Value>, index: u64, modified: u64) -> Answer {
        Answer::Done {
            ok: True,
            value,
            index,
            modified,
        }
    }

    pub fn mismatch(value: Option<Value>, modified: u64) -> Answer {
        Answer::Mismatch {
            ok: False,
            value,
            modified,
        }
    }

    /// The HTTP status this answer is given with.
    pub fn http_status(&self) -> u16 {
        match self {
            Answer::Done { .. } | Answer::Mismatch { .. } => 200,
            Answer::Rejected { .. } => 400,
            Answer::Overloaded { .. } => 503,
        }
    }
}

/// The JSON literal `true`, so that [`Answer`]'s variants serialize with a fixed `ok` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct True;
/// The JSON literal `false`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct False;

macro_rules! bool_literal {
    ($ty:ident, $value:literal) => {
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bool($value)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                match bool::deserialize(d)? {
                    $value => Ok($ty),
                    _ => Err(serde::de::Error::custom(concat!("expected ", $value))),
                }
            }
        }
    };
}
bool_literal!(True, true);
bool_literal!(False, false);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_op() {
        let cmd = Command::from_json(br#"{"op":"cas","key":"k","expected":null,"value":"v"}"#);
        assert_eq!(
            cmd,
            Ok(Command::new(Op::Cas {
                key: "k".into(),
                expected: None,
                value: "v".into()
            }))
        );
        let cmd =
            Command::from_json(br#"{"op":"append","key":"k","value":"x","client_id":"c","seq":7}"#)
                .unwrap();
        assert_eq!(cmd.client_id.as_deref(), Some("c"));
        assert_eq!(cmd.seq, Some(7));
    }

    #[test]
    fn explains_what_is_wrong() {
        let err = |body: &str| Command::from_json(body.as_bytes()).unwrap_err();
        assert!(err("{").starts_with("malformed JSON"));
        assert_eq!(err("[]"), "the command must be a JSON object");
        assert_eq!(err(r#"{"key":"k"}"#), "missing field `op`");
        assert!(err(r#"{"op":"frob","key":"k"}"#).starts_with("unknown op `frob`"));
        assert_eq!(
            err(r#"{"op":"put","key":"k"}"#),
            "missing field `value` for op `put`"
        );
        assert_eq!(
            err(r#"{"op":"get","key":3}"#),
            "field `key` of op `get` must be a string"
        );
        assert!(err(r#"{"op":"cas","key":"k","value":"v"}"#).contains("expected"));
        assert!(err(r#"{"op":"get","key":"k","seq":-1,"client_id":"c"}"#).contains("seq"));
        assert!(err(r#"{"op":"get","key":"k","seq":1}"#).contains("go together"));
        assert_eq!(
            err(r#"{"op":"get","key":"k","consistency":"eventual"}"#),
            "field `consistency` must be `linearizable` or `serializable`"
        );
        assert_eq!(
            err(r#"{"op":"get","key":"k","consistency":1}"#),
            "field `consistency` must be `linearizable` or `serializable`"
        );
        assert!(
            err(r#"{"op":"put","key":"k","value":"v","consistency":"serializable"}"#)
                .starts_with("field `consistency` may be `serializable` only for op `get`")
        );
    }

    #[test]
    fn consistency_defaults_to_linearizable() {
        let parse = |body: &str| Command::from_json(body.as_bytes()).unwrap();
        let plain = parse(r#"{"op":"get","key":"k"}"#);
        assert_eq!(plain.consistency, Consistency::Linearizable);
        assert_eq!(
            parse(r#"{"op":"get","key":"k","consistency":"linearizable"}"#),
            plain
        );
        let stale = parse(r#"{"op":"get","key":"k","consistency":"serializable"}"#);
        assert!(stale.is_serializable_read());
        assert_eq!(
            serde_json::to_string(&stale).unwrap(),
            r#"{"op":"get","key":"k","consistency":"serializable"}"#
        );
        // The default stays out of the JSON, and so out of the log's records.
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            r#"{"op":"get","key":"k"}"#
        );
        let put = parse(r#"{"op":"put","key":"k","value":"v","consistency":"linearizable"}"#);
        assert!(!put.is_serializable_read());
    }

    #[test]
    fn refuses_keys_and_values_over_their_limits() {
        let command = |key: usize, value: usize| {
            let body = serde_json::json!({
                "op": "put", "key": "k".repeat(key), "value": "v".repeat(value)
            });
            Command::from_json(body.to_string().as_bytes())
        };
        assert!(command(MAX_KEY_BYTES, MAX_VALUE_BYTES).is_ok());
        assert_eq!(
            command(MAX_KEY_BYTES + 1, 1).unwrap_err(),
            "field `key` is 1025 bytes long; it may be at most 1024 bytes (1 KiB)"
        );
        assert_eq!(
            command(1, MAX_VALUE_BYTES + 1).unwrap_err(),
            "field `value` is 524289 bytes long; it may be at most 524288 bytes (512 KiB)"
        );
        // The limits count bytes, not characters: 513 two-byte characters are 1026 bytes.
        let wide = serde_json::json!({"op": "get", "key": "é".repeat(513)});
        assert!(
            Command::from_json(wide.to_string().as_bytes())
                .unwrap_err()
                .starts_with("field `key` is 1026 bytes long")
        );
        let expected = serde_json::json!({
            "op": "cas", "key": "k", "expected": "e".repeat(MAX_VALUE_BYTES + 1), "value": "v"
        });
        assert!(
            Command::from_json(expected.to_string().as_bytes())
                .unwrap_err()
                .starts_with("field `expected` is")
        );
        let client = serde_json::json!({
            "op": "get", "key": "k", "client_id": "c".repeat(MAX_KEY_BYTES + 1), "seq": 1
        });
        assert!(
            Command::from_json(client.to_string().as_bytes())
                .unwrap_err()
                .starts_with("field `client_id` is")
        );
    }

    #[test]
    fn answers_serialize_as_the_contract_says() {
        let done = Answer::done(Some(Value::List(vec!["a".into()])), 4);
        assert_eq!(
            serde_json::to_string(&done).unwrap(),
            r#"{"ok":true,"value":["a"],"index":4,"modified":4}"#
        );
        // An answer kept from before modification indexes existed still reads.
        let old: Answer = serde_json::from_str(r#"{"ok":true,"value":null,"index":3}"#).unwrap();
        assert_eq!(old, Answer::read(None, 3, 0));
        let mismatch = Answer::mismatch(None, 7);
        assert_eq!(
            serde_json::to_string(&mismatch).unwrap(),
            r#"{"ok":false,"value":null,"modified":7}"#
        );
        let back: Answer = serde_json::from_str(r#"{"ok":false,"value":"x"}"#).unwrap();
        assert_eq!(back, Answer::mismatch(Some(Value::Str("x".into())), 0));
    }
}
