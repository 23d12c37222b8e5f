//! The benchmark's variants of how this server uses its threads (`PAXOS_VARIANT`, see
//! [`paxos_host::VARIANT_VAR`]); unset, it runs as designed.
//!
//! As designed, each request is read, handled and answered on its connection's thread. The
//! variants keep rouille's own dispatch instead: a loop takes each request off tiny_http's queue
//! and hands it to a pool or to a new thread, so the benchmark can show what that hand-off costs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use paxos_host::RunError;
use paxos_host::http::MAX_WAITING_CLIENTS;

/// The variants `PAXOS_VARIANT` may name.
pub const VARIANTS: &[&str] = &[HANDLER_POOL, PER_REQUEST_THREADS];
/// The variant that dispatches as rouille does with a pool: a loop takes each request off
/// tiny_http's queue and hands it to one of [`HANDLER_THREADS`] pooled threads.
pub const HANDLER_POOL: &str = "handler-pool";
/// The variant that dispatches as rouille does by default: the same loop hands each request to
/// a new thread.
pub const PER_REQUEST_THREADS: &str = "per-request-threads";

/// The size of the handler pool of the [`HANDLER_POOL`] variant. It must be large, because each
/// client request holds its pool thread for as long as its command takes to commit (up to the
/// request timeout), and peer messages are served by the same pool: if waiting clients took every
/// thread, the peer messages that would commit their commands could not be read. (As designed,
/// each request holds only its own connection's thread, so no client can take a thread a peer
/// needs.)
pub const HANDLER_THREADS: usize = 512;
// At most `MAX_WAITING_CLIENTS` client requests wait (more are refused `503` at once), so the
// rest of the variant's pool stays free for peer messages, `/status` and `/metrics`, whose
// handlers never block: the cluster keeps making progress under any client load.
const _: () = assert!(MAX_WAITING_CLIENTS + 32 <= HANDLER_THREADS as u64);
/// How often the variants' dispatch loop looks for the end of its work while no requests come.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// rouille's server on `listen` with `handler`: on tiny_http's connection threads as designed,
/// or behind a variant's dispatch loop.
pub fn server<H>(listen: &str, handler: H) -> Result<rouille::Server<H>, BoxError>
where
    H: Fn(&rouille::Request) -> rouille::Response + Send + Sync + 'static,
{
    match paxos_host::variant().as_deref() {
        Some(HANDLER_POOL) => Ok(rouille::Server::new(listen, handler)?.pool_size(HANDLER_THREADS)),
        Some(PER_REQUEST_THREADS) => rouille::Server::new(listen, handler),
        _ => rouille::Server::new_on_connection_threads(listen, handler),
    }
}

/// Why rouille could not listen.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A variant's dispatch loop, rouille's, and what ends it.
#[derive(Debug)]
pub struct Dispatch {
    thread: thread::JoinHandle<()>,
    ending: Arc<AtomicBool>,
}

impl Dispatch {
    /// Starts the dispatch loop when a variant runs: on a thread of its own, it takes each request
    /// off tiny_http's queue and hands it to the pool or a new thread, until told to end. `None`
    /// as designed, where the connection threads handle their own requests.
    pub fn start<H>(server: &Arc<rouille::Server<H>>) -> Result<Option<Dispatch>, RunError>
    where
        H: Fn(&rouille::Request) -> rouille::Response + Send + Sync + 'static,
    {
        if paxos_host::variant().is_none() {
            return Ok(None);
        }
        let (server, ending) = (Arc::clone(server), Arc::new(AtomicBool::new(false)));
        let end = Arc::clone(&ending);
        let thread = thread::Builder::new()
            .name("http".into())
            .spawn(move || server.poll_until(POLL_INTERVAL, || end.load(Ordering::Relaxed)))
            .map_err(|e| RunError(format!("cannot start the HTTP thread: {e}")))?;
        Ok(Some(Dispatch { thread, ending }))
    }

    /// Ends the loop within the poll interval; the server's `stop` hands on whatever is queued
    /// after that.
    pub fn stop(self) {
        self.ending.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}
