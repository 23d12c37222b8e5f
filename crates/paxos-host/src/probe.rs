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
    if let Some(tls) = describe_tls(&text) {
        return tls;
    }
    let lower = text.to_lowercase();
    if lower.contains("timed out") || lower.contains("timeout") {
        "timed out".to_owned()
    } else if lower.contains("connection refused") {
        "connection refused".to_owned()
    } else {
        text
    }
}

/// How rustls begins a refused certificate, and the reason when the certificate does not carry
/// the name it was reached by.
const REFUSED: &str = "invalid peer certificate: ";
const NOT_FOR_NAME: &str = "certificate not valid for name ";

/// A refused certificate said the same from both servers (ureq prefixes rustls's words with
/// `io: `, reqwest does not), a name mismatch said in an operator's words (which name was
/// dialled, which names the certificate has, and the two ways out), and a refusal by the other
/// side said with what its alert means. rustls's own sentence names
/// them as `DnsName("a") or IpAddress(b)`, which reads like a bug report. Its words are matched,
/// not its error type, because ureq's error hides its source; an unknown wording falls through
/// to rustls's sentence as it is.
fn describe_tls(text: &str) -> Option<String> {
    if let Some(at) = text.find(ALERT) {
        return Some(describe_alert(text[at + ALERT.len()..].trim()));
    }
    let refused = &text[text.find(REFUSED)?..];
    let reason = &refused[REFUSED.len()..];
    let Some(rest) = reason.strip_prefix(NOT_FOR_NAME) else {
        return Some(format!("TLS: {refused}"));
    };
    let (name, presented) = rest.split_once("; certificate ")?;
    let names = presented
        .strip_prefix("is only valid for ")
        .map(|list| {
            list.split(", ")
                .flat_map(|part| part.split(" or "))
                .map(plain_name)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|| "no name at all".to_owned());
    Some(format!(
        "TLS: its certificate is not valid for name {name}, the name this entry reaches it by \
         (the certificate is for {names}): give that member a certificate for {name}, or spell \
         its entry with a name its certificate has"
    ))
}

/// How rustls says that the other side ended the handshake.
const ALERT: &str = "received fatal alert: ";

/// The other side refused the handshake: rustls names only the alert (`UnsupportedCertificate`),
/// so say what each alert a member sends means about this member's own files. A peer checks a
/// member's certificate as a client certificate only under `require_client_cert`.
fn describe_alert(alert: &str) -> String {
    let why = match alert {
        "UnknownCA" => "its `tls.ca` holds no CA that signed this member's `tls.cert`",
        "CertificateExpired" => "this member's `tls.cert` has expired or is not valid yet",
        "UnsupportedCertificate" => {
            "this member's `tls.cert` is not for client authentication: under \
             `require_client_cert` members check each other's certificates as client \
             certificates, so a certificate that lists extended key usages needs clientAuth \
             among them (beside serverAuth)"
        }
        "CertificateRequired" => "it requires a client certificate and got none",
        "BadCertificate" => "it could not use this member's `tls.cert`",
        _ => return format!("TLS: it refused the handshake ({alert})"),
    };
    format!("TLS: it refused the handshake with alert {alert}: {why}")
}

/// `DnsName("a.example")` as `a.example`, `IpAddress(10.0.0.1)` as `10.0.0.1`.
fn plain_name(presented: &str) -> &str {
    presented
        .strip_prefix("DnsName(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
        .or_else(|| {
            presented
                .strip_prefix("IpAddress(")
                .and_then(|rest| rest.strip_suffix(')'))
        })
        .unwrap_or(presented)
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

    #[test]
    fn says_which_names_a_certificate_has() {
        // As ureq and reqwest hand rustls's sentence on.
        for prefix in ["io: ", ""] {
            let error = io::Error::other(format!(
                "{prefix}invalid peer certificate: certificate not valid for name \"db1.internal\"; \
                 certificate is only valid for DnsName(\"db1.example\"), DnsName(\"db1\") or \
                 IpAddress(10.0.0.1)"
            ));
            assert_eq!(
                describe_error(&error),
                "TLS: its certificate is not valid for name \"db1.internal\", the name this entry \
                 reaches it by (the certificate is for db1.example, db1, 10.0.0.1): give that \
                 member a certificate for \"db1.internal\", or spell its entry with a name its \
                 certificate has"
            );
        }
        let purpose = io::Error::other("io: received fatal alert: UnsupportedCertificate");
        assert!(
            describe_error(&purpose).contains("needs clientAuth"),
            "{}",
            describe_error(&purpose)
        );
        let expired = io::Error::other(
            "io: invalid peer certificate: certificate expired: verification time 1, but \
             certificate is not valid after 0",
        );
        assert!(
            describe_error(&expired)
                .starts_with("TLS: invalid peer certificate: certificate expired"),
            "{}",
            describe_error(&expired)
        );
    }
}
