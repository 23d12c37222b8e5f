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
use paxos_host::{Clock, RunError, log};
use tokio::task::JoinSet;

use crate::Shared;

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
    let client = probe_client(shared);
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
            let client = client.clone();
            let url = probe::server_id_url(config.scheme(), &config.servers[index]);
            let server = config.servers[index].clone();
            answers.spawn(async move {
                let answer = ask_id(&client, &url).await;
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

/// An HTTP client for probes: short timeouts; reqwest takes any status as an answer.
fn probe_client(shared: &Shared) -> reqwest::Client {
    let tls = paxos_host::tls::client_config(shared.tls.as_ref());
    reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .tls_backend_preconfigured((*tls).clone())
        .build()
        .expect("a client with a rustls config always builds")
}

/// Asks the member at `url` (its `/server_id`) for its id.
async fn ask_id(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| probe::describe_error(&e))?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    // One byte past the limit tells an over-long answer without reading all of it.
    while body.len() <= MAX_ID_BODY
        && let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| probe::describe_error(&e))?
    {
        body.extend_from_slice(&chunk);
    }
    probe::read_server_id(status, &body)
}
