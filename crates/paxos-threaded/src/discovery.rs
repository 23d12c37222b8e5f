//! Finding myself: drives [`paxos_core::Discovery`] with one short-lived thread per probe.
//!
//! Every `servers` entry is asked for its id at once, each on its own thread, and the answers
//! come back over a channel, which is `concurrent.futures.as_completed` by hand. The entry that
//! echoes this server's id is itself; then the "found myself" promise is resolved and every
//! handler waiting on it goes on. A thread cannot be cancelled, so the probes still out then are
//! left to [`Probes`], which the caller joins when it stops.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use paxos_core::MemberId;
use paxos_core::discovery::Discovery;
use paxos_host::probe::{self, MAX_ID_BODY, PROBE_TIMEOUT};
use paxos_host::routing::Route;
use paxos_host::{Clock, RunError, log};

use crate::Shared;
use crate::link::Link;

/// The longest the loop waits without looking at the shutdown token. A thread cannot wait on a
/// channel and a token at once, so it waits on the channel in slices this long.
const SHUTDOWN_CHECK: Duration = Duration::from_millis(100);

/// The probe threads started and not yet joined.
#[derive(Debug, Default)]
pub struct Probes(Vec<thread::JoinHandle<()>>);

impl Probes {
    /// Waits for every probe still out; each ends within the probe timeout.
    pub fn join(self) {
        for probe in self.0 {
            // A probe that panicked was reported by the panic hook; its answer never came.
            let _ = probe.join();
        }
    }

    /// Joins the probes that have ended, so that the list holds only those still out.
    fn reap(&mut self) {
        let (ended, out) = std::mem::take(&mut self.0)
            .into_iter()
            .partition(|probe| probe.is_finished());
        self.0 = out;
        Probes(ended).join();
    }
}

/// Looks for this server among `servers` until found (`Some(index)`), the server is stopping
/// (`None`), or the discovery timeout passes (the error lists what each entry answered). Probe
/// threads still out when it returns are in `probes`.
pub fn find_myself(shared: &Shared, probes: &mut Probes) -> Result<Option<MemberId>, RunError> {
    let config = &shared.config;
    let clock = Clock::start();
    let mut discovery = Discovery::new(
        shared.id.to_string(),
        config.servers.clone(),
        clock.now(),
        config.discovery_retry(),
        config.discovery_timeout(),
    );
    let (answers, answered) = mpsc::channel();
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
            let answers = answers.clone();
            let probe = thread::Builder::new()
                .name("probe".into())
                .spawn(move || {
                    let answer = ask_id(link);
                    if let Err(reason) = &answer {
                        log::probe_failed(&server, reason);
                    }
                    // The loop may have ended already; then nobody needs the answer.
                    let _ = answers.send((index, answer));
                })
                .expect("spawning a probe thread");
            probes.0.push(probe);
        }
        probes.reap();
        let next = discovery
            .poll_timeout()
            .map_or(Instant::now(), |t| clock.instant(t));
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(SHUTDOWN_CHECK);
        match answered.recv_timeout(wait) {
            Ok((index, answer)) => discovery.handle_answer(clock.now(), index, answer),
            Err(_) => discovery.handle_timeout(clock.now()),
        }
    }
}

/// Asks the member at the other end of `link` for its id.
fn ask_id(mut link: Link) -> Result<String, String> {
    // One byte past the limit tells an over-long answer without reading all of it.
    let (status, body) = link.get(Route::ServerId, MAX_ID_BODY)?;
    probe::read_server_id(status, &body)
}
