//! Twin Paxos patch: how a request's head frames its body, and which heads are refused.
//!
//! Upstream took the first `Transfer-Encoding` as chunked whatever it said, ignored a
//! `Content-Length` it could not parse (so the body was read as the next request), and used a
//! `Content-Length` next to `Transfer-Encoding`. paxos-threaded's twin, paxos-async, runs on
//! hyper 1.x, so these rules follow hyper's (`proto/h1/role.rs`, `Server::parse`) line for line,
//! which follow RFC 9112 §6: both servers then frame, refuse and close alike. What hyper lets
//! through and RFC 9112 refuses (a transfer coding other than `chunked`, a bad `Host`) is
//! refused here, and by a middleware on the async server.

/// How long a request's body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// No body (neither `Content-Length` nor `Transfer-Encoding`): RFC 9112 §6.3, rule 7.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// The chunked transfer coding.
    Chunked,
}

/// What a request head says about its body and its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Framing {
    pub(crate) body: BodyKind,
    /// `Transfer-Encoding` next to `Content-Length`: the body is framed by the former, and the
    /// connection must close after the answer (RFC 9112 §6.1), since whoever sent it may frame
    /// it by the latter and have a second request hidden in the body.
    pub(crate) close: bool,
    /// Whether the client waits for `100 Continue` before it sends the body. RFC 9110 §10.1.1:
    /// only an HTTP/1.1 client can; the expectation of an HTTP/1.0 one is ignored, and so are
    /// expectations other than `100-continue` (hyper ignores them; `417` is only a MAY).
    pub(crate) expects_continue: bool,
    /// Whether the connection stays open after the answer (RFC 9112 §9.3): HTTP/1.1 unless a
    /// `Connection` line says `close`; HTTP/1.0 only if one says `keep-alive` and none `close`.
    pub(crate) keep_alive: bool,
}

/// `tchar` of RFC 9110 §5.6.2: the bytes of methods and field names.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether `bytes` is a `token`: one or more `tchar`.
pub(crate) fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|&b| is_tchar(b))
}

/// The elements of a comma-separated list value (RFC 9110 §5.6.1), trimmed; empty ones are
/// skipped, as the list rules ask.
fn elements(value: &[u8]) -> impl Iterator<Item = &[u8]> + Clone {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|e| !e.is_empty())
}

/// `value` without leading and trailing spaces and tabs (OWS).
pub(crate) fn trim(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

/// `1*DIGIT` as a `u64`: no sign, no spaces, no list, no overflow (hyper's `from_digits`).
fn content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| match b {
        b'0'..=b'9' => n.checked_mul(10)?.checked_add(u64::from(b - b'0')),
        _ => None,
    })
}

/// `uri-host [ ":" port ]` of RFC 9110 §7.2 (RFC 3986 §3.2.2 and §3.2.3): a bracketed IP literal
/// or a reg-name of unreserved, sub-delims and `%` bytes, and only digits after the colon. The
/// async server's middleware checks with the same rule.
pub(crate) fn is_valid_host(value: &[u8]) -> bool {
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

/// The framing of a request of `version` (`(1, 0)` or `(1, 1)`) with these header lines (names
/// as sent, values as raw bytes, in order), or the status to refuse it with before its body is
/// read (the connection closes after it): hyper's rules.
pub(crate) fn framing<'a>(
    version: (u8, u8),
    headers: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> Result<Framing, u16> {
    let http_11 = version == (1, 1);
    let mut body = BodyKind::Empty;
    let mut length: Option<u64> = None;
    let (mut is_cl, mut is_te, mut is_te_chunked) = (false, false, false);
    let mut expects_continue = false;
    let mut keep_alive = http_11;
    let mut saw_close = false;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("Transfer-Encoding") {
            // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
            if !http_11 {
                return Err(400);
            }
            is_te = true;
            length = None;
            // RFC 9112 §6.3, rule 4: unless `chunked` is the final coding, the length of a
            // request body cannot be known: 400 and close. As hyper does, the last line counts.
            is_te_chunked = value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| trim(last).eq_ignore_ascii_case(b"chunked"));
            if is_te_chunked {
                body = BodyKind::Chunked;
            }
        } else if name.eq_ignore_ascii_case("Content-Length") {
            is_cl = true;
            // Transfer-Encoding overrides it (RFC 9112 §6.3, rule 3); hyper does not parse it.
            if is_te {
                continue;
            }
            // RFC 9112 §6.3, rule 5: an invalid length, or lines that disagree, are an
            // unrecoverable framing error: 400 and close.
            let n = content_length(value).ok_or(400u16)?;
            if length.is_some_and(|previous| previous != n) {
                return Err(400);
            }
            length = Some(n);
            body = BodyKind::Length(n);
        } else if name.eq_ignore_ascii_case("Connection") {
            let mut tokens = elements(value);
            if saw_close || tokens.clone().any(|t| t.eq_ignore_ascii_case(b"close")) {
                saw_close = true;
                keep_alive = false;
            } else if !keep_alive {
                keep_alive = tokens.any(|t| t.eq_ignore_ascii_case(b"keep-alive"));
            }
        } else if name.eq_ignore_ascii_case("Expect") {
            expects_continue = value.eq_ignore_ascii_case(b"100-continue");
        }
    }
    if is_te && !is_te_chunked {
        return Err(400);
    }

    Ok(Framing {
        body,
        close: is_te && is_cl,
        // Without a body there is nothing to continue with; hyper sends no `100` then either.
        expects_continue: expects_continue
            && http_11
            && !matches!(body, BodyKind::Empty | BodyKind::Length(0)),
        keep_alive,
    })
}

/// What hyper lets through and RFC 9112 refuses, checked after [`framing`] accepted the head:
/// the status the async server's `malformed()` check answers for it too, in the same
/// order. Not part of [`framing`], which `new_request` (and so `TestRequest`) also uses.
pub(crate) fn refusal<'a>(
    version: (u8, u8),
    headers: impl Iterator<Item = (&'a str, &'a [u8])> + Clone,
) -> Option<u16> {
    // RFC 9112 §3.2: an HTTP/1.1 request needs exactly one Host line, and no request may have
    // two or an invalid one.
    let hosts = headers
        .clone()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Host"));
    let count = hosts.clone().count();
    if count > 1
        || (version == (1, 1) && count == 0)
        || hosts.clone().any(|(_, v)| !is_valid_host(v))
    {
        return Some(400);
    }
    // RFC 9112 §6.1: a transfer coding the server does not know (anything but one `chunked`,
    // which is all tiny_http decodes; a sender must not apply chunked twice) gets 501.
    let codings = headers
        .filter(|(name, _)| name.eq_ignore_ascii_case("Transfer-Encoding"))
        .flat_map(|(_, v)| elements(v));
    let (mut chunked, mut other) = (0, 0);
    for coding in codings {
        if coding.eq_ignore_ascii_case(b"chunked") {
            chunked += 1;
        } else {
            other += 1;
        }
    }
    if chunked > 1 || other > 0 {
        return Some(501);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The framing of a head with `Host: x` and `lines`, or the status it is refused with.
    fn frame(version: (u8, u8), lines: &[(&str, &str)]) -> Result<Framing, u16> {
        let mut all = vec![("Host", "x")];
        all.extend_from_slice(lines);
        let lines = all.iter().map(|(n, v)| (*n, v.as_bytes()));
        let framing = framing(version, lines.clone())?;
        match refusal(version, lines) {
            Some(status) => Err(status),
            None => Ok(framing),
        }
    }

    #[test]
    fn lengths() {
        assert_eq!(frame((1, 1), &[]).unwrap().body, BodyKind::Empty);
        let cl = frame((1, 1), &[("Content-Length", "0036")]).unwrap();
        assert_eq!(cl.body, BodyKind::Length(36));
        let twice = [("Content-Length", "3"), ("content-length", "3")];
        assert_eq!(frame((1, 1), &twice).unwrap().body, BodyKind::Length(3));
        for bad in [
            "-1",
            "+3",
            "0x3",
            "",
            "3 3",
            "3, 3",
            "99999999999999999999999",
        ] {
            assert_eq!(
                frame((1, 1), &[("Content-Length", bad)]),
                Err(400),
                "{}",
                bad
            );
        }
        let differ = [("Content-Length", "3"), ("Content-Length", "4")];
        assert_eq!(frame((1, 1), &differ), Err(400));
    }

    #[test]
    fn transfer_encodings() {
        let te = |v| frame((1, 1), &[("Transfer-Encoding", v)]);
        assert_eq!(te("chunked").unwrap().body, BodyKind::Chunked);
        assert_eq!(te("CHUNKED").unwrap().body, BodyKind::Chunked);
        assert_eq!(te("gzip"), Err(400));
        assert_eq!(te("identity"), Err(400));
        assert_eq!(te("chunked, gzip"), Err(400));
        assert_eq!(te("gzip, chunked"), Err(501));
        assert_eq!(te("chunked, chunked"), Err(501));
        let then_identity = [
            ("Transfer-Encoding", "chunked"),
            ("Transfer-Encoding", "identity"),
        ];
        assert_eq!(frame((1, 1), &then_identity), Err(400));
        let both = frame(
            (1, 1),
            &[("Content-Length", "3"), ("Transfer-Encoding", "chunked")],
        );
        assert_eq!(both.unwrap().body, BodyKind::Chunked);
        assert!(both.unwrap().close);
        let after = frame(
            (1, 1),
            &[("Transfer-Encoding", "chunked"), ("Content-Length", "x")],
        );
        assert!(after.unwrap().close);
        assert_eq!(frame((1, 0), &[("Transfer-Encoding", "chunked")]), Err(400));
    }

    #[test]
    fn connection_and_expect() {
        assert!(frame((1, 1), &[]).unwrap().keep_alive);
        assert!(
            !frame((1, 1), &[("Connection", "foo, Close")])
                .unwrap()
                .keep_alive
        );
        assert!(!frame((1, 0), &[]).unwrap().keep_alive);
        assert!(
            frame((1, 0), &[("Connection", "keep-alive")])
                .unwrap()
                .keep_alive
        );
        let both = [("Connection", "close"), ("Connection", "keep-alive")];
        assert!(!frame((1, 0), &both).unwrap().keep_alive);
        let with_body = [("Expect", "100-continue"), ("Content-Length", "1")];
        assert!(frame((1, 1), &with_body).unwrap().expects_continue);
        assert!(
            !frame((1, 1), &[("Expect", "100-continue")])
                .unwrap()
                .expects_continue
        );
        assert!(
            !frame((1, 0), &[("Expect", "100-continue")])
                .unwrap()
                .expects_continue
        );
        assert!(
            !frame((1, 1), &[("Expect", "foo")])
                .unwrap()
                .expects_continue
        );
    }

    #[test]
    fn hosts() {
        for good in [
            "x",
            "",
            "127.0.0.1:8080",
            "[::1]:80",
            "[::1]",
            "a-b.c_d~e%41",
            "x:",
        ] {
            assert!(is_valid_host(good.as_bytes()), "{}", good);
        }
        for bad in [
            "a b",
            "a/b",
            "x@y",
            "a:b:c",
            "x:8o",
            "[]",
            "[::1",
            "caf\u{e9}",
        ] {
            assert!(!is_valid_host(bad.as_bytes()), "{}", bad);
        }
        let none: [(&str, &[u8]); 0] = [];
        assert_eq!(refusal((1, 1), none.iter().copied()), Some(400));
        assert_eq!(refusal((1, 0), none.iter().copied()), None);
        assert_eq!(frame((1, 1), &[("Host", "y")]), Err(400));
    }
}
