//! TLS, when the config has a `tls` object: its PEM files read once at start into rustls's
//! server and client configs, which both servers use as they are (rustls has no runtime of its
//! own; the threaded server runs it on its sockets, the async one through tokio-rustls).
//!
//! - The listener serves HTTPS only, with `cert` and `key`. With `require_client_cert` it
//!   refuses every connection whose client presents no certificate signed by `ca`: peers,
//!   probes and clients alike.
//! - Peer posts and discovery probes go to `https://`, verify the member's certificate against
//!   `ca` (and nothing else: no system roots) and against the host they reached it by, and
//!   present `cert` as a client certificate when the member asks for one.
//!
//! TLS proves the channel: who answers at an address, and that nobody reads or changes what
//! passes. It does not make a member: `/paxos/*` still needs the `secret` (see `docs/security.md`).
//!
//! rustls runs on ring, not on its default aws-lc-rs, which needs cmake and builds slowly.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::config::TlsFiles;

/// The TLS material of a member, read and checked.
pub struct Tls {
    /// What the listener serves with.
    pub server: Arc<ServerConfig>,
    /// What peer posts and discovery probes connect with.
    pub client: Arc<ClientConfig>,
    /// `cert`: this member's chain, leaf first (for clients built by others, such as ureq).
    pub chain: Vec<CertificateDer<'static>>,
    /// `key`: this member's private key.
    pub key: PrivateKeyDer<'static>,
    /// `key` as read, PEM (ureq takes a key's kind from its PEM label only).
    pub key_pem: Vec<u8>,
    /// `ca`: the certificates a member's certificate must chain to.
    pub roots: Vec<CertificateDer<'static>>,
}

impl fmt::Debug for Tls {
    // No key in logs or panics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("chain", &self.chain.len())
            .field("roots", &self.roots.len())
            .finish_non_exhaustive()
    }
}

/// rustls's crypto on ring, for every TLS config of the process.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Tls {
    /// Reads `files` and builds both configs; the error is one sentence naming the field and
    /// its file.
    pub fn load(files: &TlsFiles) -> Result<Tls, String> {
        let chain = certificates("cert", &files.cert)?;
        let roots = certificates("ca", &files.ca)?;
        let (key, key_pem) = private_key(&files.key)?;
        let provider = provider();
        let mut store = RootCertStore::empty();
        for root in &roots {
            store.add(root.clone()).map_err(|e| {
                format!(
                    "`tls.ca` {}: not a usable CA certificate: {e}",
                    show(&files.ca)
                )
            })?;
        }
        let store = Arc::new(store);
        let server = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("`tls`: {e}"))?;
        let server = if files.require_client_cert {
            let verifier = WebPkiClientVerifier::builder_with_provider(
                Arc::clone(&store),
                Arc::clone(&provider),
            )
            .build()
            .map_err(|e| format!("`tls.ca` {}: {e}", show(&files.ca)))?;
            server.with_client_cert_verifier(verifier)
        } else {
            server.with_no_client_auth()
        };
        let server = server
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| mismatch(files, &e))?;
        // A member presents its certificate whenever a peer asks for one, `require_client_cert`
        // or not: then members with and without it still reach each other while it is rolled
        // out one member at a time.
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("`tls`: {e}"))?
            .with_root_certificates(store)
            .with_client_auth_cert(chain.clone(), key.clone_key())
            .map_err(|e| mismatch(files, &e))?;
        Ok(Tls {
            server: Arc::new(server),
            client: Arc::new(client),
            chain,
            key,
            key_pem,
            roots,
        })
    }
}

/// The client config of `tls`, or without it one that trusts nobody: for an HTTP client that
/// insists on a TLS config even when it only ever speaks plain HTTP (reqwest with rustls but no
/// crypto of its own).
pub fn client_config(tls: Option<&Tls>) -> Arc<ClientConfig> {
    match tls {
        Some(tls) => Arc::clone(&tls.client),
        None => Arc::new(
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .expect("ring supports rustls's default protocol versions")
                .with_root_certificates(RootCertStore::empty())
                .with_no_client_auth(),
        ),
    }
}

fn show(path: &Path) -> String {
    path.display().to_string()
}

/// Every certificate in the PEM file at `path`, at least one.
fn certificates(field: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let text = std::fs::read(path)
        .map_err(|e| format!("`tls.{field}` {}: cannot read: {e}", show(path)))?;
    let certificates = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("`tls.{field}` {}: unparsable PEM: {e}", show(path)))?;
    if certificates.is_empty() {
        return Err(format!(
            "`tls.{field}` {}: no PEM certificate (\"BEGIN CERTIFICATE\") in it",
            show(path)
        ));
    }
    Ok(certificates)
}

/// The private key in the PEM file at `path` (PKCS#8, PKCS#1 or SEC1).
fn private_key(path: &Path) -> Result<(PrivateKeyDer<'static>, Vec<u8>), String> {
    let text =
        std::fs::read(path).map_err(|e| format!("`tls.key` {}: cannot read: {e}", show(path)))?;
    let key = PrivateKeyDer::from_pem_slice(&text).map_err(|e| {
        format!(
            "`tls.key` {}: no usable PEM private key in it ({e}); an unencrypted PKCS#8, PKCS#1 \
             or SEC1 key is needed",
            show(path)
        )
    })?;
    Ok((key, text))
}

fn mismatch(files: &TlsFiles, error: &rustls::Error) -> String {
    match error {
        rustls::Error::InconsistentKeys(_) => format!(
            "`tls.key` {} is not the private key of `tls.cert` {}",
            show(&files.key),
            show(&files.cert)
        ),
        other => format!(
            "`tls.cert` {} with `tls.key` {}: {other}",
            show(&files.cert),
            show(&files.key)
        ),
    }
}
