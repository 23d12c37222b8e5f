//! TLS for the benchmark: certificates made at run time (the suite's `paxos_tests::tls`), the
//! members' `tls` config, and the load generator's client config built from the same files by
//! the servers' own loader, so it trusts and presents exactly what a member would.

use std::sync::Arc;

use paxos_host::config::TlsFiles;
use paxos_tests::ClusterBuilder;
use paxos_tests::tempdir::TempDir;
use paxos_tests::tls::Certs;
use rustls::ClientConfig;

/// Members serve HTTPS to clients and to each other, with mutual TLS as a deployment that
/// turns TLS on would run it (`docs/deployment.md`): every handshake checks both certificates.
pub const REQUIRE_CLIENT_CERT: bool = true;

/// A CA and a member certificate for `127.0.0.1`, and the client config that trusts the CA and
/// presents the member certificate.
#[derive(Debug)]
pub struct BenchTls {
    pub certs: Certs,
    pub client: Arc<ClientConfig>,
    // Dropped last: the PEM files live here while members read them at start.
    _dir: TempDir,
}

impl BenchTls {
    pub fn make() -> Result<BenchTls, String> {
        let dir = TempDir::new("bench-tls");
        let certs = Certs::make(dir.path());
        let files = TlsFiles {
            cert: certs.member.cert.clone(),
            key: certs.member.key.clone(),
            ca: certs.ca.clone(),
            require_client_cert: REQUIRE_CLIENT_CERT,
        };
        let client = paxos_host::tls::Tls::load(&files)?.client;
        Ok(BenchTls {
            certs,
            client,
            _dir: dir,
        })
    }

    /// `builder` with every member on HTTPS, to clients and between members.
    pub fn apply(&self, builder: ClusterBuilder) -> ClusterBuilder {
        builder.tls(&self.certs, &self.certs.member, REQUIRE_CLIENT_CERT)
    }
}
