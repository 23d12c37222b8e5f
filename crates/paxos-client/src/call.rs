//! One call of either twin, without I/O: which member to try next and for how long, what a
//! reply means, and when to stop with which error.
//!
//! A twin drives a [`Call`] in a loop: [`Call::step`] says to send an [`Outgoing`] request, to
//! pause, or that the call is over; the twin sends (blocking or `.await`), hands the outcome to
//! [`Call::handle`], and pauses with `thread::sleep` or `tokio::time::sleep`. Everything a
//! client of a replicated store must get right is here, once: the members in turn from the one
//! that answered last, the same `client_id` and `seq` on every attempt of a write, the deadline,
//! and telling a command that did not run from one that may have.

use std::time::{Duration, Instant};

use paxos_core::command::within_limit;
use paxos_core::{Answer, Command, Op};
use serde_json::Value as Json;

use crate::answer::{Cas, Consistency, Done, ReadOptions, Status, Watch};
use crate::builder::Settings;
use crate::error::{Attempt, Error, Failure};

/// The largest request body a member reads (`docs/api.md`, "Size limits"); a larger one is
/// refused here, because a member answers it `413` before reading it and closes, which an HTTP
/// client sees as a broken connection: a command plainly refused would look like one whose
/// outcome is unknown.
pub const MAX_BODY: usize = 1024 * 1024;
/// The largest answer read: an `append` answers with a whole list of up to 1 MiB of strings,
/// which JSON escaping may make a few times larger.
pub const MAX_ANSWER: u64 = 8 * 1024 * 1024;
/// The first pause after a round in which no member answered; it doubles each round.
const FIRST_PAUSE: Duration = Duration::from_millis(50);
/// The longest pause between rounds.
const MAX_PAUSE: Duration = Duration::from_secs(1);
/// The least time left for which another attempt starts. An attempt that the deadline cuts
/// short is one whose outcome is unknown, so one that could hardly be answered in time would
/// turn a call that ran nothing into one that may have: the call ends instead.
const MIN_ATTEMPT: Duration = Duration::from_millis(250);
/// The User-Agent both twins send.
pub const USER_AGENT: &str = concat!("paxos-client/", env!("CARGO_PKG_VERSION"));

/// The exactly-once identity of one client: a random `client_id` and the `seq` of its latest
/// write. The cluster keeps one latest `seq` per client and refuses older ones, so one client
/// has one write in flight at a time: the twins' write methods take `&mut self`.
#[derive(Debug)]
pub(crate) struct Session {
    pub client_id: String,
    seq: u64,
}

impl Session {
    pub fn new() -> Session {
        Session {
            client_id: uuid::Uuid::new_v4().simple().to_string(),
            seq: 0,
        }
    }

    /// The identity of the next write: the same pair for every attempt of it.
    fn next(&mut self) -> (String, u64) {
        self.seq += 1;
        (self.client_id.clone(), self.seq)
    }
}

/// What a call may do after an attempt that may have reached the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A read, a watch, a status: running it again changes nothing, so every failure moves on.
    Read,
    /// A write with `client_id` and `seq`: every failure moves on, with the same pair.
    ExactlyOnce,
    /// A write without them: a failure that may have applied ends the call.
    AtMostOnce,
}

/// What to ask each member.
#[derive(Clone, Debug)]
enum Request {
    /// `POST /client-request` with this body.
    Command(Vec<u8>),
    /// `GET /watch`, with what is left of the wait by the time each attempt goes.
    Watch {
        key: String,
        after: u64,
        until: Instant,
    },
    /// `GET /status`.
    Status,
}

/// One HTTP request for a twin to send.
#[derive(Clone, Debug)]
pub(crate) struct Outgoing {
    pub url: String,
    /// `Some` for a POST of JSON, `None` for a GET.
    pub body: Option<Vec<u8>>,
    /// How long the whole exchange may take, connecting included.
    pub timeout: Duration,
}

/// A whole HTTP answer.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// What a twin does next.
#[derive(Debug)]
pub(crate) enum Step<T> {
    Send(Outgoing),
    Pause(Duration),
    Finish(Result<T, Error>),
}

/// What one reply says.
#[derive(Debug)]
enum Verdict<T> {
    /// The answer.
    Answer(T),
    /// An answer that the request cannot succeed (`400`, `413`), with the server's sentence.
    Refused(String),
    /// No answer from this member; `ran` says whether the command may have run.
    Failed { failure: Failure, ran: bool },
}

/// One call: a command, a watch or a status, over the members in turn until the deadline.
#[derive(Debug)]
pub(crate) struct Call<T> {
    kind: Kind,
    request: Request,
    decode: fn(u16, &[u8]) -> Verdict<T>,
    servers: Vec<String>,
    /// `http` or `https`.
    scheme: &'static str,
    /// The member each round starts with: the one that answered last.
    first: usize,
    /// How many members this round has tried.
    tried: usize,
    /// One attempt only, for `members`: each member is asked on its own.
    once: bool,
    deadline: Instant,
    attempt_timeout: Duration,
    pause: Duration,
    /// The member the attempt in flight went to.
    in_flight: Option<usize>,
    attempts: Vec<Attempt>,
    /// Set by `handle` once the call is over.
    result: Option<Result<T, Error>>,
    /// The member that answered, to start the next call with.
    answered_by: Option<usize>,
}

impl<T> Call<T> {
    fn new(
        settings: &Settings,
        first: usize,
        kind: Kind,
        request: Request,
        decode: fn(u16, &[u8]) -> Verdict<T>,
        now: Instant,
    ) -> Call<T> {
        let wait = match &request {
            Request::Watch { until, .. } => until.saturating_duration_since(now),
            _ => Duration::ZERO,
        };
        Call {
            kind,
            request,
            decode,
            servers: settings.servers.clone(),
            scheme: settings.scheme,
            first: first % settings.servers.len(),
            tried: 0,
            once: false,
            deadline: later(later(now, wait), settings.timeout),
            attempt_timeout: settings.attempt_timeout,
            pause: FIRST_PAUSE,
            in_flight: None,
            attempts: Vec::new(),
            result: None,
            answered_by: None,
        }
    }

    /// A call that fails at once, before anything is sent.
    fn failed(settings: &Settings, error: Error, now: Instant) -> Call<T> {
        let mut call = Call::new(settings, 0, Kind::Read, Request::Status, no_answer, now);
        call.result = Some(Err(error));
        call
    }

    /// What to do now.
    pub fn step(&mut self, now: Instant) -> Step<T> {
        if let Some(result) = self.result.take() {
            return Step::Finish(result);
        }
        let left = self.deadline.saturating_duration_since(now);
        if (left < MIN_ATTEMPT || self.once) && !self.attempts.is_empty() {
            return Step::Finish(Err(self.give_up()));
        }
        if self.tried == self.servers.len() && self.refused_by_every_member() {
            // A refused handshake is a certificate that does not fit, which waiting does not
            // change: the call ends at once rather than at its deadline.
            return Step::Finish(Err(self.give_up()));
        }
        if self.tried == self.servers.len() {
            // No member answered this round: pause before the next, so that a cluster
            // electing a leader or a member restarting is not hammered, but leave the next
            // round its moment.
            self.tried = 0;
            let pause = self.pause.min(left - MIN_ATTEMPT);
            self.pause = (self.pause * 2).min(MAX_PAUSE);
            return Step::Pause(pause);
        }
        let member = (self.first + self.tried) % self.servers.len();
        self.tried += 1;
        self.in_flight = Some(member);
        let server = &self.servers[member];
        let (path, body, timeout) = match &self.request {
            Request::Command(body) => (
                "/client-request".to_owned(),
                Some(body.clone()),
                self.attempt_timeout,
            ),
            Request::Watch { key, after, until } => {
                let wait = until.saturating_duration_since(now);
                let path = format!(
                    "/watch?key={}&after={after}&wait={}",
                    encode(key),
                    wait.as_secs_f64()
                );
                (path, None, wait.saturating_add(self.attempt_timeout))
            }
            Request::Status => ("/status".to_owned(), None, self.attempt_timeout),
        };
        // An attempt never outlives the call; the first one gets at least a moment.
        let timeout = timeout.min(left).max(Duration::from_millis(1));
        Step::Send(Outgoing {
            url: format!("{}://{server}{path}", self.scheme),
            body,
            timeout,
        })
    }

    /// The outcome of the attempt `step` asked for.
    pub fn handle(&mut self, outcome: Result<Reply, Failure>) {
        let member = self.in_flight.take().expect("handle follows a Step::Send");
        let server = self.servers[member].clone();
        let (failure, ran) = match outcome {
            Err(failure) => {
                let ran = matches!(failure, Failure::NoAnswer(_));
                (failure, ran)
            }
            Ok(reply) => match (self.decode)(reply.status, &reply.body) {
                Verdict::Answer(answer) => {
                    self.answered_by = Some(member);
                    self.result = Some(Ok(answer));
                    return;
                }
                Verdict::Refused(message) => {
                    self.answered_by = Some(member);
                    self.result = Some(Err(Error::Refused {
                        server: Some(server),
                        status: reply.status,
                        message,
                    }));
                    return;
                }
                Verdict::Failed { failure, ran } => (failure, ran),
            },
        };
        let may_have_applied = ran && self.kind != Kind::Read;
        self.attempts.push(Attempt {
            server,
            failure,
            may_have_applied,
        });
        if may_have_applied && self.kind == Kind::AtMostOnce {
            self.result = Some(Err(self.give_up()));
        }
    }

    /// Whether the round just over failed its TLS handshake with every member: a round's
    /// attempts are the last ones, as an answer ends the call.
    fn refused_by_every_member(&self) -> bool {
        let round = self.attempts.len().saturating_sub(self.servers.len());
        self.attempts.len() >= self.servers.len()
            && self.attempts[round..]
                .iter()
                .all(|a| matches!(a.failure, Failure::Tls(_)))
    }

    /// The member that answered, if one did.
    pub fn answered_by(&self) -> Option<usize> {
        self.answered_by
    }

    fn give_up(&mut self) -> Error {
        let attempts = std::mem::take(&mut self.attempts);
        if attempts.iter().any(|a| a.may_have_applied) {
            Error::OutcomeUnknown { attempts }
        } else {
            Error::Unavailable { attempts }
        }
    }
}

/// Builds the calls of a client: its settings, its exactly-once session and the member that
/// answered last. Each twin's `Client` holds one and adds the HTTP.
#[derive(Debug)]
pub(crate) struct Calls {
    pub settings: Settings,
    pub session: Session,
    /// The member that answered last, where the next call starts: members answer alike, and
    /// one that answered is likely up.
    first: std::sync::atomic::AtomicUsize,
}

impl Calls {
    pub fn new(settings: Settings) -> Calls {
        Calls {
            settings,
            session: Session::new(),
            first: 0.into(),
        }
    }

    /// The same settings and first member, and a session of its own.
    pub fn fork(&self) -> Calls {
        Calls {
            settings: self.settings.clone(),
            session: Session::new(),
            first: self.first().into(),
        }
    }

    fn first(&self) -> usize {
        self.first.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Remembers who answered `call`, to start the next call there.
    pub fn finished<T>(&self, call: &Call<T>) {
        if let Some(member) = call.answered_by() {
            self.first
                .store(member, std::sync::atomic::Ordering::Relaxed);
        }
    }

    pub fn get(&self, key: &str, options: &ReadOptions) -> Call<Done> {
        let now = Instant::now();
        let op = Op::Get {
            key: key.to_owned(),
        };
        let mut command = Command::new(op);
        // The default is left out of the body, so servers from before the field take it too.
        command.consistency = match options.consistency {
            Consistency::Linearizable => paxos_core::Consistency::Linearizable,
            Consistency::Serializable => paxos_core::Consistency::Serializable,
        };
        self.command(Kind::Read, command, decode_done, now)
    }

    pub fn put(&mut self, key: &str, value: &str) -> Call<Done> {
        let op = Op::Put {
            key: key.to_owned(),
            value: value.to_owned(),
        };
        self.write(op, decode_done)
    }

    pub fn delete(&mut self, key: &str) -> Call<Done> {
        let op = Op::Delete {
            key: key.to_owned(),
        };
        self.write(op, decode_done)
    }

    pub fn cas(&mut self, key: &str, expected: Option<&str>, value: &str) -> Call<Cas> {
        let op = Op::Cas {
            key: key.to_owned(),
            expected: expected.map(str::to_owned),
            value: value.to_owned(),
        };
        self.write(op, decode_cas)
    }

    pub fn append(&mut self, key: &str, value: &str) -> Call<Done> {
        let op = Op::Append {
            key: key.to_owned(),
            value: value.to_owned(),
        };
        self.write(op, decode_done)
    }

    pub fn watch(&self, key: &str, after: u64, wait: Duration) -> Call<Watch> {
        let now = Instant::now();
        let request = Request::Watch {
            key: key.to_owned(),
            after,
            until: later(now, wait),
        };
        Call::new(
            &self.settings,
            self.first(),
            Kind::Read,
            request,
            decode_watch,
            now,
        )
    }

    /// `/status` of the first member that answers.
    pub fn status(&self) -> Call<Status> {
        let now = Instant::now();
        let first = self.first();
        Call::new(
            &self.settings,
            first,
            Kind::Read,
            Request::Status,
            decode_status,
            now,
        )
    }

    /// `/status` of member `member` alone, one attempt within the attempt timeout.
    pub fn status_of(&self, member: usize) -> Call<Status> {
        let now = Instant::now();
        let mut call = Call::new(
            &self.settings,
            member,
            Kind::Read,
            Request::Status,
            decode_status,
            now,
        );
        call.once = true;
        call
    }

    fn write<T>(&mut self, op: Op, decode: fn(u16, &[u8]) -> Verdict<T>) -> Call<T> {
        let now = Instant::now();
        let mut command = Command::new(op);
        let kind = if self.settings.exactly_once {
            let (client_id, seq) = self.session.next();
            command.client_id = Some(client_id);
            command.seq = Some(seq);
            Kind::ExactlyOnce
        } else {
            Kind::AtMostOnce
        };
        self.command(kind, command, decode, now)
    }

    fn command<T>(
        &self,
        kind: Kind,
        command: Command,
        decode: fn(u16, &[u8]) -> Verdict<T>,
        now: Instant,
    ) -> Call<T> {
        match body(&command) {
            Ok(body) => Call::new(
                &self.settings,
                self.first(),
                kind,
                Request::Command(body),
                decode,
                now,
            ),
            Err(error) => Call::failed(&self.settings, error, now),
        }
    }
}

/// The JSON body of a command, unless a member would refuse it for its size: refused here
/// with the members' own sentence (see [`MAX_BODY`]).
fn body(command: &Command) -> Result<Vec<u8>, Error> {
    let refused = |status, message| Error::Refused {
        server: None,
        status,
        message,
    };
    let (key, value, expected) = match &command.op {
        Op::Get { key } | Op::Delete { key } => (key, None, None),
        Op::Put { key, value } | Op::Append { key, value } => (key, Some(value), None),
        Op::Cas {
            key,
            expected,
            value,
        } => (key, Some(value), expected.as_ref()),
    };
    let fields = [("key", Some(key)), ("value", value), ("expected", expected)];
    for (name, text) in fields {
        if let Some(text) = text {
            within_limit(name, text).map_err(|e| refused(400, e))?;
        }
    }
    let body = serde_json::to_vec(command).expect("a command always serializes");
    if body.len() > MAX_BODY {
        let message = format!("the request body is over the limit of {MAX_BODY} bytes");
        return Err(refused(413, message));
    }
    Ok(body)
}

/// A short account of an HTTP client's error, the same words from both twins' clients: the
/// kind of the innermost I/O error when there is one, else the innermost error's text.
pub(crate) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    use std::io::ErrorKind;
    let mut innermost = error;
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                ErrorKind::ConnectionRefused => return "connection refused".to_owned(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => {
                    return "connection reset".to_owned();
                }
                ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof => {
                    return "connection closed".to_owned();
                }
                ErrorKind::TimedOut | ErrorKind::WouldBlock => return "timed out".to_owned(),
                _ => {}
            }
        }
        innermost = e;
        current = e.source();
    }
    let text = innermost.to_string();
    let lower = text.to_lowercase();
    if lower.contains("timed out") || lower.contains("timeout") {
        return "timed out".to_owned();
    }
    if lower.contains("connection refused") {
        return "connection refused".to_owned();
    }
    text
}

/// `now + duration`, or a moment decades away when that overflows: a caller may ask for a
/// timeout of `Duration::MAX`.
fn later(now: Instant, duration: Duration) -> Instant {
    const FOREVER: Duration = Duration::from_secs(60 * 60 * 24 * 365 * 30);
    now.checked_add(duration).unwrap_or_else(|| now + FOREVER)
}

/// Percent-encodes a query value: every byte but the unreserved characters of RFC 3986.
fn encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// The sentence of an error body `{"error": "..."}`, or the start of whatever else came.
fn sentence(body: &[u8]) -> String {
    match serde_json::from_slice::<Json>(body) {
        Ok(json) => match json.get("error").and_then(Json::as_str) {
            Some(sentence) => sentence.to_owned(),
            None => json.to_string(),
        },
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            text.chars().take(200).collect::<String>().trim().to_owned()
        }
    }
}

/// What a reply that is not a `200` says, the same for every route: `400` and `413` refuse the
/// request; a `503` whose sentence says the command was not run (or the request not read) is
/// safe to send anywhere, any other `503` and every `5xx` may have run it (`docs/api.md`, "What
/// a `503` means"); other `4xx` (`408`, `404`, ...) did not run it.
fn not_ok<T>(status: u16, body: &[u8]) -> Verdict<T> {
    let message = sentence(body);
    if matches!(status, 400 | 413) {
        return Verdict::Refused(message);
    }
    let not_run = message.contains("was not run") || message.contains("was not read");
    let ran = status >= 500 && !(status == 503 && not_run);
    Verdict::Failed {
        failure: Failure::Status { status, message },
        ran,
    }
}

/// A `200` whose body is not what it should be: the command ran, but its answer is lost.
fn bad_answer<T>(why: String) -> Verdict<T> {
    Verdict::Failed {
        failure: Failure::BadAnswer(why),
        ran: true,
    }
}

fn decode_answer(status: u16, body: &[u8]) -> Result<Answer, Verdict<Answer>> {
    if status != 200 {
        return Err(not_ok(status, body));
    }
    serde_json::from_slice::<Answer>(body)
        .map_err(|e| bad_answer(format!("a 200 that is not a command's answer: {e}")))
}

fn decode_done(status: u16, body: &[u8]) -> Verdict<Done> {
    match decode_answer(status, body) {
        Ok(Answer::Done {
            value,
            index,
            modified,
            ..
        }) => Verdict::Answer(Done {
            value,
            index,
            modified,
        }),
        Ok(other) => bad_answer(format!("a 200 with an unexpected answer: {other:?}")),
        Err(verdict) => verdict.map(),
    }
}

fn decode_cas(status: u16, body: &[u8]) -> Verdict<Cas> {
    match decode_answer(status, body) {
        Ok(Answer::Done {
            value,
            index,
            modified,
            ..
        }) => Verdict::Answer(Cas::Swapped(Done {
            value,
            index,
            modified,
        })),
        Ok(Answer::Mismatch {
            value, modified, ..
        }) => Verdict::Answer(Cas::Mismatch { value, modified }),
        Ok(other) => bad_answer(format!("a 200 with an unexpected answer: {other:?}")),
        Err(verdict) => verdict.map(),
    }
}

fn decode_watch(status: u16, body: &[u8]) -> Verdict<Watch> {
    #[derive(serde::Deserialize)]
    struct Answer {
        changed: bool,
        #[serde(default)]
        value: Option<paxos_core::Value>,
        #[serde(default)]
        modified: Option<u64>,
        index: u64,
    }
    if status != 200 {
        return not_ok(status, body);
    }
    match serde_json::from_slice::<Answer>(body) {
        Ok(Answer {
            changed: true,
            value,
            modified: Some(modified),
            index,
        }) => Verdict::Answer(Watch::Changed {
            value,
            modified,
            index,
        }),
        Ok(Answer {
            changed: false,
            index,
            ..
        }) => Verdict::Answer(Watch::Unchanged { index }),
        Ok(_) => bad_answer("a change without its modification index".to_owned()),
        Err(e) => bad_answer(format!("a 200 that is not a watch's answer: {e}")),
    }
}

fn decode_status(status: u16, body: &[u8]) -> Verdict<Status> {
    if status != 200 {
        return not_ok(status, body);
    }
    match serde_json::from_slice::<Status>(body) {
        Ok(status) => Verdict::Answer(status),
        Err(e) => bad_answer(format!("a 200 that is not a status: {e}")),
    }
}

/// For a call that never sends.
fn no_answer<T>(status: u16, body: &[u8]) -> Verdict<T> {
    not_ok(status, body)
}

impl Verdict<Answer> {
    /// The same verdict for a call that answers something else; only `Answer` carries a value.
    fn map<T>(self) -> Verdict<T> {
        match self {
            Verdict::Answer(answer) => bad_answer(format!("an unexpected answer: {answer:?}")),
            Verdict::Refused(message) => Verdict::Refused(message),
            Verdict::Failed { failure, ran } => Verdict::Failed { failure, ran },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::ClientBuilder;
    use paxos_core::command::MAX_VALUE_BYTES;

    fn settings(servers: &[&str]) -> Settings {
        ClientBuilder::<()>::default()
            .servers(servers.iter().copied())
            .timeout(Duration::from_secs(10))
            .checked()
            .unwrap()
    }

    fn reply(status: u16, body: &str) -> Result<Reply, Failure> {
        Ok(Reply {
            status,
            body: body.as_bytes().to_vec(),
        })
    }

    fn sent<T: std::fmt::Debug>(call: &mut Call<T>, now: Instant) -> Outgoing {
        match call.step(now) {
            Step::Send(outgoing) => outgoing,
            other => panic!("expected a send, got {other:?}"),
        }
    }

    fn finished<T: std::fmt::Debug>(call: &mut Call<T>, now: Instant) -> Result<T, Error> {
        match call.step(now) {
            Step::Finish(result) => result,
            other => panic!("expected the end, got {other:?}"),
        }
    }

    const OK: &str = r#"{"ok":true,"value":["x"],"index":7,"modified":7}"#;

    #[test]
    fn a_write_goes_to_the_next_member_with_the_same_pair_until_one_answers() {
        let mut calls = Calls::new(settings(&["a:1", "b:1", "c:1"]));
        let mut call = calls.append("k", "x");
        let now = Instant::now();
        let first = sent(&mut call, now);
        assert_eq!(first.url, "http://a:1/client-request");
        call.handle(Err(Failure::NoAnswer("timed out".into())));
        let second = sent(&mut call, now);
        assert_eq!(second.url, "http://b:1/client-request");
        assert_eq!(first.body, second.body, "a retry is the same command");
        let body: Json = serde_json::from_slice(second.body.as_deref().unwrap()).unwrap();
        assert_eq!(
            body["client_id"].as_str(),
            Some(calls.session.client_id.as_str())
        );
        assert_eq!(body["seq"], 1);
        call.handle(reply(200, OK));
        let done = finished(&mut call, now).unwrap();
        assert_eq!(done.index, 7);
        calls.finished(&call);
        // The next call starts with the member that answered, and has the next seq.
        let mut next = calls.put("k", "v");
        let outgoing = sent(&mut next, now);
        assert_eq!(outgoing.url, "http://b:1/client-request");
        let body: Json = serde_json::from_slice(outgoing.body.as_deref().unwrap()).unwrap();
        assert_eq!(body["seq"], 2);
    }

    #[test]
    fn reads_carry_no_identity() {
        let calls = Calls::new(settings(&["a:1"]));
        let mut call = calls.get("k", &ReadOptions::default());
        let outgoing = sent(&mut call, Instant::now());
        assert_eq!(
            outgoing.body.as_deref(),
            Some(&br#"{"op":"get","key":"k"}"#[..])
        );
        let serializable = ReadOptions::default().consistency(Consistency::Serializable);
        let mut call = calls.get("k", &serializable);
        let outgoing = sent(&mut call, Instant::now());
        assert_eq!(
            outgoing.body.as_deref(),
            Some(&br#"{"op":"get","key":"k","consistency":"serializable"}"#[..])
        );
    }

    #[test]
    fn a_write_that_may_have_applied_is_unknown_when_the_deadline_passes() {
        let mut calls = Calls::new(settings(&["a:1", "b:1"]));
        let mut call = calls.put("k", "v");
        let now = Instant::now();
        sent(&mut call, now);
        call.handle(reply(
            503,
            r#"{"error":"the command was not committed within 5 s; its outcome is unknown"}"#,
        ));
        sent(&mut call, now);
        call.handle(Err(Failure::Unreachable("connection refused".into())));
        // Both tried: a pause, then both again, until the deadline.
        assert!(matches!(call.step(now), Step::Pause(p) if p == FIRST_PAUSE));
        sent(&mut call, now);
        call.handle(Err(Failure::Unreachable("connection refused".into())));
        let later = now + Duration::from_secs(11);
        match finished(&mut call, later) {
            Err(Error::OutcomeUnknown { attempts }) => {
                assert_eq!(attempts.len(), 3);
                assert!(attempts[0].may_have_applied);
                assert!(!attempts[1].may_have_applied);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_round_of_refused_handshakes_ends_the_call_at_once() {
        let settings = ClientBuilder::<()>::default()
            .servers(["a:1", "b:1"])
            .ca_file("ca.pem")
            .checked()
            .unwrap();
        let mut calls = Calls::new(settings);
        let mut call = calls.put("k", "v");
        let now = Instant::now();
        assert_eq!(sent(&mut call, now).url, "https://a:1/client-request");
        call.handle(Err(Failure::Tls("its certificate was refused".into())));
        // One member's refusal is that member's: the next is tried.
        assert_eq!(sent(&mut call, now).url, "https://b:1/client-request");
        call.handle(Err(Failure::Tls("its certificate was refused".into())));
        // Every member's is the client's: no pause and no second round, and nothing ran.
        match finished(&mut call, now) {
            Err(Error::Unavailable { attempts }) => {
                assert_eq!(attempts.len(), 2);
                assert!(attempts.iter().all(|a| !a.may_have_applied));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_attempt_starts_too_late_to_be_answered() {
        let mut calls = Calls::new(settings(&["a:1"]));
        let mut call = calls.put("k", "v");
        let deadline = call.deadline;
        sent(&mut call, Instant::now());
        call.handle(Err(Failure::Unreachable("connection refused".into())));
        // The pause leaves the next round its moment.
        let almost = deadline - MIN_ATTEMPT - Duration::from_millis(10);
        assert!(matches!(call.step(almost), Step::Pause(p) if p == Duration::from_millis(10)));
        sent(&mut call, almost + Duration::from_millis(10));
        call.handle(Err(Failure::Unreachable("connection refused".into())));
        // Too little is left for another: unavailable, not cut short into an unknown outcome.
        let late = deadline - MIN_ATTEMPT / 2;
        assert!(matches!(
            finished(&mut call, late),
            Err(Error::Unavailable { attempts }) if attempts.len() == 2
        ));
    }

    #[test]
    fn a_write_nobody_ran_is_unavailable() {
        let mut calls = Calls::new(settings(&["a:1", "b:1"]));
        let mut call = calls.put("k", "v");
        let now = Instant::now();
        sent(&mut call, now);
        call.handle(reply(
            503,
            r#"{"error":"the server is overloaded with 480 client requests waiting; the command was not run, retry later"}"#,
        ));
        sent(&mut call, now);
        call.handle(Err(Failure::Unreachable("connection refused".into())));
        let later = now + Duration::from_secs(11);
        match finished(&mut call, later) {
            Err(Error::Unavailable { attempts }) => {
                assert_eq!(attempts.len(), 2);
                assert!(attempts.iter().all(|a| !a.may_have_applied));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn without_exactly_once_a_write_that_may_have_applied_is_not_sent_again() {
        let settings = ClientBuilder::<()>::default()
            .servers(["a:1", "b:1"])
            .exactly_once(false)
            .checked()
            .unwrap();
        let mut calls = Calls::new(settings);
        let mut call = calls.put("k", "v");
        let now = Instant::now();
        let outgoing = sent(&mut call, now);
        assert_eq!(
            outgoing.body.as_deref(),
            Some(&br#"{"op":"put","key":"k","value":"v"}"#[..])
        );
        // Not run: the next member may have it.
        call.handle(Err(Failure::Unreachable("connection refused".into())));
        sent(&mut call, now);
        call.handle(Err(Failure::NoAnswer("connection reset".into())));
        assert!(matches!(
            finished(&mut call, now),
            Err(Error::OutcomeUnknown { attempts }) if attempts.len() == 2
        ));
    }

    #[test]
    fn a_refusal_ends_the_call_with_the_servers_sentence() {
        let mut calls = Calls::new(settings(&["a:1", "b:1"]));
        let mut call = calls.append("k", "x");
        let now = Instant::now();
        sent(&mut call, now);
        call.handle(reply(400, r#"{"error":"key `k` holds a string"}"#));
        assert_eq!(
            finished(&mut call, now).unwrap_err(),
            Error::Refused {
                server: Some("a:1".into()),
                status: 400,
                message: "key `k` holds a string".into()
            }
        );
    }

    #[test]
    fn a_command_over_the_limits_is_refused_before_it_is_sent() {
        let mut calls = Calls::new(settings(&["a:1"]));
        let mut call = calls.put("k", &"v".repeat(MAX_VALUE_BYTES + 1));
        match finished(&mut call, Instant::now()) {
            Err(Error::Refused {
                server: None,
                status: 400,
                message,
            }) => assert!(message.starts_with("field `value` is 524289 bytes long")),
            other => panic!("{other:?}"),
        }
        // Each field within its limit, the body past 1 MiB: the members' 413.
        let half = "e".repeat(MAX_VALUE_BYTES);
        let mut call = calls.cas("k", Some(&half), &half);
        match finished(&mut call, Instant::now()) {
            Err(Error::Refused {
                server: None,
                status: 413,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn answers_decode_as_the_api_says() {
        let mismatch = decode_cas(200, br#"{"ok":false,"value":"x","modified":3}"#);
        assert!(matches!(
            mismatch,
            Verdict::Answer(Cas::Mismatch { modified: 3, .. })
        ));
        let changed = decode_watch(
            200,
            br#"{"changed":true,"value":null,"modified":4,"index":9}"#,
        );
        assert!(matches!(
            changed,
            Verdict::Answer(Watch::Changed {
                value: None,
                modified: 4,
                index: 9
            })
        ));
        let unchanged = decode_watch(200, br#"{"changed":false,"index":9}"#);
        assert!(matches!(
            unchanged,
            Verdict::Answer(Watch::Unchanged { index: 9 })
        ));
        // The next watch starts after a change's slot, and never before the last watch's
        // `after`, though a lagging member answers "unchanged" through an earlier slot.
        let change = Watch::Changed {
            value: None,
            modified: 4,
            index: 9,
        };
        assert_eq!(change.next_after(2), 4);
        assert_eq!(Watch::Unchanged { index: 9 }.next_after(12), 12);
        assert_eq!(Watch::Unchanged { index: 9 }.next_after(3), 9);
        // A 200 that is not an answer: it ran, and its answer is lost.
        assert!(matches!(
            decode_done(200, b"<html>"),
            Verdict::Failed {
                failure: Failure::BadAnswer(_),
                ran: true
            }
        ));
        // Who knows what a 404 is, but it ran nothing.
        assert!(matches!(
            decode_done(404, b""),
            Verdict::Failed { ran: false, .. }
        ));
        assert!(matches!(
            decode_done(500, br#"{"error":"the server failed"}"#),
            Verdict::Failed { ran: true, .. }
        ));
    }

    #[test]
    fn a_watch_asks_for_what_is_left_of_its_wait() {
        let calls = Calls::new(settings(&["a:1", "b:1"]));
        let mut call = calls.watch("a key/é", 5, Duration::from_secs(30));
        let start = Instant::now();
        let first = sent(&mut call, start);
        assert!(
            first
                .url
                .starts_with("http://a:1/watch?key=a%20key%2F%C3%A9&after=5&wait=29.9"),
            "{}",
            first.url
        );
        assert!(first.timeout > Duration::from_secs(30));
        call.handle(Err(Failure::Unreachable("refused".into())));
        let second = sent(&mut call, start + Duration::from_secs(20));
        assert!(second.url.contains("&wait=9.9"), "{}", second.url);
    }

    #[test]
    fn members_are_asked_once_each() {
        let calls = Calls::new(settings(&["a:1", "b:1"]));
        let mut call = calls.status_of(1);
        let now = Instant::now();
        assert_eq!(sent(&mut call, now).url, "http://b:1/status");
        call.handle(Err(Failure::Unreachable("refused".into())));
        assert!(matches!(
            finished(&mut call, now),
            Err(Error::Unavailable { attempts }) if attempts.len() == 1
        ));
    }
}
