//! HTTPS to the members, written once: the builder's PEM files read and checked into a rustls
//! client config on ring, which each twin hands to its HTTP client, and a refused handshake said
//! in a client's words.
//!
//! The CA file is the only root: no system or web roots, because a cluster's certificates come
//! from its own CA (the config's `tls.ca`). The files are read the way the servers read theirs
//! (`paxos_host::tls`), without depending on the servers' crate.

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::error::Error;

/// The TLS files a builder was given, read by `build`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    /// The CA certificates a member's certificate must chain to.
    pub ca: Option<PathBuf>,
    /// A client certificate chain and its private key, presented when a member asks.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// The TLS of a client, read and checked: what each twin's HTTP client connects with.
pub(crate) struct Tls {
    /// The whole config, for reqwest (which takes a rustls config as it is).
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    config: ClientConfig,
    /// The CA file's certificates, for ureq (which builds its rustls config itself).
    #[cfg_attr(not(feature = "blocking"), allow(dead_code))]
    roots: Vec<CertificateDer<'static>>,
    /// The client certificate chain and its key as read, PEM (ureq takes a key's kind from its
    /// PEM label only).
    #[cfg_attr(not(feature = "blocking"), allow(dead_code))]
    identity: Option<(Vec<CertificateDer<'static>>, Vec<u8>)>,
}

impl std::fmt::Debug for Tls {
    // No key in logs or panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("roots", &self.roots.len())
            .field("identity", &self.identity.is_some())
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads `files` and builds the config; without a CA, one that trusts nobody, which plain
    /// HTTP never uses (reqwest with rustls but no crypto of its own panics without a config).
    /// Every mistake is one [`Error::Config`] naming the file.
    pub fn load(files: &TlsFiles) -> Result<Tls, Error> {
        let roots = match &files.ca {
            Some(ca) => certificates("CA file", ca)?,
            None => Vec::new(),
        };
        let mut store = RootCertStore::empty();
        for root in &roots {
            store.add(root.clone()).map_err(|e| {
                let ca = files.ca.as_deref().map(show).unwrap_or_default();
                Error::Config(format!(
                    "the CA file {ca}: not a usable CA certificate: {e}"
                ))
            })?;
        }
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS: {e}")))?
            .with_root_certificates(store);
        let (config, identity) = match &files.identity {
            None => (config.with_no_client_auth(), None),
            Some((cert, key)) => {
                let chain = certificates("client certificate", cert)?;
                let (der, pem) = private_key(key)?;
                let config = config
                    .with_client_auth_cert(chain.clone(), der)
                    .map_err(|e| mismatch(cert, key, &e))?;
                (config, Some((chain, pem)))
            }
        };
        Ok(Tls {
            config,
            roots,
            identity,
        })
    }

    /// reqwest's TLS: the config as built.
    #[cfg(feature = "async")]
    pub fn rustls(&self) -> ClientConfig {
        self.config.clone()
    }

    /// ureq's TLS: the same roots and client certificate, rustls on ring. ureq builds its rustls
    /// config itself, with rustls's own certificate checks, so it verifies as reqwest does.
    #[cfg(feature = "blocking")]
    pub fn ureq(&self) -> ureq::tls::TlsConfig {
        use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};
        let der = |certificates: &[CertificateDer<'_>]| -> Vec<Certificate<'static>> {
            certificates
                .iter()
                .map(|c| Certificate::from_der(c).to_owned())
                .collect()
        };
        let identity = self.identity.as_ref().map(|(chain, pem)| {
            let key = PrivateKey::from_pem(pem).expect("rustls read this key in `load`");
            ClientCert::new_with_certs(&der(chain), key.to_owned())
        });
        TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(RootCerts::from(der(&self.roots)))
            .client_cert(identity)
            .unversioned_rustls_crypto_provider(provider())
            .build()
    }
}

/// rustls's crypto on ring, as the servers use it (aws-lc-rs, rustls's default, needs cmake).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn show(path: &Path) -> String {
    path.display().to_string()
}

/// Every certificate in the PEM file at `path`, at least one.
fn certificates(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let text = std::fs::read(path)
        .map_err(|e| Error::Config(format!("cannot read the {what} {}: {e}", show(path))))?;
    let certificates = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Config(format!("the {what} {}: unparsable PEM: {e}", show(path))))?;
    if certificates.is_empty() {
        return Err(Error::Config(format!(
            "the {what} {}: no PEM certificate (\"BEGIN CERTIFICATE\") in it",
            show(path)
        )));
    }
    Ok(certificates)
}

/// The private key in the PEM file at `path` (PKCS#8, PKCS#1 or SEC1), and the file as read.
fn private_key(path: &Path) -> Result<(PrivateKeyDer<'static>, Vec<u8>), Error> {
    let text = std::fs::read(path)
        .map_err(|e| Error::Config(format!("cannot read the client key {}: {e}", show(path))))?;
    let key = PrivateKeyDer::from_pem_slice(&text).map_err(|e| {
        Error::Config(format!(
            "the client key {}: no usable PEM private key in it ({e}); an unencrypted PKCS#8, \
             PKCS#1 or SEC1 key is needed",
            show(path)
        ))
    })?;
    Ok((key, text))
}

fn mismatch(cert: &Path, key: &Path, error: &rustls::Error) -> Error {
    Error::Config(match error {
        rustls::Error::InconsistentKeys(_) => format!(
            "the client key {} is not the private key of the client certificate {}",
            show(key),
            show(cert)
        ),
        other => format!(
            "the client certificate {} with the key {}: {other}",
            show(cert),
            show(key)
        ),
    })
}

/// How rustls begins a refused certificate, and the reason when the certificate does not carry
/// the name it was reached by.
const REFUSED: &str = "invalid peer certificate: ";
const NOT_FOR_NAME: &str = "certificate not valid for name ";
/// How rustls says that the member ended the handshake.
const ALERT: &str = "received fatal alert: ";

/// Why a TLS handshake failed, in a client's words, when `error` says it did: the member's
/// certificate refused, or the member refusing the client's. A handshake that failed never
/// delivered the request. rustls's words are matched, not its error type, because ureq's error
/// hides its source; the innermost error that has them is used.
pub(crate) fn refused(error: &(dyn StdError + 'static)) -> Option<String> {
    let mut found = None;
    let mut current = Some(error);
    while let Some(e) = current {
        let text = e.to_string();
        if text.contains(REFUSED) || text.contains(ALERT) {
            found = Some(text);
        }
        current = e.source();
    }
    describe(&found?)
}

fn describe(text: &str) -> Option<String> {
    if let Some(at) = text.find(ALERT) {
        return Some(describe_alert(text[at + ALERT.len()..].trim()));
    }
    let refused = &text[text.find(REFUSED)?..];
    let reason = &refused[REFUSED.len()..];
    let Some(rest) = reason.strip_prefix(NOT_FOR_NAME) else {
        return Some(match reason {
            "UnknownIssuer" | "BadSignature" => {
                format!("its certificate is not signed by a CA in the client's CA file ({reason})")
            }
            _ => format!("its certificate was refused: {reason}"),
        });
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
        "its certificate is not valid for name {name}, the name the client reaches it by (the \
         certificate is for {names})"
    ))
}

/// The member refused the handshake: rustls names only the alert, so say what it means about
/// the client's own files. Under TLS 1.3 the member refuses a client certificate after the
/// client's side of the handshake is done, so this comes as the answer to the request; the
/// member's HTTP server never saw the request.
fn describe_alert(alert: &str) -> String {
    let why = match alert {
        "CertificateRequired" => "it requires a client certificate and got none",
        "UnknownCA" => "no CA it trusts (its `tls.ca`) signed the client certificate",
        "CertificateExpired" => "the client certificate has expired or is not valid yet",
        "UnsupportedCertificate" => {
            "the client certificate is not for client authentication (it needs clientAuth \
             among its extended key usages)"
        }
        "BadCertificate" => "it could not use the client certificate",
        _ => return format!("it refused the handshake ({alert})"),
    };
    format!("it refused the handshake with alert {alert}: {why}")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_a_refused_handshake_in_a_clients_words() {
        assert_eq!(
            describe("io: invalid peer certificate: UnknownIssuer").unwrap(),
            "its certificate is not signed by a CA in the client's CA file (UnknownIssuer)"
        );
        let name = describe(
            "invalid peer certificate: certificate not valid for name \"localhost\"; \
             certificate is only valid for DnsName(\"wrong.example\") or IpAddress(10.0.0.1)",
        )
        .unwrap();
        assert_eq!(
            name,
            "its certificate is not valid for name \"localhost\", the name the client reaches \
             it by (the certificate is for wrong.example, 10.0.0.1)"
        );
        assert!(
            describe("received fatal alert: CertificateRequired")
                .unwrap()
                .contains("requires a client certificate")
        );
        assert_eq!(describe("connection refused"), None);
    }

    #[test]
    fn names_the_file_that_is_wrong() {
        let config = |files: &TlsFiles| match Tls::load(files) {
            Err(Error::Config(message)) => message,
            other => panic!("expected a config error, got {other:?}"),
        };
        let missing = TlsFiles {
            ca: Some("/nonexistent/ca.pem".into()),
            identity: None,
        };
        assert!(
            config(&missing).starts_with("cannot read the CA file /nonexistent/ca.pem"),
            "{}",
            config(&missing)
        );
        let text = std::env::temp_dir().join(format!("paxos-client-{}.txt", std::process::id()));
        std::fs::write(&text, "not a certificate").unwrap();
        let not_pem = TlsFiles {
            ca: Some(text.clone()),
            identity: None,
        };
        let message = config(&not_pem);
        std::fs::remove_file(&text).unwrap();
        assert!(message.contains("no PEM certificate"), "{message}");
    }
}
