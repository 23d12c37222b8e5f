//! Links: HTTP to one other member, for its peer messages and discovery's probes, with ureq.
//!
//! ureq keeps the connection alive in the link's agent and reads each answer on the calling
//! thread, so a request is written and its answer read on the thread that sends it. A kept-alive
//! connection the member has closed meanwhile is replaced by ureq itself.

use std::io::Read;
use std::time::Duration;

use paxos_host::peer::CONNECT_TIMEOUT;
use paxos_host::routing::Route;
use paxos_host::{Tls, http, probe};
use rustls::pki_types::CertificateDer;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};

use crate::Shared;

/// HTTP to one member, each request within a timeout; errors are described for the log as
/// [`probe::describe_error`] says them, and statuses are answers, not errors.
#[derive(Debug)]
pub struct Link {
    agent: ureq::Agent,
    /// `scheme://host:port`, which each route's path follows.
    base: String,
}

impl Link {
    /// A link to `server` (`host:port`): connecting within the connect timeout, each request
    /// within `timeout` in all, over TLS when the config has `tls`.
    pub fn new(shared: &Shared, server: &str, timeout: Duration) -> Link {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .tls_config(tls_config(shared.tls.as_ref()))
            .build()
            .into();
        let base = format!("{}://{server}", shared.config.scheme());
        Link { agent, base }
    }

    /// Posts a JSON `body` to `route`, with the peers' `Authorization` header when there is
    /// one, and returns the answer's status.
    pub fn post(
        &mut self,
        route: Route,
        body: Vec<u8>,
        authorization: Option<&str>,
    ) -> Result<u16, String> {
        let mut request = self.agent.post(self.url(route)).content_type(http::JSON);
        if let Some(authorization) = authorization {
            request = request.header("Authorization", authorization);
        }
        let response = request.send(&body).map_err(|e| probe::describe_error(&e))?;
        Ok(response.status().as_u16())
    }

    /// Gets `route`: the answer's status, and its body up to one byte past `limit` (which tells
    /// an over-long answer without reading all of it).
    pub fn get(&mut self, route: Route, limit: usize) -> Result<(u16, Vec<u8>), String> {
        let call = self.agent.get(self.url(route)).call();
        let mut response = call.map_err(|e| probe::describe_error(&e))?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        response
            .body_mut()
            .as_reader()
            .take(limit as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| probe::describe_error(&e))?;
        Ok((status, body))
    }

    fn url(&self, route: Route) -> String {
        format!("{}{}", self.base, route.path())
    }
}

/// ureq's TLS config from the member's: `ca` the only root, `cert` presented when asked for,
/// rustls on ring. ureq builds its rustls config itself, with rustls's own certificate checks,
/// so it verifies as the async twin's config from [`Tls::client`] does.
fn tls_config(tls: Option<&Tls>) -> TlsConfig {
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
