//! The blocking client, on ureq and the calling thread: no async runtime.
//!
//! It mirrors the async client of the crate root item for item (`just diff client`): the same
//! names, types and errors; each call blocks where the other awaits.
//!
//! ```no_run
//! use paxos_client::blocking::Client;
//!
//! let mut client = Client::new(["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"])?;
//! client.append("log", "started")?;
//! let read = client.get("log")?;
//! println!("{:?} as of slot {}", read.value, read.index);
//! # Ok::<(), paxos_client::Error>(())
//! ```

use std::thread;
use std::time::{Duration, Instant};

use crate::answer::{Cas, Done, MemberStatus, ReadOptions, Status, Watch};
use crate::call::{Call, Calls, MAX_ANSWER, Outgoing, Reply, Step, USER_AGENT, describe};
use crate::error::{Error, Failure};
use crate::tls::{self, Tls};

/// Builds a blocking [`Client`]: `Client::builder().servers([...]).timeout(...).build()`.
pub type ClientBuilder = crate::builder::ClientBuilder<Client>;

impl ClientBuilder {
    /// The client, or [`Error::Config`] for the first thing wrong with the settings.
    pub fn build(self) -> Result<Client, Error> {
        let settings = self.checked()?;
        let tls = Tls::load(&settings.tls)?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(settings.connect_timeout))
            // A connection per attempt (see `Client`).
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .proxy(None)
            .user_agent(USER_AGENT)
            .tls_config(tls.ureq())
            .build();
        Ok(Client {
            http: ureq::Agent::new_with_config(config),
            calls: Calls::new(settings),
        })
    }
}

/// A client of one cluster: one exactly-once session (a random `client_id`, and a `seq` per
/// write), and the members in turn.
///
/// Each attempt opens a connection of its own, so that a connection refused means the member
/// never had the command: a request sent on a kept-alive connection that its member has closed,
/// or died on, fails the way a member dying with the command does, and every such failure would
/// leave a write's outcome unknown. On a LAN a connection costs far less than a write's fsync.
///
/// Writes take `&mut self` because the cluster keeps one latest `seq` per client: one client
/// has one write in flight. For writes in parallel, give each thread its own client
/// ([`Client::fork`]).
#[derive(Debug)]
pub struct Client {
    http: ureq::Agent,
    calls: Calls,
}

impl Client {
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client of these members with the default settings.
    pub fn new<I, S>(servers: I) -> Result<Client, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Client::builder().servers(servers).build()
    }

    /// This client's `client_id`, random and its own.
    pub fn client_id(&self) -> &str {
        &self.calls.session.client_id
    }

    /// The members, in the order they are tried.
    pub fn servers(&self) -> &[String] {
        &self.calls.settings.servers
    }

    /// Another client of the same members with the same settings, and a session of its own:
    /// for another thread's writes.
    pub fn fork(&self) -> Client {
        Client {
            http: self.http.clone(),
            calls: self.calls.fork(),
        }
    }

    /// Reads a key, linearizably.
    pub fn get(&self, key: &str) -> Result<Done, Error> {
        self.get_with(key, &ReadOptions::default())
    }

    /// Reads a key with options.
    pub fn get_with(&self, key: &str, options: &ReadOptions) -> Result<Done, Error> {
        self.run(self.calls.get(key, options))
    }

    /// Sets a key to a string.
    pub fn put(&mut self, key: &str, value: &str) -> Result<Done, Error> {
        let call = self.calls.put(key, value);
        self.run(call)
    }

    /// Removes a key; removing an absent key succeeds.
    pub fn delete(&mut self, key: &str) -> Result<Done, Error> {
        let call = self.calls.delete(key);
        self.run(call)
    }

    /// Sets `key` to `value` if it holds `expected` (`None`: if it is absent).
    pub fn cas(&mut self, key: &str, expected: Option<&str>, value: &str) -> Result<Cas, Error> {
        let call = self.calls.cas(key, expected, value);
        self.run(call)
    }

    /// Appends to the list at `key` (an absent key is an empty list); answers the whole list.
    pub fn append(&mut self, key: &str, value: &str) -> Result<Done, Error> {
        let call = self.calls.append(key, value);
        self.run(call)
    }

    /// Waits up to `wait` for `key` to change after slot `after` (its modification index, as
    /// `Done::modified` gives it), on any member: at once if it already has.
    pub fn watch(&self, key: &str, after: u64, wait: Duration) -> Result<Watch, Error> {
        self.run(self.calls.watch(key, after, wait))
    }

    /// The `/status` of the first member that answers.
    pub fn status(&self) -> Result<Status, Error> {
        self.run(self.calls.status())
    }

    /// Every member's `/status`, or why it gave none: one attempt each, in turn.
    pub fn members(&self) -> Vec<MemberStatus> {
        let mut members = Vec::new();
        for member in 0..self.servers().len() {
            members.push(MemberStatus {
                server: self.servers()[member].clone(),
                status: self.run(self.calls.status_of(member)),
            });
        }
        members
    }

    /// Drives one call: each attempt blocks this thread, and so does each pause.
    fn run<T>(&self, mut call: Call<T>) -> Result<T, Error> {
        loop {
            match call.step(Instant::now()) {
                Step::Send(outgoing) => {
                    let outcome = self.send(outgoing);
                    call.handle(outcome);
                }
                Step::Pause(pause) => thread::sleep(pause),
                Step::Finish(result) => {
                    self.calls.finished(&call);
                    return result;
                }
            }
        }
    }

    /// One HTTP exchange; the answer whatever its status.
    fn send(&self, outgoing: Outgoing) -> Result<Reply, Failure> {
        let sent = match outgoing.body {
            Some(body) => self
                .http
                .post(&outgoing.url)
                .header("Content-Type", "application/json")
                .config()
                .timeout_global(Some(outgoing.timeout))
                .build()
                .send(&body[..]),
            None => self
                .http
                .get(&outgoing.url)
                .config()
                .timeout_global(Some(outgoing.timeout))
                .build()
                .call(),
        };
        let mut response = sent.map_err(|e| failure(&e))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(|e| Failure::NoAnswer(describe(&e)))?;
        Ok(Reply { status, body })
    }
}

/// Whether a request that got no answer may have reached the member: not if it could not
/// connect.
fn failure(error: &ureq::Error) -> Failure {
    use std::io::ErrorKind;
    if let Some(why) = tls::refused(error) {
        return Failure::Tls(why);
    }
    let unsent = match error {
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => true,
        ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => true,
        ureq::Error::Io(e) => matches!(
            e.kind(),
            ErrorKind::ConnectionRefused
                | ErrorKind::AddrNotAvailable
                | ErrorKind::NetworkUnreachable
                | ErrorKind::HostUnreachable
        ),
        _ => false,
    };
    match unsent {
        true => Failure::Unreachable(describe(error)),
        false => Failure::NoAnswer(describe(error)),
    }
}
