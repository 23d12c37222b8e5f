//! Malformed and odd requests over raw sockets. Every row of [`corpus`] names the statuses the
//! server answers (RFC 9112 and 9110's answer, or hyper's where the RFCs leave the choice) and
//! whether it then closes the connection or serves the next request on it. Both servers run the
//! same table, so passing it on both is agreeing on every row. A connection that must close is
//! read to its end, which must come well before the idle timeout; one that stays open must answer
//! a request sent after the row's, with that request's answer, so nothing hidden in a row (a
//! smuggled request) was served in between. A bad request line must free everything its
//! connection held: [`bad_versions_free_their_threads`].

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use paxos_tests::{Cluster, Runtime, json, scenarios, wait_until};

scenarios! {
    corpus_answers,
    path_forms,
    bad_versions_free_their_threads,
}

/// How long a server may take to answer a row and close: ample on a busy host, and well under
/// [`IDLE_TIMEOUT`], so that a close seen within it is the row's, not the idle timeout's.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// The members' `client_timeout_ms` (also the default): how long an idle connection stays open.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// What happens to the connection after the row's answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum After {
    /// The server closes it: the framing is lost or the request asked for it.
    Closes,
    /// The server keeps it: a request sent next on it is answered.
    KeepsOpen,
    /// The client shuts its sending half after the row's bytes; the server answers and closes.
    ClientHalfCloses,
}
use After::*;

/// One row: what is sent, in one write, and what must come back.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    /// Every status the server sends, in order, interim `100` included; none for a close
    /// without an answer.
    answers: &'static [u16],
    after: After,
}

fn row(name: &'static str, bytes: impl AsRef<[u8]>, answers: &'static [u16], after: After) -> Case {
    Case {
        name,
        bytes: bytes.as_ref().to_vec(),
        answers,
        after,
    }
}

/// A command that changes nothing, and one that would show if it ran.
const GET_K: &str = r#"{"op": "get", "key": "k"}"#;
const SMUGGLED_PUT: &str = r#"{"op": "put", "key": "smuggled", "value": "yes"}"#;

/// `POST /client-request` with `GET_K`'s head lines `lines` (each ending in CRLF) and `body`.
fn post(lines: &str, body: &str) -> String {
    format!("POST /client-request HTTP/1.1\r\nHost: t\r\n{lines}\r\n{body}")
}

/// `Content-Length` of [`GET_K`].
fn cl() -> String {
    format!("Content-Length: {}\r\n", GET_K.len())
}

/// `data` as one chunk and the last chunk.
fn chunked(data: &str) -> String {
    format!("{:x}\r\n{data}\r\n0\r\n\r\n", data.len())
}

/// A request that puts `smuggled`, hidden in a body: served, it would show in the key.
fn smuggled() -> String {
    let body = SMUGGLED_PUT;
    format!(
        "POST /client-request HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// `GET /status` with `n` more header lines of about `each` bytes.
fn fields(n: usize, each: usize) -> String {
    let mut head = String::from("GET /status HTTP/1.1\r\nHost: t\r\n");
    for i in 0..n {
        head.push_str(&format!("X-{i}: {}\r\n", "v".repeat(each)));
    }
    head + "\r\n"
}

/// The corpus. Unless a comment says otherwise, the answer is what hyper 1.x gives (the async
/// server) and what the patched tiny_http (the threaded one) was changed to give; see
/// `vendor/tiny_http/PATCHED.md` for what each answered before. One row a line, as a table.
#[rustfmt::skip]
fn corpus() -> Vec<Case> {
    let get = |line: &str| format!("{line}\r\nHost: t\r\n\r\n");
    vec![
        // --- The request line: RFC 9112 §2 and §3. ---
        // §2.3: a server may refuse a major version it does not speak; hyper does with 400 (505
        // is the other choice). The threaded server hung this connection forever.
        row("HTTP/2.0 request line", get("GET /status HTTP/2.0"), &[400], Closes),
        row("HTTP/3.0 request line", get("GET /status HTTP/3.0"), &[400], Closes),
        // RFC 9113 §3.4: the HTTP/2 preface; no HTTP/1.1 answer means anything to its sender.
        row("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", &[], Closes),
        // §2.3 asks that a higher 1.x minor be served as 1.1, but hyper refuses any version
        // but 1.0 and 1.1 before the server sees the request; tiny_http does as hyper.
        row("HTTP/1.2", get("GET /status HTTP/1.2"), &[400], Closes),
        // §2.3: HTTP/0.9 is not a version this syntax can name.
        row("HTTP/0.9 version", get("GET /status HTTP/0.9"), &[400], Closes),
        // §3: the version is not optional (an HTTP/0.9 simple request).
        row("no version", "GET /status\r\n\r\n", &[400], Closes),
        // §2.3: HTTP-name is case-sensitive.
        row("lowercase http/1.1", get("GET /status http/1.1"), &[400], Closes),
        // §2.2: a recipient may take a bare LF as a line end; hyper does.
        row("bare LF line ends", "GET /status HTTP/1.1\nHost: t\n\n", &[200], KeepsOpen),
        // §2.2: a bare CR must not be taken as a line end.
        row("bare CR", "GET /status HTTP/1.1\rHost: t\r\n\r\n", &[400], Closes),
        // §2.2: empty lines before a request line should be ignored.
        row("empty lines first", format!("\r\n\n{}", get("GET /status HTTP/1.1")), &[200], KeepsOpen),
        row("an empty line alone", "\r\n", &[], KeepsOpen),
        // §3: one SP between the parts; other whitespace may be accepted, hyper does not.
        row("two spaces", get("GET  /status HTTP/1.1"), &[400], Closes),
        row("trailing space", get("GET /status HTTP/1.1 "), &[400], Closes),
        row("leading space", get(" GET /status HTTP/1.1"), &[400], Closes),
        row("tabs for spaces", get("GET\t/status\tHTTP/1.1"), &[400], Closes),
        // RFC 9110 §9.1: methods are case-sensitive, so `get` is another method. §9.1 suggests
        // 501 for a method the server does not know; both route it and answer 405 from
        // `Route::find`, which this file does not change.
        row("lowercase method", get("get /status HTTP/1.1"), &[405], KeepsOpen),
        row("unknown method", get("FOO /status HTTP/1.1"), &[405], KeepsOpen),
        // RFC 9110 §9.1: a method is a token.
        row("method not a token", get("G(T /status HTTP/1.1"), &[400], Closes),
        // §3.2: a request target is a URI, visible ASCII. hyper takes UTF-8; the async server's
        // middleware refuses it.
        row("control byte in target", get("GET /sta\x01tus HTTP/1.1"), &[400], Closes),
        row("non-ASCII target", b"GET /st\xc3\xa4tus HTTP/1.1\r\nHost: t\r\n\r\n", &[400], Closes),
        // §3: a target longer than the server parses gets 414 (hyper's bound: 65,534 bytes).
        row("target of 70,000 bytes", get(&format!("GET /{} HTTP/1.1", "a".repeat(69_999))), &[414], Closes),
        row("target of 65,534 bytes", get(&format!("GET /{} HTTP/1.1", "a".repeat(65_533))), &[404], KeepsOpen),
        // §3.2: a target has no fragment; hyper's URI parser drops it (400 would be the RFC's
        // SHOULD, but the async server cannot see the fragment to refuse it).
        row("fragment", get("GET /status#top HTTP/1.1"), &[200], KeepsOpen),
        // §3.2.1: the query is not part of the path that is routed.
        row("query", get("GET /status?verbose=1 HTTP/1.1"), &[200], KeepsOpen),
        // §3: not a request line at all (a TLS ClientHello on the plain port): 400 at once.
        row("TLS handshake", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\x00\x00", &[400], Closes),
        // --- Field lines: RFC 9112 §5, RFC 9110 §5. ---
        // §5.1: whitespace between a field name and the colon must be refused with 400.
        row("space before colon", "GET /status HTTP/1.1\r\nHost : t\r\n\r\n", &[400], Closes),
        // §5.2: obs-fold must be refused (or replaced); hyper refuses.
        row("obs-fold", "GET /status HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n", &[400], Closes),
        // §5: a field line is `name ":" value`; RFC 9110 §5.1: a name is a token.
        row("line without colon", "GET /status HTTP/1.1\r\nHost: t\r\nFoo\r\n\r\n", &[400], Closes),
        row("empty field name", "GET /status HTTP/1.1\r\nHost: t\r\n: v\r\n\r\n", &[400], Closes),
        row("name not a token", "GET /status HTTP/1.1\r\nHost: t\r\nX(: v\r\n\r\n", &[400], Closes),
        // RFC 9110 §5.5: CTLs, NUL above all, are invalid in a value.
        row("control byte in value", "GET /status HTTP/1.1\r\nHost: t\r\nX-A: a\x01b\r\n\r\n", &[400], Closes),
        row("NUL in value", "GET /status HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n", &[400], Closes),
        // RFC 9110 §5.5: obs-text (bytes past ASCII) is allowed in a value. The threaded
        // server closed such a connection without an answer.
        row("obs-text in value", b"GET /status HTTP/1.1\r\nHost: t\r\nX-A: caf\xc3\xa9\r\n\r\n", &[200], KeepsOpen),
        // RFC 6585 §5: 431 past the server's bound on fields (hyper's: 100 lines).
        row("100 field lines", fields(99, 4), &[200], KeepsOpen),
        row("101 field lines", fields(100, 4), &[431], Closes),
        // RFC 6585 §5: 431 past the bound on the head (hyper's read buffer, about 408 KiB;
        // hyper's reads may take a head up to about 600 KB, so the rows stay clear of that).
        row("a field of 70,000 bytes", fields(1, 70_000), &[200], KeepsOpen),
        row("a head of 300 KB", fields(30, 10_000), &[200], KeepsOpen),
        row("a head of 1 MB", fields(99, 11_000), &[431], Closes),
        // --- Host: RFC 9112 §3.2 (a MUST that hyper leaves to the async server's middleware).
        row("no Host in HTTP/1.1", "GET /status HTTP/1.1\r\n\r\n", &[400], Closes),
        // §3.2 asks Host of HTTP/1.1 only; §9.3: HTTP/1.0 closes after its answer.
        row("no Host in HTTP/1.0", "GET /status HTTP/1.0\r\n\r\n", &[200], Closes),
        row("two Host lines", "GET /status HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n", &[400], Closes),
        row("invalid Host", "GET /status HTTP/1.1\r\nHost: a b/c\r\n\r\n", &[400], Closes),
        // --- Body length: RFC 9112 §6. ---
        // §6.1: with Transfer-Encoding and Content-Length, a server may refuse or frame by the
        // former alone, and must close after the answer; hyper frames by the former. Either
        // way the request hidden after the chunked body is never read, so never run. The
        // threaded server framed by neither and served the hidden request.
        row("CL then TE, request hidden", post("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", &(chunked(GET_K) + &smuggled())), &[200], Closes),
        row("TE then CL, request hidden", post("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", &(chunked(GET_K) + &smuggled())), &[200], Closes),
        // §6.3 rule 5 (RFC 9110 §8.6): an invalid Content-Length, or lines that disagree, are
        // an unrecoverable framing error: 400 and close. The threaded server took such a body
        // as none and read it as the next request.
        row("two different CLs", post(&format!("{}Content-Length: 5\r\n", cl()), GET_K), &[400], Closes),
        row("CL -1", post("Content-Length: -1\r\n", GET_K), &[400], Closes),
        row("CL +25", post(&format!("Content-Length: +{}\r\n", GET_K.len()), GET_K), &[400], Closes),
        row("CL 0x19", post(&format!("Content-Length: {:#x}\r\n", GET_K.len()), GET_K), &[400], Closes),
        row("CL empty", post("Content-Length: \r\n", GET_K), &[400], Closes),
        row("CL past u64", post("Content-Length: 99999999999999999999999\r\n", GET_K), &[400], Closes),
        // RFC 9110 §8.6: a repeated list may be refused (hyper does) or taken once.
        row("CL list 25, 25", post(&format!("Content-Length: {0}, {0}\r\n", GET_K.len()), GET_K), &[400], Closes),
        // RFC 9110 §8.6: the same length on two lines is one length.
        row("two equal CLs", post(&(cl() + &cl()), GET_K), &[200], KeepsOpen),
        // RFC 9110 §8.6: Content-Length is 1*DIGIT, leading zeros included.
        row("CL with leading zeros", post(&format!("Content-Length: 000{}\r\n", GET_K.len()), GET_K), &[200], KeepsOpen),
        // §6.3 rule 4: when chunked is not the final coding, 400 and close. The threaded
        // server took any Transfer-Encoding as chunked.
        row("TE gzip", post("Transfer-Encoding: gzip\r\n", &chunked(GET_K)), &[400], Closes),
        row("TE identity", post("Transfer-Encoding: identity\r\n", &chunked(GET_K)), &[400], Closes),
        row("TE chunked, gzip", post("Transfer-Encoding: chunked, gzip\r\n", &chunked(GET_K)), &[400], Closes),
        row("TE chunked then TE identity", post("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", &chunked(GET_K)), &[400], Closes),
        // §6.1: a transfer coding the server does not know should get 501 (hyper passes gzip
        // through undecoded; the async server's middleware refuses it), and chunked must not
        // be applied twice.
        row("TE gzip, chunked", post("Transfer-Encoding: gzip, chunked\r\n", &chunked(GET_K)), &[501], Closes),
        row("TE chunked, chunked", post("Transfer-Encoding: chunked, chunked\r\n", &chunked(GET_K)), &[501], Closes),
        // §7: coding names are case-insensitive.
        row("TE CHUNKED", post("Transfer-Encoding: CHUNKED\r\n", &chunked(GET_K)), &[200], KeepsOpen),
        // §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing.
        row("TE in HTTP/1.0", format!("POST /client-request HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n{}", chunked(GET_K)), &[400], Closes),
        // §6.3 rule 7: no length, no body; the server must not read one from the next request.
        row("POST without a length", post("", ""), &[400], KeepsOpen),
        // RFC 9110 §9.3.1: a GET body means nothing, but it is framed and skipped.
        row("GET with a body", "GET /status HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", &[200], KeepsOpen),
        // --- Chunked bodies: RFC 9112 §7.1. ---
        // §7.1.1: chunk extensions the server does not know are ignored.
        row("chunk extension", post("Transfer-Encoding: chunked\r\n", &format!("{:x};a=b\r\n{GET_K}\r\n0\r\n\r\n", GET_K.len())), &[200], KeepsOpen),
        // §7.1.2: a trailer section is allowed (and discarded). The threaded server refused it.
        row("trailer field", post("Transfer-Encoding: chunked\r\n", &format!("{:x}\r\n{GET_K}\r\n0\r\nX-T: t\r\n\r\n", GET_K.len())), &[200], KeepsOpen),
        // §7.1: chunk-size is 1*HEXDIG then CRLF; data is followed by CRLF. A bad body is the
        // handler's 400 (the body could not be read), then the connection closes, since where
        // the next request starts is unknown. The threaded server read on and answered twice.
        row("chunk size not hex", post("Transfer-Encoding: chunked\r\n", &format!("zz\r\n{GET_K}\r\n0\r\n\r\n")), &[400], Closes),
        row("chunk size past u64", post("Transfer-Encoding: chunked\r\n", "fffffffffffffffffff\r\nx\r\n0\r\n\r\n"), &[400], Closes),
        row("chunk longer than its size", post("Transfer-Encoding: chunked\r\n", &format!("5\r\n{GET_K}\r\n0\r\n\r\n")), &[400], Closes),
        row("space before chunk size", post("Transfer-Encoding: chunked\r\n", &format!(" {:x}\r\n{GET_K}\r\n0\r\n\r\n", GET_K.len())), &[400], Closes),
        // §2.2's bare LF is for the head only. The threaded server waited for the deadline.
        row("bare LF in chunked framing", post("Transfer-Encoding: chunked\r\n", &format!("{:x}\n{GET_K}\n0\n\n", GET_K.len())), &[400], Closes),
        // §9.3: to keep the connection, a body the handler did not read must be skipped
        // whole. The threaded server parsed an unread chunked body as the next request.
        row("unread chunked body, then a request", format!("POST /nope HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{}{}", chunked(GET_K), get("GET /status HTTP/1.1")), &[404, 200], KeepsOpen),
        // §9.3: the same for a long body (read as the handler asks, not at once).
        row("unread long body, then a request", format!("POST /nope HTTP/1.1\r\nHost: t\r\nContent-Length: 2000\r\n\r\n{}{}", "x".repeat(2000), get("GET /status HTTP/1.1")), &[404, 200], KeepsOpen),
        // §9.3: a body declared and not sent cannot be skipped, so the connection closes after
        // the handler's answer (413 for the declared length, before any of it is read). hyper
        // closes at once; the threaded server waited for the body deadline (now at most 1 s).
        row("declared body never sent", post("Content-Length: 2000000\r\n", ""), &[413], Closes),
        // §8: a server may answer an incomplete request before closing; hyper's handler sees
        // the body cut short and answers 400. The threaded server closed without an answer.
        row("body cut short", post("Content-Length: 100\r\n", GET_K), &[400], ClientHalfCloses),
        // --- Expectations and connections: RFC 9110 §10.1.1, §7.8; RFC 9112 §9. ---
        // RFC 9110 §10.1.1: 417 for an unknown expectation is a MAY; hyper ignores it. The
        // threaded server answered 417.
        row("Expect: foo", post(&(cl() + "Expect: foo\r\n"), GET_K), &[200], KeepsOpen),
        row("Expect: 100-continue", post(&(cl() + "Expect: 100-continue\r\n"), GET_K), &[100, 200], KeepsOpen),
        // RFC 9110 §10.1.1: a final answer before the body was asked for should say whether the
        // connection closes; the client does not send the body, so it closes. The threaded
        // server waited for the body until the deadline.
        row("Expect: 100-continue, refused", post("Content-Length: 2000000\r\nExpect: 100-continue\r\n", ""), &[413], Closes),
        // RFC 9110 §10.1.1: no body, nothing to continue.
        row("Expect: 100-continue, no body", "GET /status HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n\r\n", &[200], KeepsOpen),
        // RFC 9110 §10.1.1: an HTTP/1.0 request's 100-continue must be ignored; no 100.
        row("Expect: 100-continue in HTTP/1.0", format!("POST /client-request HTTP/1.0\r\n{}Expect: 100-continue\r\n\r\n{GET_K}", cl()), &[200], Closes),
        // RFC 9110 §7.8: a server may ignore Upgrade. The threaded server took the rest of
        // the stream as the body and answered 408 at the deadline.
        row("Upgrade ignored", post(&(cl() + "Connection: upgrade\r\nUpgrade: websocket\r\n"), GET_K), &[200], KeepsOpen),
        // RFC 9112 §9.6: `close` ends the connection after the answer.
        row("Connection: close", "GET /status HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &[200], Closes),
        // RFC 9112 §9.3: HTTP/1.0 closes unless it asks to keep the connection.
        row("HTTP/1.0", "GET /status HTTP/1.0\r\nHost: t\r\n\r\n", &[200], Closes),
        row("HTTP/1.0 keep-alive", "GET /status HTTP/1.0\r\nHost: t\r\nConnection: keep-alive\r\n\r\n", &[200], KeepsOpen),
        // RFC 9112 §9.3.2: pipelined requests are answered in order.
        row("pipelined", get("GET /status HTTP/1.1") + &get("GET /server_id HTTP/1.1"), &[200, 200], KeepsOpen),
    ]
}

/// Request targets in other forms. These rows depend on the lead's change to
/// `paxos_host::http::Route::find` (both servers route one normal form of the path): until it
/// lands, the threaded server answers the absolute form 404 and `%2F` 400 (rouille decodes it
/// and routes), and the async one answers `%2D` 404.
fn path_forms_corpus() -> Vec<Case> {
    let post_to = |target: &str, body: &str| {
        format!(
            "POST {target} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    vec![
        // RFC 9112 §3.2.2: an origin server must accept the absolute form, and routes it by
        // its path.
        row(
            "absolute form",
            post_to("http://t/client-request", GET_K),
            &[200],
            KeepsOpen,
        ),
        // RFC 3986 §2.3 and §6.2.2.2: a percent-encoded unreserved character is that
        // character.
        row(
            "%2D for -",
            post_to("/client%2Drequest", GET_K),
            &[200],
            KeepsOpen,
        ),
        // RFC 3986 §2.2: an encoded reserved character is not the delimiter, so no route.
        row(
            "%2F for /",
            post_to("/paxos%2Fmessages", "{}"),
            &[404],
            KeepsOpen,
        ),
    ]
}

/// Every row of [`corpus`] on one member, then the hidden request must not have run and the
/// member must still serve.
fn corpus_answers(runtime: Runtime) {
    let cluster = start(runtime);
    let mut failures = run_rows(&cluster, &corpus());
    let hidden = cluster.ok(0, &json!({"op": "get", "key": "smuggled"}));
    if hidden["value"] != json!(null) {
        failures.push(format!(
            "a hidden request was run: `smuggled` is {}",
            hidden["value"]
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn path_forms(runtime: Runtime) {
    let cluster = start(runtime);
    let failures = run_rows(&cluster, &path_forms_corpus());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// 200 requests with a version the servers refuse, sent one after another: each is answered
/// and closed, and afterwards the member holds no more threads or sockets than before (the
/// threaded server kept a thread, two descriptors and a connection slot for each forever).
fn bad_versions_free_their_threads(runtime: Runtime) {
    const REQUESTS: usize = 200;
    /// Threads and sockets that may come and go meanwhile (tiny_http's idle connection threads
    /// end after 5 s; the member's own timers).
    const SLACK: usize = 4;
    let cluster = start(runtime);
    let pid = cluster.pid(0).expect("the member runs");
    let address = cluster.members[0].listen;
    let (threads_before, sockets_before) = (threads(pid), open_sockets(pid));
    let lines: [(&[u8], &[u16]); 3] = [
        (b"GET /status HTTP/2.0\r\nHost: t\r\n\r\n", &[400]),
        (b"GET /status HTTP/3.0\r\nHost: t\r\n\r\n", &[400]),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", &[]),
    ];
    for i in 0..REQUESTS {
        let (bytes, answers) = lines[i % lines.len()];
        let case = row("bad version", bytes, answers, Closes);
        if let Err(failure) = exchange(address, &case, "") {
            panic!("request {i}: {failure}");
        }
    }
    wait_until(
        "the member's threads and sockets are back to where they were",
        Duration::from_secs(20),
        || {
            let now = (threads(pid), open_sockets(pid));
            (now.0 <= threads_before + SLACK && now.1 <= sockets_before + SLACK).then_some(())
        },
    );
    cluster.ok(0, &json!({"op": "put", "key": "after", "value": "v"}));
}

/// One member (so no peer traffic comes and goes), with the idle timeout the rows rely on.
fn start(runtime: Runtime) -> Cluster {
    Cluster::builder(runtime)
        .size(1)
        .tuning("client_timeout_ms", IDLE_TIMEOUT.as_millis() as u64)
        .start()
}

/// Runs every row on member 0; one line for each row that did not go as it says.
fn run_rows(cluster: &Cluster, rows: &[Case]) -> Vec<String> {
    let address = cluster.members[0].listen;
    let status = cluster.status(0).expect("the member answers /status");
    let id = status["server_id"]
        .as_str()
        .expect("a server id")
        .to_owned();
    let mut names = HashSet::new();
    let mut failures = Vec::new();
    for case in rows {
        assert!(names.insert(case.name), "two rows named {}", case.name);
        if let Err(failure) = exchange(address, case, &id) {
            failures.push(format!("{}: {failure}", case.name));
        }
    }
    // Whatever the rows did, the member serves.
    cluster.ok(0, &json!({"op": "get", "key": "k"}));
    failures
}

/// Sends `case` on a new connection and checks what comes back; `id` is the member's server id,
/// which the request sent after a row that keeps the connection must get.
fn exchange(address: SocketAddr, case: &Case, id: &str) -> Result<(), String> {
    let mut stream = TcpStream::connect(address).map_err(|e| format!("connect: {e}"))?;
    stream.set_write_timeout(Some(ANSWER_WITHIN)).ok();
    // A server may answer and close before it read everything (a head too large): the answer
    // is read even when the write fails.
    let _ = stream.write_all(&case.bytes);
    if case.after == ClientHalfCloses {
        stream.shutdown(Shutdown::Write).ok();
    }
    let mut reader = Reader::new(stream);
    let deadline = Instant::now() + ANSWER_WITHIN;
    let mut statuses = Vec::new();
    while statuses.len() < case.answers.len() {
        match reader.answer(deadline)? {
            Some(answer) => statuses.push(answer.status),
            None => break,
        }
    }
    if statuses != case.answers {
        return Err(format!(
            "answered {statuses:?}, expected {:?}",
            case.answers
        ));
    }
    match case.after {
        Closes | ClientHalfCloses => match reader.answer(deadline) {
            Ok(None) => Ok(()),
            Ok(Some(extra)) => Err(format!(
                "answered {statuses:?} and then {} (a hidden request?), expected a close",
                extra.status
            )),
            Err(e) => Err(format!("answered {statuses:?} but did not close: {e}")),
        },
        KeepsOpen => {
            let next = b"GET /server_id HTTP/1.1\r\nHost: t\r\n\r\n";
            reader
                .stream
                .write_all(next)
                .map_err(|e| format!("answered {statuses:?}, then the next request: {e}"))?;
            let answer = reader.answer(deadline)?.ok_or_else(|| {
                format!("answered {statuses:?}, then closed instead of keeping the connection")
            })?;
            let expected = json!(id).to_string();
            if answer.status != 200 || answer.body != expected.as_bytes() {
                return Err(format!(
                    "answered {statuses:?}, then {} {:?} to the next request, not its answer \
                     (a hidden request?)",
                    answer.status,
                    String::from_utf8_lossy(&answer.body)
                ));
            }
            Ok(())
        }
    }
}

/// One response off the wire.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// Reads responses off a connection one at a time.
struct Reader {
    stream: TcpStream,
    received: Vec<u8>,
    closed: bool,
}

impl Reader {
    fn new(stream: TcpStream) -> Reader {
        Reader {
            stream,
            received: Vec::new(),
            closed: false,
        }
    }

    /// The next whole response, or `None` if the server closed the connection first (with
    /// nothing left over); an error past `deadline` or for bytes that are no response.
    fn answer(&mut self, deadline: Instant) -> Result<Option<Answer>, String> {
        loop {
            if let Some((answer, used)) = parse(&self.received, self.closed)? {
                self.received.drain(..used);
                return Ok(Some(answer));
            }
            if self.closed {
                return match self.received.is_empty() {
                    true => Ok(None),
                    false => Err(format!(
                        "closed inside a response: {:?}",
                        String::from_utf8_lossy(&self.received)
                    )),
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "neither answered nor closed within {ANSWER_WITHIN:?} (received {:?})",
                    String::from_utf8_lossy(&self.received)
                ));
            }
            self.stream.set_read_timeout(Some(left)).ok();
            let mut buf = [0; 16 * 1024];
            match self.stream.read(&mut buf) {
                Ok(0) => self.closed = true,
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // A reset after the server closed with bytes of ours unread is a close too.
                Err(_) => self.closed = true,
            }
        }
    }
}

/// The response at the start of `bytes` and how many bytes it took, if it is all there. A body
/// is framed by `Content-Length` or chunked; neither means none for 1xx, 204 and 304, and the
/// rest of the connection otherwise (so it is whole once `closed`).
fn parse(bytes: &[u8], closed: bool) -> Result<Option<(Answer, usize)>, String> {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&bytes[..end]).map_err(|_| "a head that is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = match status_line.split(' ').collect::<Vec<_>>()[..] {
        [version, status, ..] if version.starts_with("HTTP/1.") => status.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("not a status line: {status_line:?}"))?;
    let field = |name: &str| {
        head.split("\r\n").skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let start = end + 4;
    let rest = &bytes[start..];
    let (body, used) = if matches!(status, 100..=199 | 204 | 304) {
        (Vec::new(), 0)
    } else if let Some(length) = field("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| format!("bad length {length:?}"))?;
        match rest.get(..length) {
            Some(body) => (body.to_vec(), length),
            None => return Ok(None),
        }
    } else if field("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        match dechunk(rest)? {
            Some(found) => found,
            None => return Ok(None),
        }
    } else if closed {
        (rest.to_vec(), rest.len())
    } else {
        return Ok(None);
    };
    Ok(Some((Answer { status, body }, start + used)))
}

/// A chunked body at the start of `bytes` (no trailers) and how many bytes it took.
fn dechunk(bytes: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let (mut body, mut at) = (Vec::new(), 0);
    loop {
        let Some(line_end) = bytes[at..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size = std::str::from_utf8(&bytes[at..at + line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .ok_or("a bad chunk size in a response")?;
        at += line_end + 2;
        if bytes.len() < at + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&bytes[at..at + size]);
        at += size + 2;
        if size == 0 {
            return Ok(Some((body, at)));
        }
    }
}

/// Threads of process `pid`, from `/proc/<pid>/status`.
fn threads(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Threads:"))?;
            line["Threads:".len()..].trim().parse().ok()
        })
        .unwrap_or_else(|| panic!("cannot read the thread count of process {pid}"))
}

/// Sockets process `pid` has open (the threaded server holds two descriptors per connection,
/// so sockets are counted, not descriptors).
fn open_sockets(pid: u32) -> usize {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    entries
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .filter(|target| target.starts_with("socket:"))
        .collect::<HashSet<_>>()
        .len()
}
