//! What can go wrong, the same for both twins: every error says whether the command applied.

use std::fmt;

/// Why a call failed. Each kind says what became of the command:
///
/// | kind | the command |
/// | --- | --- |
/// | [`Error::Refused`] | did not apply: a member answered that it cannot (`400`, `413`) |
/// | [`Error::Unavailable`] | did not apply: no member took it before the deadline |
/// | [`Error::OutcomeUnknown`] | may have applied, or may still: the caller must find out |
/// | [`Error::Config`] | was not sent: the client is set up wrong |
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A member answered that the command cannot be run or applied: malformed or over a size
    /// limit (refused before it reached the log), or ordered but impossible (an `append` to a
    /// string, the store full). It changed nothing, and sending it again would change nothing.
    ///
    /// A command over a size limit (a key over 1 KiB, a value over 512 KiB, a body over 1 MiB)
    /// is refused by the client itself, with the members' own sentence, and not sent.
    Refused {
        /// The member that answered, as listed in the client's servers; `None` when the client
        /// refused the command itself.
        server: Option<String>,
        /// `400` or `413`.
        status: u16,
        /// The server's sentence.
        message: String,
    },
    /// Every member was tried, in turn and again, until the deadline, and none took the
    /// command: down, unreachable, overloaded, still looking for itself, or no answer to a
    /// read. The command did not apply (for a write, no attempt could have reached the log).
    Unavailable {
        /// Every attempt, in order.
        attempts: Vec<Attempt>,
    },
    /// A write was sent and no answer came back (a timeout, a connection broken after the
    /// request went out, a `503` or `500` saying its outcome is unknown), and no later attempt
    /// learned its answer before the deadline. It may have applied, and may still apply.
    ///
    /// The next write of the same client settles it: the cluster keeps one latest `seq` per
    /// client, so once a later command of this client has an answer, this one can no longer
    /// apply. Read the key then to learn whether it did.
    OutcomeUnknown {
        /// Every attempt, in order; at least one has [`Attempt::may_have_applied`].
        attempts: Vec<Attempt>,
    },
    /// The client is set up wrong: no servers, an address that is not `host:port`, a config
    /// file that cannot be read, a timeout of zero, a watch longer than a request may wait.
    /// Nothing was sent.
    Config(String),
}

/// One request to one member that got no usable answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The member, as listed in the client's servers.
    pub server: String,
    pub failure: Failure,
    /// Whether this attempt may have applied a write: it reached the member and its outcome is
    /// unknown. Always false for reads and watches, and for a failure that says the command
    /// was not run.
    pub may_have_applied: bool,
}

/// What went wrong with one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// No connection: the request never left (refused, unreachable, no such host, the connect
    /// timeout).
    Unreachable(String),
    /// The request may have been sent, and no whole answer came back: the attempt's timeout,
    /// or a connection reset or closed while waiting.
    NoAnswer(String),
    /// The TLS handshake failed: the member's certificate was refused (not signed by the CA
    /// file's CA, or not for the name the member is reached by), or the member refused the
    /// client's (none where one is required, or one its CA did not sign). The request never
    /// reached the member's HTTP server. A round in which every member failed so ends the call.
    /// Under TLS 1.3 a member refuses a client certificate after the client's side of the
    /// handshake, and the client may see only a broken connection ([`Failure::NoAnswer`]).
    Tls(String),
    /// An HTTP status that is not the command's answer (`503`, `500`, `408`, `404`, ...), with
    /// the server's sentence when it gave one.
    Status { status: u16, message: String },
    /// An answer that is not the API's: a body that is not the JSON the status calls for.
    BadAnswer(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Refused {
                server: Some(server),
                status,
                message,
            } => write!(
                f,
                "{server} refused the request ({status}): {message}; it changed nothing"
            ),
            Error::Refused {
                server: None,
                status,
                message,
            } => write!(
                f,
                "refused without sending, as every member would ({status}): {message}"
            ),
            Error::Unavailable { attempts } => write!(
                f,
                "no member took the request ({}); it was not run",
                summary(attempts)
            ),
            Error::OutcomeUnknown { attempts } => write!(
                f,
                "the command's outcome is unknown: it was sent and no answer came back ({}); \
                 it may have applied, and the client's next write settles it",
                summary(attempts)
            ),
            Error::Config(message) => write!(f, "bad client configuration: {message}"),
        }
    }
}

impl std::error::Error for Error {}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Unreachable(why) => write!(f, "unreachable: {why}"),
            Failure::NoAnswer(why) => write!(f, "no answer: {why}"),
            Failure::Tls(why) => write!(f, "TLS: {why}"),
            Failure::Status { status, message } if message.is_empty() => write!(f, "{status}"),
            Failure::Status { status, message } => write!(f, "{status} {message}"),
            Failure::BadAnswer(why) => write!(f, "a bad answer: {why}"),
        }
    }
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.server, self.failure)
    }
}

/// The last attempt on each member, in the order they were first tried, and how many attempts
/// there were: a deadline of several rounds would otherwise print every round.
fn summary(attempts: &[Attempt]) -> String {
    let mut last: Vec<&Attempt> = Vec::new();
    for attempt in attempts {
        match last.iter_mut().find(|a| a.server == attempt.server) {
            Some(seen) => *seen = attempt,
            None => last.push(attempt),
        }
    }
    let each: Vec<String> = last.iter().map(ToString::to_string).collect();
    let rounds = match attempts.len() {
        n if n > last.len() => format!("{n} attempts; last on each member: "),
        _ => String::new(),
    };
    format!("{rounds}{}", each.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(server: &str, failure: Failure) -> Attempt {
        Attempt {
            server: server.to_owned(),
            failure,
            may_have_applied: false,
        }
    }

    #[test]
    fn a_summary_names_each_member_once_with_its_last_failure() {
        let refused = |s| attempt(s, Failure::Unreachable("connection refused".into()));
        let busy = attempt(
            "b:1",
            Failure::Status {
                status: 503,
                message: "the server is overloaded".into(),
            },
        );
        let error = Error::Unavailable {
            attempts: vec![refused("a:1"), busy.clone(), refused("a:1"), refused("b:1")],
        };
        assert_eq!(
            error.to_string(),
            "no member took the request (4 attempts; last on each member: a:1: unreachable: \
             connection refused; b:1: unreachable: connection refused); it was not run"
        );
        let once = Error::Unavailable {
            attempts: vec![busy],
        };
        assert_eq!(
            once.to_string(),
            "no member took the request (b:1: 503 the server is overloaded); it was not run"
        );
    }
}
