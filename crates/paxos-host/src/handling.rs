//! The steps a request goes through, less the waiting: both servers' handlers are these steps
//! joined by the runtime's own way of reading a body and of waiting (blocking or `.await`).
//!
//! A client request, in order:
//!
//! 1. [`open`]: refused at once while the server is stopping.
//! 2. [`Budget::take`] for its declared body length, then the runtime reads the body (`413`
//!    past [`MAX_BODY`](crate::http::MAX_BODY), `408` past the client timeout).
//! 3. [`command`]: the body parsed (`400` if it is not a command).
//! 4. [`queue`]: a place among the requests waiting for their commands (`503` past
//!    [`MAX_WAITING_CLIENTS`](crate::http::MAX_WAITING_CLIENTS)). Only now, with a whole
//!    command in hand, does a request count as waiting, so clients that stall in their bodies
//!    cannot take the places of those that sent theirs.
//! 5. The runtime waits for discovery, [`discovered`] judges it, the runtime submits the
//!    command to the driver and waits for the answer, and [`answered`] judges that.
//! 6. [`finish`]: the reply, with the outcome counted.
//!
//! Every refusal is a [`Refused`], so a handler is a chain of `?`s. A handler that panics
//! instead is caught by its server, which answers with [`panicked`].

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use paxos_core::{Answer, Command, Envelope};

use crate::http::{self, MAX_WAITING_CLIENTS, Reply};
use crate::metrics::{Metrics, Outcome, WaitingGuard, WatchGuard};
use crate::routing::Route;
use crate::watches::{Seen, Watch};
use crate::{Config, Found, log, routing};

/// A client request that ends without an answer from the log: the reply, and the outcome the
/// metrics count it under.
#[derive(Debug)]
pub struct Refused {
    pub outcome: Outcome,
    pub reply: Reply,
}

impl Refused {
    pub fn new(outcome: Outcome, reply: Reply) -> Refused {
        Refused { outcome, reply }
    }
}

/// Step 1: refuses a request that arrives while the server stops.
pub fn open(stopping: bool) -> Result<(), Refused> {
    match stopping {
        true => Err(Refused::new(Outcome::Unavailable, http::shutting_down())),
        false => Ok(()),
    }
}

/// Step 2: the refusal for a client body that could not be read, counted by why: too large
/// (`413`, and `408` for one too slow), unreadable (`400`), or over the budget (`503`).
pub fn unread(reply: Reply) -> Refused {
    let outcome = match reply.status {
        400 => Outcome::BadRequest,
        503 => Outcome::Unavailable,
        _ => Outcome::TooLarge,
    };
    Refused::new(outcome, reply)
}

/// A client request's record for the metrics: when it arrived, and its operation once its body
/// has been read as a command.
#[derive(Debug)]
pub struct Timing {
    started: Instant,
    op: Option<&'static str>,
}

impl Timing {
    /// Starts the clock of a request that has just arrived.
    pub fn start() -> Timing {
        Timing {
            started: Instant::now(),
            op: None,
        }
    }
}

/// Step 3: the command in a client request's body, noted in its `timing`.
pub fn command(body: &[u8], timing: &mut Timing) -> Result<Command, Refused> {
    let command = Command::from_json(body)
        .map_err(|sentence| Refused::new(Outcome::BadRequest, http::bad_request(&sentence)))?;
    timing.op = Some(command.op.name());
    Ok(command)
}

/// Step 4: counts the request as waiting until the guard drops; `503` if too many wait.
pub fn queue(metrics: &Metrics) -> Result<WaitingGuard<'_>, Refused> {
    let waiting = metrics.client_waiting();
    let now = metrics.client_waiting_now();
    if now > MAX_WAITING_CLIENTS {
        return Err(Refused::new(Outcome::Unavailable, http::overloaded(now)));
    }
    Ok(waiting)
}

/// Step 5a: whether the wait for discovery (`None`: the deadline passed) lets the command go.
pub fn discovered(found: Option<Found>, timeout: Duration) -> Result<(), Refused> {
    match found {
        Some(Some(_)) => Ok(()),
        Some(None) => Err(Refused::new(Outcome::Unavailable, http::shutting_down())),
        None => Err(Refused::new(
            Outcome::Unavailable,
            http::still_discovering(timeout),
        )),
    }
}

/// Step 5b: the refusal for a command the driver could not take (it is stopping).
pub fn not_submitted() -> Refused {
    Refused::new(Outcome::Unavailable, http::shutting_down())
}

/// Step 5c: the answer, or why there is none: the deadline passed (`None`, outcome unknown) or
/// the server stopped.
pub fn answered(
    answer: Option<Answer>,
    stopping: bool,
    timeout: Duration,
) -> Result<Answer, Refused> {
    match answer {
        Some(answer) => Ok(answer),
        None if stopping => Err(Refused::new(Outcome::Unavailable, http::shutting_down())),
        None => Err(Refused::new(Outcome::Timeout, http::timeout(timeout))),
    }
}

/// Step 6: the reply to a client request, its outcome and duration counted.
pub fn finish(metrics: &Metrics, timing: Timing, result: Result<Answer, Refused>) -> Reply {
    let (outcome, reply) = match result {
        Ok(answer) => (Outcome::of(&answer), http::answer(&answer)),
        Err(refused) => (refused.outcome, refused.reply),
    };
    metrics.client_request(timing.op, outcome, timing.started.elapsed());
    reply
}

/// The reply to a request whose handler panicked with `panic` (the payload `catch_unwind`
/// returns): counted in `paxos_handler_panics_total` and logged with the route, so that one
/// failing request is seen, and contained, while the member serves on.
pub fn panicked(metrics: &Metrics, route: Route, panic: &(dyn Any + Send)) -> Reply {
    let message = match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(message), _) => message,
        (_, Some(message)) => message.as_str(),
        _ => "a panic without a message",
    };
    metrics.handler_panic();
    log::handler_panicked(route.method(), route.path(), message);
    http::handler_panicked(route.method(), route.path())
}

/// A peer request's body, checked: the envelope, if this server can take it now. Refusals are
/// counted and logged; the caller hands the envelope to its driver and answers `204`.
pub fn envelope(
    body: &[u8],
    config: &Config,
    metrics: &Metrics,
    found: Option<Found>,
    stopping: bool,
) -> Result<Envelope, Reply> {
    let refuse = |reply| routing::refuse_peer(metrics, reply);
    let envelope = http::parse_envelope(body, config, metrics).map_err(refuse)?;
    if !matches!(found, Some(Some(_))) || stopping {
        return Err(refuse(http::peer_before_discovery()));
    }
    metrics.peer_received(envelope.messages.len());
    Ok(envelope)
}

/// A watch, step by step as a command's: [`open`], [`watch`] (its query), [`watching`] (a place
/// among the waiting watches), [`discovered`], then the runtime hands it to the driver and waits
/// until its deadline (and [`WATCH_GRACE`] past it, for the driver's "unchanged"), and
/// [`finish_watch`] replies.
pub fn watch(target: &str, config: &Config) -> Result<Watch, Refused> {
    let (key, after, wait) = watch_query(target, config.max_watch_wait())
        .map_err(|reply| Refused::new(Outcome::BadRequest, reply))?;
    Ok(Watch {
        key,
        after,
        deadline: Instant::now() + wait,
    })
}

/// How long past a watch's deadline its handler waits for the driver to answer "unchanged": the
/// driver looks at the time between batches, so a little after.
pub const WATCH_GRACE: Duration = Duration::from_secs(1);

/// Counts a watch as waiting until the guard drops; `503` past `max_watches`.
pub fn watching<'m>(metrics: &'m Metrics, config: &Config) -> Result<WatchGuard<'m>, Refused> {
    let waiting = metrics.watch_waiting();
    let now = metrics.watches_waiting_now();
    if now > config.max_watches as u64 {
        return Err(Refused::new(
            Outcome::Unavailable,
            http::too_many_watches(now),
        ));
    }
    Ok(waiting)
}

/// The driver's answer to a watch, or why there is none: the server stopped.
pub fn seen(seen: Option<Seen>) -> Result<Seen, Refused> {
    seen.ok_or_else(|| Refused::new(Outcome::Unavailable, http::shutting_down()))
}

/// The reply to a watch, its outcome counted.
pub fn finish_watch(metrics: &Metrics, result: Result<Seen, Refused>) -> Reply {
    match result {
        Ok(seen) => {
            metrics.watch_answered(Some(matches!(seen, Seen::Changed { .. })));
            Reply::new(200, seen.body())
        }
        Err(refused) => {
            metrics.watch_answered(None);
            refused.reply
        }
    }
}

/// What `GET /watch?key=K&after=I&wait=S` asks: the key, the index after which a change is
/// news (default 0), and how long to wait for one (seconds, default [`DEFAULT_WATCH_WAIT`], at
/// most `max_wait`, the config's `max_watch_wait_ms`). Anything else in the query is refused,
/// so that a misspelt parameter is an error and not a silently ignored wish.
pub fn watch_query(target: &str, max_wait: Duration) -> Result<(String, u64, Duration), Reply> {
    let bad = |sentence: String| http::bad_request(&sentence);
    let query = target.split_once('?').map_or("", |(_, query)| query);
    let query = query.split_once('#').map_or(query, |(query, _)| query);
    let (mut key, mut after, mut wait) = (None, 0, DEFAULT_WATCH_WAIT.min(max_wait));
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value =
            decode_query(value).ok_or_else(|| bad(format!("`{name}` is not valid UTF-8")))?;
        match name {
            "key" => key = Some(value),
            "after" => {
                after = value.parse().map_err(|_| {
                    bad(format!(
                        "`after` must be a log index (a whole number), not `{value}`"
                    ))
                })?;
            }
            "wait" => {
                let seconds: f64 = value
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                    .ok_or_else(|| {
                        bad(format!("`wait` must be a number of seconds, not `{value}`"))
                    })?;
                let max = max_wait.as_secs_f64();
                if seconds > max {
                    return Err(bad(format!(
                        "`wait` may be at most {max} s, not {seconds} s"
                    )));
                }
                wait = Duration::from_secs_f64(seconds);
            }
            other => {
                return Err(bad(format!(
                    "unknown query parameter `{other}`; a watch takes `key`, `after` and `wait`"
                )));
            }
        }
    }
    let key =
        key.ok_or_else(|| bad("a watch needs `key`, as in /watch?key=k&after=7".to_owned()))?;
    paxos_core::command::within_limit("key", &key).map_err(bad)?;
    Ok((key, after, wait))
}

/// How long a watch waits for a change when it does not say.
pub const DEFAULT_WATCH_WAIT: Duration = Duration::from_secs(30);

/// Decodes a query value as `application/x-www-form-urlencoded` does: `+` is a space, `%XX` a
/// byte. `None` if the bytes are not UTF-8; a `%` not followed by two hex digits stays as it is.
fn decode_query(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| value.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (byte, None) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Bytes of request bodies being read or held at once, shared by every connection of one kind
/// (clients, or peers), so that many large bodies at once cannot exhaust memory: past the budget
/// a request is refused with `503` before its body is read. A request holds its share until its
/// handler returns.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    taken: AtomicUsize,
}

/// The budgets of request bodies held at once: clients' and peers' apart, so that neither kind
/// can crowd out the other.
#[derive(Debug)]
pub struct Bodies {
    pub clients: Budget,
    pub peers: Budget,
}

impl Default for Bodies {
    fn default() -> Self {
        Bodies {
            clients: Budget::new(CLIENT_BODY_BUDGET),
            peers: Budget::new(PEER_BODY_BUDGET),
        }
    }
}

/// The budget of client request bodies: 64 one-mebibyte commands at once, or thousands of
/// ordinary ones.
pub const CLIENT_BODY_BUDGET: usize = 64 << 20;
/// The budget of peer request bodies: room for two peers' largest envelopes
/// ([`MAX_ENVELOPE_BYTES`](crate::peer::MAX_ENVELOPE_BYTES)) many times over, while twenty
/// forged 60 MB bodies at once are refused.
pub const PEER_BODY_BUDGET: usize = 128 << 20;

impl Budget {
    pub const fn new(limit: usize) -> Budget {
        Budget {
            limit,
            taken: AtomicUsize::new(0),
        }
    }

    /// Takes `bytes` (the body's declared length, or the most it may be) until the returned
    /// share drops; `Err` with the `503` to answer if that would overrun the budget. One body
    /// larger than the whole budget still goes when nothing else is held, so the budget never
    /// refuses what the size limit allows.
    pub fn take(&self, bytes: usize) -> Result<Share<'_>, Reply> {
        let mut taken = self.taken.load(Ordering::Relaxed);
        loop {
            if taken > 0 && taken.saturating_add(bytes) > self.limit {
                return Err(http::bodies_over_budget(taken, self.limit));
            }
            match self.taken.compare_exchange_weak(
                taken,
                taken.saturating_add(bytes),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Ok(Share {
                        budget: self,
                        bytes,
                    });
                }
                Err(now) => taken = now,
            }
        }
    }

    /// The bytes held right now.
    pub fn taken(&self) -> usize {
        self.taken.load(Ordering::Relaxed)
    }
}

/// A request's share of a [`Budget`], given back on drop.
#[derive(Debug)]
pub struct Share<'a> {
    budget: &'a Budget,
    bytes: usize,
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        self.budget.taken.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// What a body will take of its budget: its declared length, or `limit` when it declares none
/// (chunked). `Err` is the `413` for a declared length over the limit, answered without reading.
pub fn declared(content_length: Option<u64>, limit: usize) -> Result<usize, Reply> {
    match content_length {
        Some(length) if length > limit as u64 => Err(http::body_too_large(limit)),
        Some(length) => Ok(length as usize),
        None => Ok(limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_refuses_past_its_limit_and_gives_back_on_drop() {
        let budget = Budget::new(100);
        let a = budget.take(60).unwrap();
        let b = budget.take(40).unwrap();
        let refused = budget.take(1).unwrap_err();
        assert_eq!(refused.status, 503);
        assert!(refused.body.contains("100 bytes"), "{}", refused.body);
        drop(a);
        assert_eq!(budget.taken(), 40);
        let c = budget.take(60).unwrap();
        drop((b, c));
        assert_eq!(budget.taken(), 0);
        // Alone, a body over the whole budget still goes.
        let big = budget.take(1000).unwrap();
        assert!(budget.take(1).is_err());
        drop(big);
    }

    #[test]
    fn watch_queries() {
        let max = Duration::from_secs(300);
        let query = |target: &str| watch_query(target, max);
        assert_eq!(
            query("/watch?key=a%20b+c&after=7&wait=1.5"),
            Ok(("a b c".into(), 7, Duration::from_millis(1500)))
        );
        assert_eq!(
            query("/watch?key=k"),
            Ok(("k".into(), 0, DEFAULT_WATCH_WAIT))
        );
        assert_eq!(
            watch_query("/watch?key=k", Duration::from_secs(5))
                .unwrap()
                .2,
            Duration::from_secs(5),
            "the default wait stays under the cap"
        );
        for (target, says) in [
            ("/watch", "needs `key`"),
            ("/watch?after=3", "needs `key`"),
            ("/watch?key=k&after=x", "`after` must be"),
            ("/watch?key=k&after=-1", "`after` must be"),
            ("/watch?key=k&wait=301", "at most 300 s"),
            ("/watch?key=k&wait=-1", "`wait` must be"),
            ("/watch?key=k&wait=NaN", "`wait` must be"),
            ("/watch?key=k&wiat=3", "unknown query parameter `wiat`"),
            ("/watch?key=%FF", "not valid UTF-8"),
        ] {
            let refused = query(target).unwrap_err();
            assert_eq!(refused.status, 400, "{target}");
            assert!(refused.body.contains(says), "{target}: {}", refused.body);
        }
    }

    #[test]
    fn declared_lengths() {
        assert_eq!(declared(Some(10), 100), Ok(10));
        assert_eq!(declared(None, 100), Ok(100));
        assert_eq!(declared(Some(101), 100).unwrap_err().status, 413);
    }

    #[test]
    fn a_panic_is_counted_and_answered_500() {
        let metrics = Metrics::new();
        let payload: Box<dyn Any + Send> = Box::new(String::from("boom"));
        let reply = panicked(&metrics, Route::ClientRequest, &*payload);
        assert_eq!(reply.status, 500);
        assert_eq!(
            reply.body,
            r#"{"error":"the server failed while handling POST /client-request; if the request carried a command, its outcome is unknown"}"#
        );
        let text = metrics.render("threaded", &crate::status::Snapshot::default());
        assert!(text.contains("paxos_handler_panics_total 1\n"), "{text}");
    }

    #[test]
    fn a_request_counts_as_waiting_only_from_its_queue_step() {
        let metrics = Metrics::new();
        let held: Vec<_> = (0..MAX_WAITING_CLIENTS)
            .map(|_| queue(&metrics).unwrap())
            .collect();
        let refused = queue(&metrics).unwrap_err();
        assert_eq!(refused.reply.status, 503);
        assert_eq!(refused.outcome, Outcome::Unavailable);
        assert_eq!(metrics.client_waiting_now(), MAX_WAITING_CLIENTS);
        drop(held);
        assert_eq!(metrics.client_waiting_now(), 0);
    }
}
