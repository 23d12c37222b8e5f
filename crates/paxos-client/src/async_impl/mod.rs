//! The async client, on reqwest and tokio: the crate root re-exports it.
//!
//! It mirrors the blocking client of `blocking` item for item (`just diff client`): the same
//! names, types and errors; each call awaits where the other blocks. It needs a tokio runtime
//! with its time and I/O drivers (`enable_all`).
//!
//! ```no_run
//! # async fn example() -> Result<(), paxos_client::Error> {
//! use paxos_client::Client;
//!
//! let mut client = Client::new(["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"])?;
//! client.append("log", "started").await?;
//! let read = client.get("log").await?;
//! println!("{:?} as of slot {}", read.value, read.index);
//! # Ok(())
//! # }
//! ```

use std::time::{Duration, Instant};

use crate::answer::{Cas, Done, MemberStatus, ReadOptions, Status, Watch};
use crate::call::{Call, Calls, MAX_ANSWER, Outgoing, Reply, Step, USER_AGENT, describe};
use crate::error::{Error, Failure};
use crate::tls::{self, Tls};

/// Builds an async [`Client`]: `Client::builder().servers([...]).timeout(...).build()`.
pub type ClientBuilder = crate::builder::ClientBuilder<Client>;

impl ClientBuilder {
    /// The client, or [`Error::Config`] for the first thing wrong with the settings.
    pub fn build(self) -> Result<Client, Error> {
        let settings = self.checked()?;
        let tls = Tls::load(&settings.tls)?;
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            // A connection per attempt (see `Client`).
            .pool_max_idle_per_host(0)
            .no_proxy()
            .user_agent(USER_AGENT)
            .tls_backend_preconfigured(tls.rustls())
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client {
            http,
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
/// has one write in flight. For writes in parallel, give each task its own client
/// ([`Client::fork`]).
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
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
    /// for another task's writes.
    pub fn fork(&self) -> Client {
        Client {
            http: self.http.clone(),
            calls: self.calls.fork(),
        }
    }

    /// Reads a key, linearizably.
    pub async fn get(&self, key: &str) -> Result<Done, Error> {
        self.get_with(key, &ReadOptions::default()).await
    }

    /// Reads a key with options.
    pub async fn get_with(&self, key: &str, options: &ReadOptions) -> Result<Done, Error> {
        self.run(self.calls.get(key, options)).await
    }

    /// Sets a key to a string.
    pub async fn put(&mut self, key: &str, value: &str) -> Result<Done, Error> {
        let call = self.calls.put(key, value);
        self.run(call).await
    }

    /// Removes a key; removing an absent key succeeds.
    pub async fn delete(&mut self, key: &str) -> Result<Done, Error> {
        let call = self.calls.delete(key);
        self.run(call).await
    }

    /// Sets `key` to `value` if it holds `expected` (`None`: if it is absent).
    pub async fn cas(
        &mut self,
        key: &str,
        expected: Option<&str>,
        value: &str,
    ) -> Result<Cas, Error> {
        let call = self.calls.cas(key, expected, value);
        self.run(call).await
    }

    /// Appends to the list at `key` (an absent key is an empty list); answers the whole list.
    pub async fn append(&mut self, key: &str, value: &str) -> Result<Done, Error> {
        let call = self.calls.append(key, value);
        self.run(call).await
    }

    /// Waits up to `wait` for `key` to change after slot `after` (its modification index, as
    /// `Done::modified` gives it), on any member: at once if it already has.
    pub async fn watch(&self, key: &str, after: u64, wait: Duration) -> Result<Watch, Error> {
        self.run(self.calls.watch(key, after, wait)).await
    }

    /// The `/status` of the first member that answers.
    pub async fn status(&self) -> Result<Status, Error> {
        self.run(self.calls.status()).await
    }

    /// Every member's `/status`, or why it gave none: one attempt each, in turn.
    pub async fn members(&self) -> Vec<MemberStatus> {
        let mut members = Vec::new();
        for member in 0..self.servers().len() {
            members.push(MemberStatus {
                server: self.servers()[member].clone(),
                status: self.run(self.calls.status_of(member)).await,
            });
        }
        members
    }

    /// Drives one call: each attempt and each pause is awaited.
    async fn run<T>(&self, mut call: Call<T>) -> Result<T, Error> {
        loop {
            match call.step(Instant::now()) {
                Step::Send(outgoing) => {
                    let outcome = self.send(outgoing).await;
                    call.handle(outcome);
                }
                Step::Pause(pause) => tokio::time::sleep(pause).await,
                Step::Finish(result) => {
                    self.calls.finished(&call);
                    return result;
                }
            }
        }
    }

    /// One HTTP exchange; the answer whatever its status.
    async fn send(&self, outgoing: Outgoing) -> Result<Reply, Failure> {
        let sent = match outgoing.body {
            Some(body) => self
                .http
                .post(&outgoing.url)
                .header("Content-Type", "application/json")
                .timeout(outgoing.timeout)
                .body(body)
                .send(),
            None => self
                .http
                .get(&outgoing.url)
                .timeout(outgoing.timeout)
                .send(),
        };
        let mut response = sent.await.map_err(|e| failure(&e))?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Failure::NoAnswer(describe(&e)))?
        {
            body.extend_from_slice(&chunk);
            if body.len() as u64 > MAX_ANSWER {
                return Err(Failure::NoAnswer(format!(
                    "the answer is over {MAX_ANSWER} bytes"
                )));
            }
        }
        Ok(Reply { status, body })
    }
}

/// Whether a request that got no answer may have reached the member: not if it could not
/// connect.
fn failure(error: &reqwest::Error) -> Failure {
    if let Some(why) = tls::refused(error) {
        return Failure::Tls(why);
    }
    let unsent = error.is_connect();
    match unsent {
        true => Failure::Unreachable(describe(error)),
        false => Failure::NoAnswer(describe(error)),
    }
}
