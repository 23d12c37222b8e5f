//! Certificates for the TLS scenarios, made at run time with rcgen into a directory: a CA, a
//! member certificate it signs for `127.0.0.1` and `localhost` (every member on loopback uses
//! the same one), and wrong ones: signed by another CA, expired, or for another name. Members on
//! separate hosts each get one of their own, for the names they are reached by
//! ([`Certs::member_for`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use serde_json::{Value as Json, json};

/// A certificate and its key, as PEM files.
#[derive(Clone, Debug)]
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The files [`Certs::make`] wrote.
#[derive(Clone, Debug)]
pub struct Certs {
    /// The suite's CA, which members verify each other against.
    pub ca: PathBuf,
    /// Another CA, which signs `stranger`.
    pub other_ca: PathBuf,
    /// Signed by `ca` for `127.0.0.1` and `localhost`.
    pub member: Pair,
    /// Signed by another CA, for the same names.
    pub stranger: Pair,
    /// Signed by `ca` for the same names, valid in the year 2000 only.
    pub expired: Pair,
    /// Signed by `ca` for `wrong.example` only.
    pub wrong_name: Pair,
    /// The CA's certificate and key, kept to sign members' certificates later.
    authority: Arc<CertifiedIssuer<'static, KeyPair>>,
    /// Where the files are.
    dir: PathBuf,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::new()).expect("no names");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().expect("a key pair");
    CertifiedIssuer::self_signed(params, key).expect("a CA certificate")
}

fn leaf(
    dir: &Path,
    name: &str,
    names: &[&str],
    issuer: &CertifiedIssuer<'static, KeyPair>,
    edit: impl FnOnce(&mut CertificateParams),
) -> Pair {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names).expect("valid names");
    params.distinguished_name.push(DnType::CommonName, name);
    edit(&mut params);
    let key = KeyPair::generate().expect("a key pair");
    let cert = params
        .signed_by(&key, issuer)
        .expect("a signed certificate");
    let pair = Pair {
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
    };
    write(&pair.cert, &cert.pem());
    write(&pair.key, &key.serialize_pem());
    pair
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

const LOOPBACK: &[&str] = &["127.0.0.1", "localhost"];

impl Certs {
    /// Writes every certificate and key into `dir`.
    pub fn make(dir: &Path) -> Certs {
        let authority = ca("Twin Paxos test CA");
        let other = ca("Another CA");
        let ca = dir.join("ca.pem");
        write(&ca, &authority.pem());
        let other_ca = dir.join("other-ca.pem");
        write(&other_ca, &other.pem());
        let member = leaf(dir, "member", LOOPBACK, &authority, |_| {});
        let stranger = leaf(dir, "stranger", LOOPBACK, &other, |_| {});
        let expired = leaf(dir, "expired", LOOPBACK, &authority, |params| {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        });
        let wrong_name = leaf(dir, "wrong-name", &["wrong.example"], &authority, |_| {});
        Certs {
            ca,
            other_ca,
            member,
            stranger,
            expired,
            wrong_name,
            authority: Arc::new(authority),
            dir: dir.to_owned(),
        }
    }

    /// A member certificate signed by `ca` for `names` (host names or IP addresses), written as
    /// `<file>.pem` and `<file>.key`: a member on a host of its own is reached by names of its
    /// own, and its certificate must carry the one each peer uses.
    pub fn member_for(&self, file: &str, names: &[&str]) -> Pair {
        leaf(&self.dir, file, names, &self.authority, |_| {})
    }

    /// The config's `tls` object for a member serving `pair`.
    pub fn config(&self, pair: &Pair, require_client_cert: bool) -> Json {
        json!({
            "cert": pair.cert,
            "key": pair.key,
            "ca": self.ca,
            "require_client_cert": require_client_cert,
        })
    }
}
