//! Client requests on their way into the log, and this member's own until they are answered.
//!
//! Every member takes client commands. Each becomes a [`Request`] named by the member, its
//! incarnation and a counter, and waits here until the turn ends: the leader proposes it, a
//! follower forwards it to the leader it knows (see [`Node::take_ready`]). The member that took
//! it keeps it among its *unanswered* requests until it applies the slot holding it and answers
//! the client, or gives up at the request timeout (the runtime answers `503` then).
//!
//! A leader that fails takes the requests it had not proposed yet with it, so a member sends
//! its unanswered requests again to every new leader it learns of. A request decided twice that
//! way applies once: each carries a *floor*, below which every request of its incarnation is
//! answered or given up, and the applied-requests table ([`crate::applied`]) uses it.

use std::collections::{BTreeMap, HashSet, VecDeque};

use super::Node;
use super::batches::batches;
use super::proposer::State;
use crate::Time;
use crate::command::Command;
use crate::log::{LogValue, MemberId, Request, RequestId};
use crate::message::Message;

/// The requests this member holds.
#[derive(Debug)]
pub(super) struct Requests {
    /// This start of the member, the middle part of every request id it makes.
    pub(super) incarnation: u64,
    /// The counter of the last request id made.
    next_request: u64,
    /// Client requests waiting to be proposed (at the leader) or forwarded (elsewhere).
    pub(super) waiting: VecDeque<Request>,
    /// This incarnation's own requests that are not applied yet, with the time to give up on
    /// each: they are sent again to every new leader, since the old one may have lost them.
    pub(super) unanswered: BTreeMap<RequestId, (Request, Time)>,
}

impl Requests {
    pub(super) fn new(incarnation: u64) -> Self {
        Requests {
            incarnation,
            next_request: 0,
            waiting: VecDeque::new(),
            unanswered: BTreeMap::new(),
        }
    }

    /// Takes a client command as member `me`'s next request, to be given up at `give_up_at`.
    pub(super) fn take(&mut self, me: MemberId, command: Command, give_up_at: Time) -> RequestId {
        let id = self.next_id(me);
        let mut request = Request {
            id,
            floor: 0,
            command,
        };
        self.unanswered.insert(id, (request.clone(), give_up_at));
        request.floor = self.floor();
        self.waiting.push_back(request);
        id
    }

    /// Names member `me`'s next client command. A read takes its id from here too but never
    /// enters the log, so its number is never below a floor that matters.
    pub(super) fn next_id(&mut self, me: MemberId) -> RequestId {
        self.next_request += 1;
        RequestId {
            member: me,
            incarnation: self.incarnation,
            n: self.next_request,
        }
    }

    /// The lowest number among this incarnation's unanswered requests (they are kept in id
    /// order), or the next number if none is: everything below it is answered or given up.
    fn floor(&self) -> u64 {
        self.unanswered
            .keys()
            .next()
            .map_or(self.next_request + 1, |id| id.n)
    }

    /// Notes that request `id` was applied; returns whether it is one of this incarnation's
    /// own, whose client is waiting for the answer.
    pub(super) fn answered(&mut self, me: MemberId, id: RequestId) -> bool {
        let own = id.member == me && id.incarnation == self.incarnation;
        if own {
            self.unanswered.remove(&id);
        }
        own
    }

    /// Forgets request `id` altogether: it was applied where this member did not see it.
    pub(super) fn forget(&mut self, id: RequestId) {
        self.unanswered.remove(&id);
        self.waiting.retain(|r| r.id != id);
    }
}

impl Node {
    /// `Forward(requests)`: a follower hands this member its clients' requests.
    pub(super) fn on_forward(&mut self, requests: Vec<Request>) {
        match self.proposer.state {
            State::Leader { .. } | State::Candidate { .. } => {
                self.requests.waiting.extend(requests)
            }
            // Re-forwarding could bounce requests between members that disagree on the leader;
            // dropping them leaves their origin to answer 503 at its request timeout.
            State::Follower => self.stats.requests_dropped += requests.len() as u64,
        }
    }

    /// At a follower, sends this member's waiting requests to the leader it knows, in batches.
    /// Others' requests (forwarded here while this member ran or led) are dropped rather than
    /// forwarded again; their origin sends them again itself.
    pub(super) fn forward_waiting(&mut self) {
        let Some(leader) = self.proposer.leader.filter(|&l| l != self.me) else {
            return;
        };
        let me = self.me;
        let (own, foreign): (Vec<Request>, Vec<Request>) = self
            .requests
            .waiting
            .drain(..)
            .partition(|r| r.id.member == me);
        self.stats.requests_dropped += foreign.len() as u64;
        self.stats.requests_forwarded += own.len() as u64;
        let (max_count, max_bytes) = (self.tuning.max_batch, self.tuning.max_batch_bytes);
        for requests in batches(own, max_count, max_bytes, LogValue::wire_size_of) {
            self.send(leader, Message::Forward { requests });
        }
    }

    /// Queues this member's unanswered requests again for the leader it just learned of. The
    /// old leader may have died or stepped down holding them unproposed; if it did propose one,
    /// the request is decided twice and [`apply_decided`](Self::apply_decided) applies it once.
    pub(super) fn resend_unanswered(&mut self) {
        let requests = &mut self.requests;
        let queued: HashSet<RequestId> = requests.waiting.iter().map(|r| r.id).collect();
        // The copies carry today's floor, which lets the log forget more of this incarnation.
        let floor = requests.floor();
        let again: Vec<Request> = requests
            .unanswered
            .iter()
            .filter(|(id, _)| !queued.contains(id))
            .map(|(_, (request, _))| Request {
                floor,
                ..request.clone()
            })
            .collect();
        self.stats.requests_resent += again.len() as u64;
        requests.waiting.extend(again);
    }

    /// Forgets the own requests whose clients have been answered `503` by now.
    pub(super) fn give_up_on_expired(&mut self) {
        let now = self.now;
        self.reads.give_up_on_expired(now);
        let me = self.me;
        let requests = &mut self.requests;
        let before = requests.unanswered.len();
        requests
            .unanswered
            .retain(|_, (_, give_up_at)| *give_up_at > now);
        if requests.unanswered.len() < before {
            let unanswered = &requests.unanswered;
            requests
                .waiting
                .retain(|r| r.id.member != me || unanswered.contains_key(&r.id));
        }
    }
}
