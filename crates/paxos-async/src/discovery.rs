//! Finding myself: drives [`paxos_core::Discovery`] with one short-lived task per probe.
//!
//! Every `servers` entry is asked for its id at once, each in its own task, and the answers
//! come back through a `JoinSet`, which is `asyncio.as_completed`. The entry that echoes this
//! server's id is itself; then the "found myself" promise is resolved and every handler waiting
//! on it goes on.

use std::time::Instant;

use paxos_core::MemberId;
use paxos_core::discovery::Discovery;
use paxos_host::probe::{self, MAX_ID_BODY, PROBE_TIMEOUT};
use paxos_host::routing::Route;
use paxos_host::{Clock, RunError, log};
use tokio::task::JoinSet;

use crate::Shared;
use crate::link::Link;

/// Looks for this server among `servers` until found (`Some(index)`), the server is stopping
/// (`None`), or the discovery timeout passes (the error lists what each entry answered).
pub async fn find_myself(shared: &Shared) -> Result<Option<MemberId>, RunError> {
    let config = &shared.config;
    let clock = Clock::start();
    let mut discovery = Discovery::new(
        shared.id.to_string(),
        config.servers.clone(),
        clock.now(),
        config.discovery_retry(),
        config.discovery_timeout(),
    );
    // Dropping the set when this function returns aborts the probes still out.
    let mut answers = JoinSet::new();
    loop {
        if let Some(result) = probe::conclude(&discovery, config, &shared.status, clock.now()) {
            shared.found.resolve(result.as_ref().ok().copied());
            return result.map(Some);
        }
        if shared.shutdown.is_cancelled() {
            shared.found.resolve(None);
            return Ok(None);
        }
        for index in discovery.poll_probes(clock.now()) {
            let server = config.servers[index].clone();
            let link = Link::new(shared, &server, PROBE_TIMEOUT);
            answers.spawn(async move {
                let answer = ask_id(link).await;
                if let Err(reason) = &answer {
                    log::probe_failed(&server, reason);
                }
                (index, answer)
            });
        }
        let next = discovery
            .poll_timeout()
            .map_or(Instant::now(), |t| clock.instant(t));
        tokio::select! {
            Some(Ok((index, answer))) = answers.join_next() => {
                discovery.handle_answer(clock.now(), index, answer);
            }
            () = tokio::time::sleep_until(next.into()) => discovery.handle_timeout(clock.now()),
            () = shared.shutdown.cancelled() => {}
        }
    }
}

/// Asks the member at the other end of `link` for its id.
async fn ask_id(mut link: Link) -> Result<String, String> {
    // One byte past the limit tells an over-long answer without reading all of it.
    let (status, body) = link.get(Route::ServerId, MAX_ID_BODY).await?;
    probe::read_server_id(status, &body)
}
