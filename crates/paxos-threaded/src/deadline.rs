//! Deadlines: what each connection may take, so that idle and slow clients cannot hold the
//! server's threads for ever.
//!
//! The patched tiny_http under rouille enforces them all (see `vendor/tiny_http/PATCHED.md`): a
//! total deadline for each request head and each body, and a write timeout on the socket, which
//! ends a connection whose client reads nothing of its answer.

use paxos_host::Config;

/// What the patched tiny_http allows each connection. A client gets `client_timeout` for a head,
/// counted from when the server starts waiting for it (so it is also the idle keep-alive
/// timeout), the same again for a body, and the same for each write of an answer it does not
/// read; past it its connection closes and its thread is free. At most `max_connections` threads
/// hold connections, and since each request runs on its connection's thread, at most that many
/// handlers run at once: 5,000 idle or slow clients cost 5,000 sleeping threads (about 10 KiB
/// each) for at most `client_timeout`, while peers and other clients are served by fresh threads.
pub fn connection_limits(config: &Config) -> tiny_http::Limits {
    let timeout = Some(config.client_timeout());
    tiny_http::Limits {
        head_timeout: timeout,
        body_timeout: timeout,
        write_timeout: timeout,
        max_connections: Some(config.max_connections),
    }
}
