//! Self-discovery's HTTP side, minus the HTTP client: what to ask, how to read the answer, and
//! how to say why asking failed.
//!
//! [`paxos_core::Discovery`] decides whom to ask when; each server asks with its own client
//! (ureq or hyper's). Reading answers and describing failures here makes the "could not find
//! myself" message the same from both servers, which is the message an operator sees when a
//! config lists no address that reaches this server.

use std::error::Error;
use std::io;
use std::time::Duration;

use paxos_core::MemberId;
use paxos_core::discovery::{Discovery, Finding};

use crate::{Config, RunError, StatusBoard, log};

/// How long one probe may take, connecting included. Short, because an entry that does not
/// answer is simply asked again a retry interval later.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest `GET /server_id` body worth reading: a JSON string of 32 hex digits is 34 bytes.
pub const MAX_ID_BODY: usize = 4096;

/// Reads a `GET /server_id` answer: `200` with a JSON string. Each server reads at most one
/// byte past [`MAX_ID_BODY`] of the body, so a longer answer is refused here, alike on both.
pub fn read_server_id(status: u16, body: &[u8]) -> Result<String, String> {
    if status != 200 {
        return Err(format!("answered HTTP {status}"));
    }
    if body.len() > MAX_ID_BODY {
        return Err(format!(
            "answered more than {MAX_ID_BODY} bytes, which is not a server id"
        ));
    }
    serde_json::from_slice::<String>(body)
        .map_err(|_| "answered something that is not a server id".to_owned())
}

/// A short description of why a request failed ("connection refused", "timed out", ...), from
/// the innermost error that says something, since HTTP clients wrap the useful part in layers
/// of "error sending request".
pub fn describe_error(error: &(dyn Error + 'static)) -> String {
    let mut innermost = error;
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::ConnectionRefused => return "connection refused".to_owned(),
                io::ErrorKind::ConnectionReset => return "connection reset".to_owned(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                    return "timed out".to_owned();
                }
                _ => {}
            }
        }
        innermost = e;
        current = e.source();
    }
    let text = innermost.to_string();
    let lower = text.to_lowercase();
    if lower.contains("timed out") || lower.contains("timeout") {
        "timed out".to_owned()
    } else if lower.contains("connection refused") {
        "connection refused".to_owned()
    } else {
        text
    }
}

/// Concludes a search for myself once it has ended: logs the end, marks the status board, and
/// returns what the server's discovery task reports, this member's index or the one-line error
/// that lists what every entry answered. `None` while the search goes on. Both servers end their
/// search through here, so it reads and logs the same in both.
pub fn conclude(
    discovery: &Discovery,
    config: &Config,
    status: &StatusBoard,
    took: Duration,
) -> Option<Result<MemberId, RunError>> {
    match discovery.finding()? {
        Finding::Found { index } => {
            log::found_myself(*index, &config.servers[*index], took);
            status.found_myself(*index);
            Some(Ok(*index))
        }
        finding @ (Finding::NotFound { .. } | Finding::NamedTwice { .. }) => {
            let message = finding.describe(config.discovery_timeout());
            log::discovery_failed(&message);
            Some(Err(RunError(message)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ids_and_names_failures() {
        assert_eq!(read_server_id(200, br#""abc""#), Ok("abc".to_owned()));
        assert_eq!(
            read_server_id(404, b"{}"),
            Err("answered HTTP 404".to_owned())
        );
        assert!(read_server_id(200, b"<html>").is_err());
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(describe_error(&refused), "connection refused");
        let other = io::Error::other("no route to host");
        assert_eq!(describe_error(&other), "no route to host");
    }
}
