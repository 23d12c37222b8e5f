//! Which route a request takes: one table, and one form of the path, for both servers.
//!
//! Both servers hand [`route`] the request's method, its target exactly as it came on the wire,
//! and its `Authorization` header, and dispatch on the [`Route`] it returns or answer the
//! [`Reply`] it gives instead. Neither framework's router or path decoding is used, so the two
//! cannot answer one request differently: the path is put into one [`normal`] form first, the
//! `/paxos/` guard and the `404` body see that form, and only then is the route looked up.

use std::borrow::Cow;

use crate::http::{Reply, error};
use crate::metrics::Metrics;
use crate::{Config, log};

/// The routes of the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    ServerId,
    ClientRequest,
    Watch,
    Status,
    Metrics,
    PaxosMessages,
}

impl Route {
    pub const ALL: [Route; 6] = [
        Route::ServerId,
        Route::ClientRequest,
        Route::Watch,
        Route::Status,
        Route::Metrics,
        Route::PaxosMessages,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Route::ServerId => "/server_id",
            Route::ClientRequest => "/client-request",
            Route::Watch => "/watch",
            Route::Status => "/status",
            Route::Metrics => "/metrics",
            Route::PaxosMessages => "/paxos/messages",
        }
    }

    /// The one method each route answers.
    pub fn method(self) -> &'static str {
        match self {
            Route::ServerId | Route::Watch | Route::Status | Route::Metrics => "GET",
            Route::ClientRequest | Route::PaxosMessages => "POST",
        }
    }

    /// Finds the route for a [`normal`] path, or the `404`/`405` to answer instead. `HEAD` is
    /// served wherever `GET` is, as HTTP expects.
    pub fn find(method: &str, path: &str) -> Result<Route, Reply> {
        let Some(route) = Route::ALL.into_iter().find(|r| r.path() == path) else {
            return Err(not_found(path));
        };
        if method == route.method() || (method == "HEAD" && route.method() == "GET") {
            Ok(route)
        } else {
            Err(method_not_allowed(method, route))
        }
    }
}

/// Routes a request: `target` is the request target as received (origin or absolute form),
/// `authorization` its `Authorization` header. A `/paxos/` path without the secret gets `401`
/// before anything else, whatever its method, counted and logged as a refused peer request.
pub fn route(
    config: &Config,
    metrics: &Metrics,
    method: &str,
    target: &str,
    authorization: Option<&[u8]>,
) -> Result<Route, Reply> {
    let path = normal(target);
    let peer_path = path == "/paxos" || path.starts_with("/paxos/");
    if peer_path && !authorized(authorization, config.secret.as_deref()) {
        return Err(refuse_peer(metrics, unauthorized()));
    }
    Route::find(method, &path)
}

/// What the async server's hyper lets through and RFC 9112 does not, which the threaded server's
/// patched tiny_http refuses while it reads the head (`vendor/tiny_http/src/util/framing.rs`), so
/// that both answer alike: the status to refuse with, if any. A request target that is not ASCII
/// (`400`, RFC 9112 §3.2; hyper takes UTF-8), a missing, repeated or invalid `Host` (`400`, RFC
/// 9112 §3.2), and a transfer coding other than a single `chunked` (`501`, RFC 9112 §6.1; hyper
/// refuses one that does not end in `chunked` itself). The refusal is empty and closes the
/// connection, as hyper's own refusals of malformed heads are.
pub fn malformed<'a>(
    target: &str,
    http_11: bool,
    hosts: &[&[u8]],
    transfer_codings: impl Iterator<Item = &'a [u8]>,
) -> Option<u16> {
    let host_ok =
        hosts.len() <= 1 && (hosts.len() == 1 || !http_11) && hosts.iter().all(|v| valid_host(v));
    if !target.is_ascii() || !host_ok {
        return Some(400);
    }
    let (mut chunked, mut other) = (0, 0);
    for value in transfer_codings {
        let codings = value.split(|&b| b == b',').map(<[u8]>::trim_ascii);
        for coding in codings.filter(|c| !c.is_empty()) {
            match coding.eq_ignore_ascii_case(b"chunked") {
                true => chunked += 1,
                false => other += 1,
            }
        }
    }
    (other > 0 || chunked > 1).then_some(501)
}

/// `uri-host [ ":" port ]` (RFC 9110 §7.2): the patched tiny_http's `is_valid_host`, byte for
/// byte.
fn valid_host(value: &[u8]) -> bool {
    let (host, port) = match value.iter().rposition(|&b| b == b':') {
        Some(at) if !value[at..].contains(&b']') => (&value[..at], &value[at + 1..]),
        _ => (value, &[][..]),
    };
    let host_ok = match host {
        [b'[', literal @ .., b']'] => {
            !literal.is_empty()
                && literal
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:".contains(&b))
        }
        _ => host
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&b)),
    };
    host_ok && port.iter().all(u8::is_ascii_digit)
}

/// Counts and logs a refused peer request, and returns its reply.
pub fn refuse_peer(metrics: &Metrics, reply: Reply) -> Reply {
    metrics.peer_rejected();
    log::peer_refused(&reply.body);
    reply
}

/// The path a request target names, in the one form both servers route on:
///
/// - an absolute-form target (`http://host/path`, which RFC 9112 §3.2.2 says a server must
///   accept) stands for its path;
/// - the query is not part of the path;
/// - a percent-encoded unreserved character (a letter, digit, `-`, `.`, `_` or `~`) is that
///   character: RFC 3986 §6.2.2.2 makes `/client%2Drequest` and `/client-request` the same URI.
///   Every other escape stays as it is, so `/paxos%2Fmessages` is not `/paxos/messages`.
pub fn normal(target: &str) -> Cow<'_, str> {
    let mut path = target;
    let scheme = path.split_once("://").map(|(scheme, _)| scheme);
    if scheme.is_some_and(|s| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https")) {
        let after = &path[path.find("://").unwrap_or(0) + 3..];
        path = after.find('/').map_or("/", |at| &after[at..]);
    }
    if let Some(end) = path.find(['?', '#']) {
        path = &path[..end];
    }
    if !path.contains('%') {
        return Cow::Borrowed(path);
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| path.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .filter(|b| b.is_ascii_alphanumeric() || b"-._~".contains(b));
        match decoded {
            Some(byte) => {
                out.push(char::from(byte));
                i += 3;
            }
            None => {
                // The path is a `str`, so the bytes up to the next `%` are whole characters.
                let next = path[i + 1..].find('%').map_or(bytes.len(), |at| i + 1 + at);
                out.push_str(&path[i..next]);
                i = next;
            }
        }
    }
    Cow::Owned(out)
}

pub fn not_found(path: &str) -> Reply {
    let paths: Vec<&str> = Route::ALL.iter().map(|r| r.path()).collect();
    error(
        404,
        &format!(
            "no such path `{path}`; this server serves {}",
            paths.join(", ")
        ),
    )
}

pub fn method_not_allowed(method: &str, route: Route) -> Reply {
    let sentence = format!("{} takes {}, not {method}", route.path(), route.method());
    Reply {
        allow: Some(route.method()),
        ..error(405, &sentence)
    }
}

/// `401` for a peer request without the cluster secret. The sentence never echoes the secret.
pub fn unauthorized() -> Reply {
    error(
        401,
        "peer requests need the header `Authorization: Bearer <cluster secret>`",
    )
}

/// Whether a peer request may pass: always without a secret, and with one only if the
/// `Authorization` header is exactly `Bearer <secret>`.
///
/// The comparison looks at every byte whatever it finds, so the time it takes tells an attacker
/// nothing about how much of a guess was right.
pub fn authorized(header: Option<&[u8]>, secret: Option<&str>) -> bool {
    let Some(secret) = secret else {
        return true;
    };
    let Some(given) = header else {
        return false;
    };
    let expected = format!("Bearer {secret}");
    let expected = expected.as_bytes();
    let mut difference = u8::from(given.len() != expected.len());
    for (i, byte) in expected.iter().enumerate() {
        difference |= byte ^ given.get(i).copied().unwrap_or(!byte);
    }
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_answer_404_and_405_with_json() {
        assert_eq!(Route::find("GET", "/status"), Ok(Route::Status));
        assert_eq!(Route::find("HEAD", "/metrics"), Ok(Route::Metrics));
        let missing = Route::find("GET", "/nope").unwrap_err();
        assert_eq!(missing.status, 404);
        assert!(
            missing
                .body
                .starts_with(r#"{"error":"no such path `/nope`"#)
        );
        let wrong = Route::find("GET", "/client-request").unwrap_err();
        assert_eq!(wrong.status, 405);
        assert_eq!(wrong.allow, Some("POST"));
        assert_eq!(
            wrong.body,
            r#"{"error":"/client-request takes POST, not GET"}"#
        );
    }

    #[test]
    fn one_normal_form_of_the_path() {
        for (target, path) in [
            ("/status", "/status"),
            ("/status?verbose=1", "/status"),
            ("/status#top", "/status"),
            ("/client%2Drequest", "/client-request"),
            ("/server%5fid", "/server_id"),
            ("/%73%74%61%74%75%73", "/status"),
            ("/paxos%2Fmessages", "/paxos%2Fmessages"),
            ("/caf%C3%A9", "/caf%C3%A9"),
            ("/é%2D", "/é-"),
            ("/trailing%", "/trailing%"),
            ("/bad%zz", "/bad%zz"),
            ("http://example.com/status?x", "/status"),
            ("HTTP://example.com:80/server_id", "/server_id"),
            ("http://example.com", "/"),
            ("*", "*"),
        ] {
            assert_eq!(normal(target), path, "{target}");
        }
    }

    #[test]
    fn heads_hyper_takes_and_the_api_refuses() {
        let none = std::iter::empty();
        assert_eq!(malformed("/status", true, &[b"h:1"], none), None);
        assert_eq!(
            malformed("/caf\u{e9}", true, &[b"h"], std::iter::empty()),
            Some(400)
        );
        assert_eq!(malformed("/", true, &[], std::iter::empty()), Some(400));
        assert_eq!(malformed("/", false, &[], std::iter::empty()), None);
        assert_eq!(
            malformed("/", true, &[b"h", b"h"], std::iter::empty()),
            Some(400)
        );
        assert_eq!(
            malformed("/", true, &[b"h:x"], std::iter::empty()),
            Some(400)
        );
        assert_eq!(
            malformed("/", true, &[b"[::1]:80"], std::iter::empty()),
            None
        );
        let te = |codings: &'static [&'static [u8]]| {
            malformed("/", true, &[b"h"], codings.iter().copied())
        };
        assert_eq!(te(&[b"chunked"]), None);
        assert_eq!(te(&[b"gzip, chunked"]), Some(501));
        assert_eq!(te(&[b"chunked", b"chunked"]), Some(501));
    }

    #[test]
    fn bearer_check() {
        assert!(authorized(None, None));
        assert!(!authorized(None, Some("s3")));
        assert!(authorized(Some(b"Bearer s3"), Some("s3")));
        assert!(!authorized(Some(b"Bearer s4"), Some("s3")));
        assert!(!authorized(Some(b"Bearer s3x"), Some("s3")));
        assert!(!authorized(Some(b"Bearer s"), Some("s3")));
        assert!(!authorized(Some(b""), Some("s3")));
    }

    #[test]
    fn every_peer_path_needs_the_secret_in_any_spelling() {
        let mut config = Config::with_servers(vec!["a:1".into()]);
        config.secret = Some("s3".into());
        let metrics = Metrics::new();
        let route = |target: &str, authorization: Option<&[u8]>| {
            route(&config, &metrics, "POST", target, authorization)
        };
        for target in [
            "/paxos/other",
            "/paxos",
            "/pax%6Fs/messages",
            "http://h/paxos/x",
        ] {
            assert_eq!(route(target, None).unwrap_err().status, 401, "{target}");
            let wrong = route(target, Some(b"Bearer x")).unwrap_err();
            assert_eq!(wrong.status, 401, "{target}");
        }
        assert_eq!(
            route("/paxos/messages", Some(b"Bearer s3")),
            Ok(Route::PaxosMessages)
        );
        assert_eq!(route("/paxosx", None).unwrap_err().status, 404);
        config.secret = None;
        let open = |target: &str| super::route(&config, &metrics, "POST", target, None);
        assert_eq!(open("/paxos/messages"), Ok(Route::PaxosMessages));
        assert_eq!(open("/paxos/x").unwrap_err().status, 404);
    }
}
