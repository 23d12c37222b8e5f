//! Driving the clients: each operation submitted to a member, its answer or its timeout, and
//! the next operation after a think time. The clients' workload itself is in
//! [`super::client`].

use std::time::Duration;

use super::client::Current;
use super::run::{Event, LIVENESS_BOUND, Sim};
use super::trace::trace;
use crate::{Answer, MemberId, RequestId};

impl Sim {
    pub(super) fn client_start(&mut self, c: usize) {
        let client = &mut self.clients[c];
        if client.stopped || client.current.is_some() {
            return;
        }
        let Some(command) = client.next_command(&mut self.rng) else {
            return;
        };
        let op = self.history.invoke(c, command.clone(), self.now);
        self.clients[c].current = Some(Current {
            op,
            command,
            attempt: 0,
            request: None,
        });
        self.submit(c);
    }

    /// Submits client `c`'s current operation to a member: its own for a probe, otherwise a
    /// random running one, not the one that failed it last if there is another.
    pub(super) fn submit(&mut self, c: usize) {
        self.attempts += 1;
        let attempt = self.attempts;
        let client = &self.clients[c];
        let current = client.current.as_ref().expect("a current operation");
        let last = current.request.map(|id| id.member);
        let member = match client.fixed_member() {
            Some(m) => self.cluster.is_up(m).then_some(m),
            None => {
                let up = self.cluster.up();
                let others: Vec<MemberId> =
                    up.iter().copied().filter(|&m| Some(m) != last).collect();
                let choices = if others.is_empty() { up } else { others };
                (!choices.is_empty()).then(|| self.rng.pick(&choices))
            }
        };
        let command = current.command.clone();
        let current = self.clients[c]
            .current
            .as_mut()
            .expect("a current operation");
        current.attempt = attempt;
        let Some(m) = member else {
            // Nobody to connect to: the command was not sent, so try again shortly.
            let at = self.now + Duration::from_millis(10);
            self.events.push(at, Event::Attempt { client: c, attempt });
            return;
        };
        let now = self.now;
        let id = self
            .cluster
            .node(m)
            .expect("member is up")
            .submit(now, command);
        trace!(
            self,
            "client {c} submits {id:?} to member {m}: {:?}", current.command
        );
        current.request = Some(id);
        self.waiting.insert(id, c);
        self.dirty(m);
        let timeout = if self.clients[c].fixed_member().is_some() {
            LIVENESS_BOUND
        } else {
            self.config.client_timeout
        };
        self.events
            .push(now + timeout, Event::Timeout { client: c, attempt });
    }

    pub(super) fn reply(&mut self, id: RequestId, answer: Answer) {
        // Nobody waits for an attempt its client gave up on, but the liveness check wants to
        // know that the answer came at all.
        let Some(c) = self.waiting.remove(&id) else {
            if let Some(op) = self.abandoned.remove(&id) {
                self.history.answered_late(op, self.now);
            }
            return;
        };
        if matches!(answer, Answer::Overloaded { .. }) {
            // Refused before it ran, as a busy runtime refuses: the client tries again or
            // moves on, as after a timeout.
            self.waiting.insert(id, c);
            let backoff = self
                .rng
                .duration(Duration::from_millis(1), Duration::from_millis(20));
            self.abandon_attempt(c, backoff);
            return;
        }
        let client = &mut self.clients[c];
        let current = client
            .current
            .take()
            .expect("a waiting client has a current operation");
        assert_eq!(
            current.request,
            Some(id),
            "client {c} waits on one request at a time"
        );
        trace!(self, "client {c} gets {answer:?} for {id:?}");
        client.observe(&current.command, &answer);
        self.history.complete(current.op, self.now, answer);
        self.schedule_next(c);
    }

    /// Gives up on client `c`'s current attempt (timeout or broken connection): a session client
    /// retries after `backoff`, anyone else records the outcome as unknown and moves on.
    pub(super) fn abandon_attempt(&mut self, c: usize, backoff: Duration) {
        let client = &mut self.clients[c];
        let session = client.is_session();
        let current = client.current.as_mut().expect("a current operation");
        if let Some(id) = current.request
            && self.waiting.remove(&id).is_some()
        {
            self.abandoned.insert(id, current.op);
        }
        if session {
            self.history.retry(current.op);
            // A fresh attempt number, so that no stale event fires for it.
            self.attempts += 1;
            current.attempt = self.attempts;
            let attempt = current.attempt;
            self.events
                .push(self.now + backoff, Event::Attempt { client: c, attempt });
        } else {
            client.current = None;
            self.schedule_next(c);
        }
    }

    pub(super) fn schedule_next(&mut self, c: usize) {
        let think = self
            .rng
            .duration(Duration::from_micros(1), self.config.think);
        self.events.push(self.now + think, Event::ClientStart(c));
    }
}
