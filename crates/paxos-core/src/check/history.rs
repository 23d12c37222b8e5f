//! What the clients saw: every operation, when it was invoked and when and how it completed.
//!
//! An operation is one logical command. A retry of an exactly-once command (same `client_id` and
//! `seq`, sent to another member after a timeout) is the same operation: it spans from the first
//! invocation to the answer of the attempt that got one. An operation whose client never learned
//! its outcome (every attempt timed out, or the member holding it crashed) has no completion: it
//! may have applied at any time after its invocation, or never.

use std::fmt;

use crate::{Answer, Command, Time};

#[derive(Clone, Debug)]
pub struct OpRecord {
    pub client: usize,
    pub command: Command,
    pub invoke: Time,
    /// When the answer arrived and what it was; `None` when the outcome is unknown.
    pub completion: Option<(Time, Answer)>,
    /// How many times the command was submitted.
    pub attempts: u32,
    /// When the first answer to an attempt its client had already given up on arrived.
    pub late_answer: Option<Time>,
}

impl OpRecord {
    pub fn key(&self) -> &str {
        self.command.op.key()
    }

    pub fn completed_at(&self) -> Option<Time> {
        self.completion.as_ref().map(|(at, _)| *at)
    }

    pub fn answer(&self) -> Option<&Answer> {
        self.completion.as_ref().map(|(_, answer)| answer)
    }
}

impl fmt::Display for OpRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = serde_json::to_string(&self.command).expect("commands serialize");
        write!(f, "client {} {op} invoked {:?}", self.client, self.invoke)?;
        match &self.completion {
            Some((at, answer)) => {
                let answer = serde_json::to_string(answer).expect("answers serialize");
                write!(f, " answered {answer} at {at:?}")
            }
            None => write!(f, " outcome unknown"),
        }?;
        if self.attempts > 1 {
            write!(f, " after {} attempts", self.attempts)?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Default)]
pub struct History {
    pub ops: Vec<OpRecord>,
}

impl History {
    /// Records a new operation and returns its index.
    pub fn invoke(&mut self, client: usize, command: Command, now: Time) -> usize {
        self.ops.push(OpRecord {
            client,
            command,
            invoke: now,
            completion: None,
            attempts: 1,
            late_answer: None,
        });
        self.ops.len() - 1
    }

    pub fn retry(&mut self, op: usize) {
        self.ops[op].attempts += 1;
    }

    pub fn answered_late(&mut self, op: usize, now: Time) {
        let late = &mut self.ops[op].late_answer;
        late.get_or_insert(now);
    }

    pub fn complete(&mut self, op: usize, now: Time, answer: Answer) {
        let record = &mut self.ops[op];
        assert!(record.completion.is_none(), "op {op} completed twice");
        record.completion = Some((now, answer));
    }
}
