//! What the clients did and saw: one [`Record`] per operation, from invocation to completion.
//!
//! An HTTP exchange becomes an [`Outcome`]: a `200` or `400` is an answer of the contract (the
//! command reached the log, or could not apply), a `503` or no answer at all leaves the outcome
//! unknown (it may have applied, or not, or may still apply), and anything else is an answer the
//! contract does not allow, which the verdict reports.
//!
//! An exactly-once request (one with `client_id` and `seq`) whose outcome was unknown may be sent
//! again, with the same pair, to another member. All its attempts make one record, as they make
//! one operation: it spans from the first attempt's invocation to the last one's completion, and
//! its outcome is the last attempt's (the store answers a repeated pair with the first answer, so
//! that answer is the operation's). The earlier attempts' outcomes were all unknown, which is
//! what the record keeps of them.

use std::collections::BTreeMap;
use std::time::Duration;

use paxos_core::check::{History, OpRecord};
use paxos_core::{Answer, Command};
use serde_json::{Value as Json, json};

use crate::http::{NoAnswer, Response};

/// One operation of one client, with the member its last attempt went to.
#[derive(Clone, Debug)]
pub struct Record {
    pub client: usize,
    pub member: usize,
    pub command: Command,
    /// When the first attempt was sent and when the client stopped waiting for the last, since
    /// the run's start.
    pub invoke: Duration,
    pub complete: Duration,
    /// The last attempt's outcome.
    pub outcome: Outcome,
    /// The attempts before the last, in order: the member each went to and why its outcome was
    /// unknown. Empty unless the request was retried.
    pub earlier: Vec<(usize, Unknown)>,
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
            // `of` takes every `503` for unknown; this is for completeness.
            Outcome::Answered(Answer::Overloaded { .. }) => "overloaded".to_owned(),
            Outcome::Unknown(why) => format!("unknown ({})", why.name()),
            Outcome::Unexpected(_) => "unexpected".to_owned(),
        }
    }
}

impl Record {
    /// How many times the command was sent.
    pub fn attempts(&self) -> usize {
        self.earlier.len() + 1
    }

    /// This record followed by `retry`, another attempt of the same command whose outcome
    /// replaces this one's; this one's outcome must have been unknown.
    pub fn retried(mut self, retry: Record) -> Record {
        let Outcome::Unknown(why) = self.outcome else {
            panic!("only a request whose outcome is unknown is retried");
        };
        assert_eq!(
            self.command, retry.command,
            "a retry sends the same command"
        );
        self.earlier.push((self.member, why));
        Record {
            member: retry.member,
            complete: retry.complete,
            outcome: retry.outcome,
            ..self
        }
    }

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
        if !self.earlier.is_empty() {
            let earlier: Vec<Json> = self
                .earlier
                .iter()
                .map(|(member, why)| json!({"member": member, "outcome": Outcome::Unknown(*why).label()}))
                .collect();
            line["earlier_attempts"] = json!(earlier);
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
/// A retried request is one operation, as the checker counts it.
pub fn by_key(records: &[Record]) -> BTreeMap<String, Vec<OpRecord>> {
    let mut histories: BTreeMap<String, History> = BTreeMap::new();
    let mut sorted: Vec<&Record> = records.iter().collect();
    sorted.sort_by_key(|r| r.invoke);
    for record in sorted {
        let history = histories
            .entry(record.command.op.key().to_owned())
            .or_default();
        let op = history.invoke(record.client, record.command.clone(), record.invoke);
        for _ in &record.earlier {
            history.retry(op);
        }
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

    #[test]
    fn a_retry_keeps_the_first_invocation_and_takes_the_last_outcome() {
        let command = Command {
            op: paxos_core::Op::Append {
                key: "k".into(),
                value: "v".into(),
            },
            client_id: Some("c1".into()),
            seq: Some(7),
            consistency: Default::default(),
        };
        let attempt = |member, (invoke, complete), outcome| Record {
            client: 1,
            member,
            command: command.clone(),
            invoke: Duration::from_millis(invoke),
            complete: Duration::from_millis(complete),
            outcome,
            earlier: Vec::new(),
        };
        let record = attempt(
            0,
            (10, 3010),
            Outcome::of(Err((NoAnswer::Timeout, "".into()))),
        )
        .retried(attempt(2, (3100, 3150), answer(503, r#"{"error":"x"}"#)))
        .retried(attempt(
            1,
            (3300, 3320),
            answer(200, r#"{"ok":true,"value":["v"],"index":9}"#),
        ));
        assert_eq!(record.attempts(), 3);
        assert_eq!(
            (record.member, record.outcome.label()),
            (1, "ok".to_owned())
        );
        assert_eq!(record.invoke, Duration::from_millis(10));
        assert_eq!(record.complete, Duration::from_millis(3320));
        assert_eq!(
            record.earlier,
            [
                (0, Unknown::NoAnswer(NoAnswer::Timeout)),
                (2, Unknown::Unavailable)
            ]
        );
        let line = record.to_json();
        assert_eq!(line["earlier_attempts"][1]["outcome"], "unknown (503)");
        let ops = &by_key(&[record])["k"];
        assert_eq!(ops[0].attempts, 3);
        assert_eq!(ops[0].invoke, Duration::from_millis(10));
        assert_eq!(ops[0].completed_at(), Some(Duration::from_millis(3320)));
    }
}
