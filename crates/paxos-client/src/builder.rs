//! The client's settings and their checks, written once: each twin's `ClientBuilder` is a
//! [`ClientBuilder`] of its own `Client`, and only its `build` differs.

use std::fmt;
use std::marker::PhantomData;
use std::path::Path;
use std::time::Duration;

use crate::error::Error;
use crate::tls::TlsFiles;

/// How long one call may take, all attempts and pauses included, by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one attempt on one member may wait for its answer, by default: longer than the
/// servers' default `request_timeout_ms` (5 s), so that a member which holds a command through
/// an election answers (with the command's answer, or its `503`) before the client gives up on
/// it.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(6);
/// How long a connection may take to open, by default: a member that does not accept within a
/// second on a LAN is down, and the request never left, so the next member may have it at once.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The settings of a client, checked when it is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    /// Each member's `host:port`, without its scheme.
    pub servers: Vec<String>,
    /// `http` or `https`: every member of a cluster serves one or the other.
    pub scheme: &'static str,
    pub tls: TlsFiles,
    pub timeout: Duration,
    pub attempt_timeout: Duration,
    pub connect_timeout: Duration,
    pub exactly_once: bool,
}

/// Builds a `Client` of either twin (`paxos_client::ClientBuilder` for the async one,
/// `paxos_client::blocking::ClientBuilder` for the blocking one); the setters are the same, and
/// every mistake is reported by `build` as [`Error::Config`].
pub struct ClientBuilder<C> {
    settings: Settings,
    /// The first mistake a setter found (a config file that cannot be read), reported by
    /// `build` so that the setters chain.
    error: Option<Error>,
    client: PhantomData<fn() -> C>,
}

impl<C> fmt::Debug for ClientBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("settings", &self.settings)
            .field("error", &self.error)
            .finish()
    }
}

impl<C> Default for ClientBuilder<C> {
    fn default() -> Self {
        ClientBuilder {
            settings: Settings {
                servers: Vec::new(),
                scheme: "http",
                tls: TlsFiles::default(),
                timeout: DEFAULT_TIMEOUT,
                attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                exactly_once: true,
            },
            error: None,
            client: PhantomData,
        }
    }
}

impl<C> ClientBuilder<C> {
    /// The members' `host:port` addresses (a host name, an IPv4 address or a bracketed IPv6
    /// address), tried in this order, as the cluster's `servers` or any address that reaches
    /// them; `https://host:port` for a cluster with TLS (or `host:port` and a [`ca_file`]).
    /// Replaces any list given before.
    ///
    /// [`ca_file`]: ClientBuilder::ca_file
    pub fn servers<I, S>(mut self, servers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.servers = servers.into_iter().map(Into::into).collect();
        self
    }

    /// Takes the `servers` list from a cluster config file (the JSON file the members run
    /// with; its other fields are not the client's business).
    pub fn config_file(mut self, path: impl AsRef<Path>) -> Self {
        match servers_from_config_file(path.as_ref()) {
            Ok(servers) => self.settings.servers = servers,
            Err(e) => self.error = self.error.or(Some(e)),
        }
        self
    }

    /// The PEM file of the CA certificates that the members' certificates must chain to (the
    /// cluster's `tls.ca`), trusted alone: no system or web roots. It makes members listed as
    /// `host:port` `https://`; an `https://` member without it is an [`Error::Config`] at
    /// `build`, which reads the file.
    pub fn ca_file(mut self, path: impl AsRef<Path>) -> Self {
        self.settings.tls.ca = Some(path.as_ref().to_owned());
        self
    }

    /// A client certificate (a PEM chain, leaf first) and its private key (PEM), presented to
    /// members that ask for one: a cluster with `tls.require_client_cert` needs one signed by
    /// its `tls.ca`. `build` reads both files.
    pub fn client_cert_files(mut self, cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Self {
        self.settings.tls.identity = Some((cert.as_ref().to_owned(), key.as_ref().to_owned()));
        self
    }

    /// How long one call may take in all: every attempt on every member and the pauses
    /// between rounds of them. A watch gets its `wait` on top. Default: 10 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self
    }

    /// How long one attempt on one member may wait for its answer before the next member is
    /// tried. Keep it above the cluster's `request_timeout_ms`, or a member waiting out an
    /// election is given up on. Default: 6 s.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.settings.attempt_timeout = timeout;
        self
    }

    /// How long a connection to a member may take to open. Default: 1 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// Whether writes carry a `client_id` and `seq` (default: yes). With them, a write whose
    /// answer was lost is sent again, to the next member, and applies once. Without them, a
    /// write whose attempt may have reached the cluster is not sent again: the call ends with
    /// [`Error::OutcomeUnknown`] at once, and a failure that says the command was not run
    /// still moves on to the next member. The cluster keeps every client's latest answer for
    /// good, so a program that makes many short-lived clients (one per command, say) leaves
    /// that many entries in the store.
    pub fn exactly_once(mut self, exactly_once: bool) -> Self {
        self.settings.exactly_once = exactly_once;
        self
    }

    /// The settings, checked: for the twins' `build`.
    pub(crate) fn checked(self) -> Result<Settings, Error> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let mut settings = self.settings;
        if settings.servers.is_empty() {
            return Err(Error::Config(
                "no servers: give every member's host:port".to_owned(),
            ));
        }
        let mut addresses: Vec<String> = Vec::new();
        let mut schemes: Vec<(&'static str, &str)> = Vec::new();
        for server in &settings.servers {
            let (scheme, address) = split_scheme(server)
                .and_then(|(scheme, address)| check_address(address).map(|()| (scheme, address)))
                .map_err(|e| Error::Config(format!("server `{server}`: {e}")))?;
            if addresses.iter().any(|a| a == address) {
                return Err(Error::Config(format!("server `{server}` is listed twice")));
            }
            addresses.push(address.to_owned());
            schemes.extend(scheme.map(|scheme| (scheme, server.as_str())));
        }
        settings.scheme = scheme(&schemes, &settings.tls)?;
        settings.servers = addresses;
        for (name, value) in [
            ("timeout", settings.timeout),
            ("attempt timeout", settings.attempt_timeout),
            ("connect timeout", settings.connect_timeout),
        ] {
            if value.is_zero() {
                return Err(Error::Config(format!("the {name} is zero")));
            }
        }
        Ok(settings)
    }
}

/// A server's scheme when it is written with one, and its `host:port`.
fn split_scheme(server: &str) -> Result<(Option<&'static str>, &str), String> {
    if let Some(address) = server.strip_prefix("https://") {
        return Ok((Some("https"), address));
    }
    if let Some(address) = server.strip_prefix("http://") {
        return Ok((Some("http"), address));
    }
    if server.contains("://") {
        return Err("the scheme may be http:// or https:// only".to_owned());
    }
    Ok((None, server))
}

/// The one scheme of every member: as the servers are written, else `https` with a CA file and
/// `http` without. A CA file or client certificate for plain HTTP is refused rather than ignored,
/// and so is HTTPS without a CA: there are no other roots to trust.
fn scheme(written: &[(&'static str, &str)], tls: &TlsFiles) -> Result<&'static str, Error> {
    if let Some((first, server)) = written.first()
        && let Some((other, differs)) = written.iter().find(|(scheme, _)| scheme != first)
    {
        return Err(Error::Config(format!(
            "server `{server}` is {first}:// and server `{differs}` is {other}://: a cluster \
             serves one or the other"
        )));
    }
    let scheme = match written.first() {
        Some((scheme, _)) => *scheme,
        None if tls.ca.is_some() => "https",
        None => "http",
    };
    match (scheme, &tls.ca, &tls.identity) {
        ("https", None, _) => Err(Error::Config(
            "the servers are https:// but no CA file is given to verify their certificates \
             against (`ca_file`; `--ca` or PAXOS_CA for the paxos tool)"
                .to_owned(),
        )),
        ("http", Some(_), _) | ("http", _, Some(_)) => Err(Error::Config(
            "the servers are http://, so a CA file or client certificate has no use: write \
             them https:// (or leave the scheme out)"
                .to_owned(),
        )),
        _ => Ok(scheme),
    }
}

/// Checks `host:port` as the servers' config does: a host name, an IPv4 address or a bracketed
/// IPv6 address, and a port from 1 to 65535. A path is refused rather than mangled into a URL.
fn check_address(address: &str) -> Result<(), String> {
    if address.contains('/') {
        return Err("expected HOST:PORT, without a path".to_owned());
    }
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err("expected HOST:PORT".to_owned());
    };
    if host.is_empty() {
        return Err("expected HOST:PORT, the host is missing".to_owned());
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err("an IPv6 host must be in brackets, as in [::1]:7001".to_owned());
    }
    let bad_char = |c: char| !(c.is_ascii_alphanumeric() || ".-_[]:".contains(c));
    if let Some(c) = host.chars().find(|&c| bad_char(c)) {
        return Err(format!("the host may not hold `{c}`"));
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("the port `{port}` is not a number from 1 to 65535")),
        Ok(_) => Ok(()),
    }
}

/// The `servers` list of a cluster config file.
pub(crate) fn servers_from_config_file(path: &Path) -> Result<Vec<String>, Error> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read the config file {shown}: {e}")))?;
    servers_from_config(&text).map_err(|e| Error::Config(format!("config file {shown}: {e}")))
}

fn servers_from_config(text: &str) -> Result<Vec<String>, String> {
    #[derive(serde::Deserialize)]
    struct Servers {
        servers: Vec<String>,
    }
    serde_json::from_str::<Servers>(text)
        .map(|config| config.servers)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Builder = ClientBuilder<()>;

    fn config_error(builder: Builder) -> String {
        match builder.checked() {
            Err(Error::Config(message)) => message,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn takes_what_the_servers_config_takes() {
        for good in [
            "127.0.0.1:7001",
            "localhost:1",
            "[::1]:65535",
            "db-1.internal:7001",
        ] {
            let settings = Builder::default().servers([good]).checked().unwrap();
            assert_eq!(settings.servers, [good]);
        }
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        assert_eq!(
            config_error(Builder::default()),
            "no servers: give every member's host:port"
        );
        let bad = |address: &str| config_error(Builder::default().servers([address]));
        assert_eq!(bad("localhost"), "server `localhost`: expected HOST:PORT");
        assert!(bad(":7001").contains("the host is missing"));
        assert!(bad("h:0").contains("not a number from 1 to 65535"));
        assert!(bad("h:x").contains("not a number from 1 to 65535"));
        assert!(bad("::1:7001").contains("brackets"));
        assert!(bad("h:1/x").contains("without a path"));
        assert!(bad("ftp://h:1").contains("http:// or https:// only"));
        assert!(bad("h h:1").contains("may not hold ` `"));
        assert_eq!(
            config_error(Builder::default().servers(["a:1", "b:1", "a:1"])),
            "server `a:1` is listed twice"
        );
        assert_eq!(
            config_error(Builder::default().servers(["a:1"]).timeout(Duration::ZERO)),
            "the timeout is zero"
        );
    }

    #[test]
    fn reads_the_servers_of_a_cluster_config() {
        let text = r#"{"servers": ["a:1", "b:2"], "secret": "s", "heartbeat_ms": 5}"#;
        assert_eq!(servers_from_config(text).unwrap(), ["a:1", "b:2"]);
        assert!(
            servers_from_config(r#"{"secret": "s"}"#)
                .unwrap_err()
                .contains("missing field `servers`")
        );
        let missing = config_error(Builder::default().config_file("/nonexistent/cluster.json"));
        assert!(
            missing.starts_with("cannot read the config file /nonexistent/cluster.json"),
            "{missing}"
        );
    }

    #[test]
    fn takes_one_scheme_for_every_member() {
        let plain = Builder::default()
            .servers(["a:1", "http://b:1"])
            .checked()
            .unwrap();
        assert_eq!(
            (plain.scheme, plain.servers),
            ("http", vec!["a:1".into(), "b:1".into()])
        );
        let tls = Builder::default().servers(["a:1", "b:1"]).ca_file("ca.pem");
        assert_eq!(tls.checked().unwrap().scheme, "https");
        let written = Builder::default()
            .servers(["https://a:1"])
            .ca_file("ca.pem")
            .checked()
            .unwrap();
        assert_eq!(
            (written.scheme, written.servers),
            ("https", vec!["a:1".into()])
        );
        assert!(
            config_error(Builder::default().servers(["https://a:1"]))
                .contains("no CA file is given")
        );
        assert!(
            config_error(Builder::default().servers(["http://a:1", "https://b:1"]))
                .contains("one or the other")
        );
        assert!(
            config_error(Builder::default().servers(["http://a:1"]).ca_file("ca.pem"))
                .contains("has no use")
        );
        assert_eq!(
            config_error(Builder::default().servers(["a:1", "https://a:1"])),
            "server `https://a:1` is listed twice"
        );
    }
}
