//! Peer senders: one thread per peer, each with its own queue, posting batches with ureq.
//!
//! The driver must never wait on the network, so it only pushes messages onto a peer's queue.
//! The peer's thread blocks until something is queued, takes everything queued, and posts it as
//! few envelopes as possible over a kept-alive connection. While a post is in flight new messages
//! pile up in the queue and go out together in the next one, which is how batching adapts to a
//! slow peer. A failed post is counted and dropped: Paxos tolerates lost messages.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use paxos_core::{MemberId, Message, To};
use paxos_host::peer::{self, CONNECT_TIMEOUT, MAX_DRAIN, Outgoing, POST_TIMEOUT};
use paxos_host::probe;
use paxos_host::{Tls, http, log};
use rustls::pki_types::CertificateDer;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};

use crate::Shared;

/// The queues of every peer, indexed by member; `None` at this server's own index.
#[derive(Debug)]
pub struct Peers {
    queues: Vec<Option<mpsc::Sender<Arc<Outgoing>>>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Peers {
    /// Starts one sender thread for every member but `me`.
    pub fn start(shared: &Arc<Shared>, me: MemberId) -> Peers {
        let client = peer_client(shared.tls.as_ref());
        let mut queues = Vec::new();
        let mut threads = Vec::new();
        for member in 0..shared.config.servers.len() {
            if member == me {
                queues.push(None);
                continue;
            }
            let (queue, inbox) = mpsc::channel();
            queues.push(Some(queue));
            let sender = Sender {
                shared: Arc::clone(shared),
                client: client.clone(),
                me,
                server: shared.config.peer_address(member).to_owned(),
            };
            let thread = thread::Builder::new()
                .name(format!("peer-{member}"))
                .spawn(move || sender.run(&inbox))
                .expect("spawning a peer sender thread");
            threads.push(thread);
        }
        Peers { queues, threads }
    }

    /// Queues messages for their peers; never blocks.
    pub fn send(&self, messages: Vec<(To, Message)>) {
        for (to, message) in messages {
            let outgoing = Outgoing::new(message);
            for member in peer::recipients(to, self.queues.len()) {
                if let Some(Some(queue)) = self.queues.get(member) {
                    // It fails only once the sender thread has ended (its queue dropped, or it
                    // panicked): then nobody is left to post the message, and Paxos copes.
                    let _ = queue.send(Arc::clone(&outgoing));
                }
            }
        }
    }

    /// Closes the queues and waits for the senders, each of which posts what is still queued
    /// (each post bounded by the post timeout) and then sees its queue closed.
    pub fn stop(self) {
        drop(self.queues);
        for thread in self.threads {
            // A sender that panicked was reported by the panic hook; nothing is left to stop.
            let _ = thread.join();
        }
    }
}

/// One peer's sender.
struct Sender {
    shared: Arc<Shared>,
    client: ureq::Agent,
    me: MemberId,
    server: String,
}

impl Sender {
    fn run(self, inbox: &mpsc::Receiver<Arc<Outgoing>>) {
        let url = peer::messages_url(self.shared.config.scheme(), &self.server);
        let authorization = peer::authorization(self.shared.config.secret.as_deref());
        // Blocks until a message is queued, then takes every other one already there.
        while let Ok(first) = inbox.recv() {
            let mut messages = vec![first];
            messages.extend(inbox.try_iter().take(MAX_DRAIN - 1));
            for body in peer::envelopes(&self.shared.config, self.me, &messages) {
                let mut request = self.client.post(&url).content_type(http::JSON);
                if let Some(authorization) = &authorization {
                    request = request.header("Authorization", authorization);
                }
                let started = Instant::now();
                let posted = request.send(&body.json);
                self.shared.metrics.peer_post(started.elapsed());
                match posted {
                    Ok(response) if response.status().as_u16() == 204 => {
                        self.shared.metrics.peer_sent(body.messages);
                    }
                    Ok(response) => {
                        self.shared.metrics.peer_send_error();
                        let reason = format!("answered HTTP {}", response.status().as_u16());
                        log::peer_send_failed(&self.server, body.messages, reason);
                    }
                    Err(error) => {
                        self.shared.metrics.peer_send_error();
                        log::peer_send_failed(
                            &self.server,
                            body.messages,
                            probe::describe_error(&error),
                        );
                    }
                }
            }
        }
    }
}

/// An HTTP client for peers: short timeouts, kept-alive connections, statuses as answers.
fn peer_client(tls: Option<&Tls>) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(POST_TIMEOUT))
        .http_status_as_error(false)
        .tls_config(tls_config(tls))
        .build()
        .into()
}

/// ureq's TLS config from the member's: `ca` the only root, `cert` presented when asked for,
/// rustls on ring. ureq builds its rustls config itself, with rustls's own certificate checks,
/// so it verifies as the async twin's config from [`Tls::client`] does.
pub fn tls_config(tls: Option<&Tls>) -> TlsConfig {
    let Some(tls) = tls else {
        return TlsConfig::default();
    };
    let der = |certificates: &[CertificateDer<'_>]| -> Vec<Certificate<'static>> {
        certificates
            .iter()
            .map(|c| Certificate::from_der(c).to_owned())
            .collect()
    };
    let key = PrivateKey::from_pem(&tls.key_pem).expect("rustls read this key at start");
    TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::from(der(&tls.roots)))
        .client_cert(Some(ClientCert::new_with_certs(&der(&tls.chain), key)))
        .unversioned_rustls_crypto_provider(paxos_host::tls::provider())
        .build()
}
