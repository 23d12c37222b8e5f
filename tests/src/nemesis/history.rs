//! What the clients did and saw: one [`Record`] per operation, from invocation to completion.
//!
//! An HTTP exchange becomes an [`Outcome`]: a `200` or `400` is an answer of the contract (the
//! command reached the log, or could not apply), a `503` or no answer at all leaves the outcome
//! unknown (it may have applied, or not, or may still apply), and anything else is an answer the
//! contract does not allow, which the verdict reports.

use std::collections::BTreeMap;
use std::time::Duration;

use paxos_core::check::{History, OpRecord};
use paxos_core::{Answer, Command};
use serde_json::{Value as Json, json};

use crate::http::{NoAnswer, Response};

/// One operation of one client against one member.
#[derive(Clone, Debug)]
pub struct Record {
    pub client: usize,
    pub member: usize,
    pub command: Command,
    /// When the request was sent and when the client stopped waiting, since the run's start.
    pub invoke: Duration,
    pub complete: Duration,
    pub outcome: Outcome,
}

#[derive(Clone, Debug)]
pub enum Outcome {
    /// `200` (done or a `cas` mismatch) or `400` (ordered but could not apply).
    Answered(Answer),
    /// Maybe applied, maybe not.
    Unknown(Unknown),
    /// A status or body the contract does not allow for this command.
    Unexpected(String),
}

/// Why an operation's outcome is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unknown {
    /// `503`: not committed within the request timeout, or the member is overloaded or stopping.
    Unavailable,
    NoAnswer(NoAnswer),
}

impl Unknown {
    pub fn name(self) -> &'static str {
        match self {
            Unknown::Unavailable => "503",
            Unknown::NoAnswer(why) => why.name(),
        }
    }
}

impl Outcome {
    /// The outcome of an HTTP exchange about a command.
    pub fn of(result: Result<Response, (NoAnswer, String)>) -> Outcome {
        let response = match result {
            Ok(response) => response,
            Err((why, _)) => return Outcome::Unknown(Unknown::NoAnswer(why)),
        };
        let unexpected = || Outcome::Unexpected(format!("{} {}", response.status, response.body));
        match response.status {
            200 => match serde_json::from_str::<Answer>(&response.body) {
                Ok(answer @ (Answer::Done { .. } | Answer::Mismatch { .. })) => {
                    Outcome::Answered(answer)
                }
                _ => unexpected(),
            },
            400 => match serde_json::from_str::<Json>(&response.body) {
                Ok(Json::Object(body)) => match body.get("error") {
                    Some(Json::String(error)) => Outcome::Answered(Answer::Rejected {
                        error: error.clone(),
                    }),
                    _ => unexpected(),
                },
                _ => unexpected(),
            },
            503 => Outcome::Unknown(Unknown::Unavailable),
            _ => unexpected(),
        }
    }

    /// One word for the history file and the counts.
    pub fn label(&self) -> String {
        match self {
            Outcome::Answered(Answer::Done { .. }) => "ok".to_owned(),
            Outcome::Answered(Answer::Mismatch { .. }) => "mismatch".to_owned(),
            Outcome::Answered(Answer::Rejected { .. }) => "rejected".to_owned(),
            Outcome::Unknown(why) => format!("unknown ({})", why.name()),
            Outcome::Unexpected(_) => "unexpected".to_owned(),
        }
    }
}

impl Record {
    /// The record as one line of `history.jsonl`.
    pub fn to_json(&self) -> Json {
        let mut line = json!({
            "client": self.client,
            "member": self.member,
            "command": self.command,
            "invoke_ms": millis(self.invoke),
            "complete_ms": millis(self.complete),
            "outcome": self.outcome.label(),
        });
        match &self.outcome {
            Outcome::Answered(answer) => line["answer"] = json!(answer),
            Outcome::Unexpected(what) => line["answer"] = json!(what),
            Outcome::Unknown(_) => {}
        }
        line
    }
}

fn millis(at: Duration) -> f64 {
    (at.as_secs_f64() * 1e6).round() / 1e3
}

/// The records as the core checker's histories, one per key (an operation touches one key, and
/// linearizability is judged key by key). An outcome that is unknown, or not one the contract
/// allows, is left without completion: it may have applied at any time after its invocation.
pub fn by_key(records: &[Record]) -> BTreeMap<String, Vec<OpRecord>> {
    let mut histories: BTreeMap<String, History> = BTreeMap::new();
    let mut sorted: Vec<&Record> = records.iter().collect();
    sorted.sort_by_key(|r| r.invoke);
    for record in sorted {
        let history = histories
            .entry(record.command.op.key().to_owned())
            .or_default();
        let op = history.invoke(record.client, record.command.clone(), record.invoke);
        if let Outcome::Answered(answer) = &record.outcome {
            history.complete(op, record.complete, answer.clone());
        }
    }
    histories
        .into_iter()
        .map(|(key, history)| (key, history.ops))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Outcome {
        Outcome::of(Ok(Response {
            status,
            content_type: Some("application/json".into()),
            body: body.into(),
        }))
    }

    #[test]
    fn reads_every_kind_of_answer() {
        assert_eq!(
            answer(200, r#"{"ok":true,"value":["a"],"index":3}"#).label(),
            "ok"
        );
        assert_eq!(
            answer(200, r#"{"ok":false,"value":"x"}"#).label(),
            "mismatch"
        );
        assert_eq!(answer(400, r#"{"error":"not a list"}"#).label(), "rejected");
        assert_eq!(
            answer(503, r#"{"error":"timed out"}"#).label(),
            "unknown (503)"
        );
        assert_eq!(answer(200, r#"{"ok":"yes"}"#).label(), "unexpected");
        assert_eq!(answer(500, "").label(), "unexpected");
        let refused = Outcome::of(Err((NoAnswer::Refused, "refused".into())));
        assert_eq!(refused.label(), "unknown (connection refused)");
    }
}
