//! A client of Twin Paxos, written twice like its servers: an async client on reqwest and tokio
//! (the crate root, feature `async`) and a blocking one on ureq ([`blocking`], feature
//! `blocking`), with the same names, types and errors, the way reqwest's `blocking` module
//! mirrors its async API. A blocking-only build (`default-features = false, features =
//! ["blocking"]`) has no async runtime in its tree.
//!
//! What a client of a replicated store must do is written once, without I/O, and both twins
//! drive it:
//!
//! - **Typed commands**: `get`, `put`, `delete`, `cas`, `append`, and `watch` (`GET /watch`),
//!   with typed answers ([`Done`], [`Cas`], [`Watch`]); `status` and `members` for `/status`.
//!   A read takes [`ReadOptions`], to which options (a consistency level) can be added without
//!   breaking callers.
//! - **Exactly-once by default**: every write carries the client's random `client_id` and the
//!   next `seq`; an attempt whose answer was lost (a timeout, a member that died, a `503` that
//!   says its outcome is unknown) is sent again, to the next member, with the same pair, so it
//!   applies once.
//! - **Members in turn**, from the one that answered last, in rounds with a growing pause
//!   between them, until the call's deadline.
//! - **HTTPS** to a cluster with TLS: `https://host:port` servers (or a CA file for all), verified
//!   against the cluster's own CA and nothing else, with a client certificate for a cluster that
//!   requires one; rustls on ring in both twins.
//! - **Errors that say what happened** ([`Error`]): refused (`400` or `413`, the server's
//!   sentence), unavailable (no member took it: it did not apply), outcome unknown (it may have
//!   applied: the caller must find out), or bad configuration.
//!
//! The HTTP API is in `docs/api.md`, this client and the `paxos` command line tool in
//! `docs/cli.md`.

// Without either twin only the shared types are left, and the code that drives calls has no
// caller.
#![cfg_attr(not(any(feature = "async", feature = "blocking")), allow(dead_code))]

mod answer;
mod builder;
mod call;
mod error;
mod tls;

#[cfg(feature = "async")]
mod async_impl;
#[cfg(feature = "blocking")]
pub mod blocking;

pub use answer::{Ballot, Cas, Consistency, Done, MemberStatus, ReadOptions, Status, Value, Watch};
#[cfg(feature = "async")]
pub use async_impl::{Client, ClientBuilder};
pub use builder::{DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT};
pub use error::{Attempt, Error, Failure};
