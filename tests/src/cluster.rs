//! A cluster of real member processes on loopback.
//!
//! [`Cluster`] owns a temporary directory holding the config file, one data dir per member and one
//! log file per member (stdout and stderr of every run, appended). Dropping it kills every member
//! still running, paused ones included; when the test is failing, it first prints every member's
//! log.
//!
//! A member may also get a config file of its own ([`Cluster::set_member_config`]), with the same
//! `servers` but routes of its own: the nemesis runner sends each member's peer traffic through
//! fault proxies that way.
//!
//! Members may also run on the hosts of a [`Network`] ([`ClusterBuilder::on_network`]): each in
//! its host's network namespace (`ip netns exec`), listening on `0.0.0.0`, spelled in the config
//! however the scenario likes, and reached by the harness from the network's client host.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::config::Config;
use crate::http::{self, Client, ClientTls, Response};
use crate::netns::{self, Netns, Network};
use crate::ports::free_port_on;
use crate::runtime::Runtime;
use crate::tempdir::TempDir;
use crate::tls::{Certs, Pair};
use crate::wait_until;

/// How long a cluster may take to elect a leader before a scenario gives up.
pub const ELECTION_TIMEOUT: Duration = Duration::from_secs(20);

/// One member: its config entry, where it listens, its files and its process.
#[derive(Debug)]
pub struct Member {
    /// The member's spelling in the config's `servers`, e.g. `localhost:41234`.
    pub entry: String,
    pub listen: SocketAddr,
    /// Where the harness reaches the member: `listen`, or for a member on a [`Network`] host its
    /// front address (a scenario that moves the host updates it).
    pub reach: SocketAddr,
    /// The network namespace the member runs in, when it runs on a host of a [`Network`].
    pub netns: Option<String>,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
    starts: u32,
    /// This member's own config and its file, when it does not use the shared one.
    own_config: Option<(Config, PathBuf)>,
    /// Whether the harness stopped the process with SIGSTOP and has not resumed it.
    paused: bool,
}

/// Describes a cluster before it exists.
#[derive(Debug)]
pub struct ClusterBuilder {
    runtime: Runtime,
    hosts: Vec<String>,
    secret: Option<String>,
    tuning: Vec<(String, Json)>,
    env: Vec<(String, String)>,
    launcher: Vec<String>,
    /// Where the cluster's files go when they must outlive it; a temporary directory otherwise.
    kept_dir: Option<PathBuf>,
    /// Members on hosts of a network, and the client host's namespace.
    placed: Option<(Vec<Placement>, Arc<Netns>)>,
    /// What the harness's clients trust and present, for members that serve HTTPS.
    client_tls: Option<ClientTls>,
}

/// A member on a host of a [`Network`]: its config entry, its host's namespace and where the
/// harness reaches it.
#[derive(Debug)]
struct Placement {
    entry: String,
    ns: String,
    front: SocketAddr,
}

impl ClusterBuilder {
    /// Members spelled with these host names, one member per host (`localhost` and `127.x.y.z`
    /// only: members listen on the address the name stands for).
    pub fn hosts(mut self, hosts: &[&str]) -> Self {
        self.hosts = hosts.iter().map(|h| (*h).to_owned()).collect();
        self
    }

    /// `n` members, all spelled `127.0.0.1`.
    pub fn size(mut self, n: usize) -> Self {
        self.hosts = vec!["127.0.0.1".to_owned(); n];
        self
    }

    /// Sets an environment variable for every member, e.g. the benchmark's `PAXOS_VARIANT`.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Starts every member through `launcher`, a command and its arguments to which the
    /// member's own command line is appended: `["taskset", "-c", "0"]` pins the members to CPU
    /// 0 (the benchmark's `--cpus`). The launcher should `exec` the member, as `taskset` does,
    /// so that the harness's process id is the member's.
    pub fn launcher(mut self, command: &[&str]) -> Self {
        self.launcher = command.iter().map(|c| (*c).to_owned()).collect();
        self
    }

    /// Serves HTTPS: every member gets the config's `tls` object for `pair` (signed by
    /// `certs.ca`), and the harness's client speaks HTTPS trusting `certs.ca` and presents
    /// `certs.member` when asked for a client certificate.
    pub fn tls(mut self, certs: &Certs, pair: &Pair, require_client_cert: bool) -> Self {
        self.tuning
            .push(("tls".to_owned(), certs.config(pair, require_client_cert)));
        self.client_tls = Some(ClientTls {
            ca: certs.ca.clone(),
            identity: Some(certs.member.clone()),
        });
        self
    }

    pub fn secret(mut self, secret: &str) -> Self {
        self.secret = Some(secret.to_owned());
        self
    }

    /// Sets a tuning field over the suite's fast defaults ([`Config::fast`]).
    pub fn tuning(mut self, field: &str, value: impl Into<Json>) -> Self {
        self.tuning.push((field.to_owned(), value.into()));
        self
    }

    /// One member per entry on the hosts of `network`, member `i` on host `i` and spelled
    /// `entries[i]` in the config (any of [`netns::Host::spellings`], or anything else), each listening on
    /// `0.0.0.0:`[`netns::PORT`] in its host's namespace. The harness's requests go from the
    /// client host to each member's front address. Give such a cluster a secret: its addresses
    /// are not loopback.
    pub fn on_network(mut self, network: &Network, entries: &[String]) -> Self {
        assert!(
            entries.len() <= network.hosts.len(),
            "at most one member per host"
        );
        let placed = network
            .hosts
            .iter()
            .zip(entries)
            .map(|(host, entry)| Placement {
                entry: entry.clone(),
                ns: host.ns.clone(),
                front: host.front(),
            })
            .collect();
        self.placed = Some((placed, network.client_netns()));
        self
    }

    /// Puts the cluster's files (configs, data dirs, logs) in `dir`, created if missing and kept
    /// after the cluster is dropped, instead of a temporary directory.
    pub fn in_dir(mut self, dir: &Path) -> Self {
        self.kept_dir = Some(dir.to_owned());
        self
    }

    /// Writes the config and prepares the members; starts none.
    pub fn build(self) -> Cluster {
        let dir = match &self.kept_dir {
            Some(path) => TempDir::kept(path),
            None => TempDir::new(self.runtime.name()),
        };
        let mut members = Vec::new();
        let (placed, client_netns) = match self.placed {
            Some((placed, netns)) => (placed, Some(netns)),
            None => (Vec::new(), None),
        };
        for (i, Placement { entry, ns, front }) in placed.into_iter().enumerate() {
            members.push(Member {
                entry,
                listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, netns::PORT)),
                reach: front,
                netns: Some(ns),
                data_dir: dir.path().join(format!("member-{i}")),
                log: dir.path().join(format!("member-{i}.log")),
                child: None,
                starts: 0,
                own_config: None,
                paused: false,
            });
        }
        let hosts = if client_netns.is_some() {
            &[][..]
        } else {
            &self.hosts[..]
        };
        for (i, host) in hosts.iter().enumerate() {
            let ip: Ipv4Addr = match host.as_str() {
                "localhost" => Ipv4Addr::LOCALHOST,
                ip => ip.parse().expect("hosts are localhost or 127.x.y.z"),
            };
            let port = free_port_on(&[ip]);
            let data_dir = dir.path().join(format!("member-{i}"));
            let listen = SocketAddr::from((ip, port));
            members.push(Member {
                entry: format!("{host}:{port}"),
                listen,
                reach: listen,
                netns: None,
                data_dir,
                log: dir.path().join(format!("member-{i}.log")),
                child: None,
                starts: 0,
                own_config: None,
                paused: false,
            });
        }
        let mut config = Config::fast(members.iter().map(|m| m.entry.clone()).collect());
        config.secret = self.secret;
        for (field, value) in self.tuning {
            config = config.set(&field, value);
        }
        let config_path = dir.path().join("cluster.json");
        config.write(&config_path);
        Cluster {
            runtime: self.runtime,
            config,
            config_path,
            members,
            env: self.env,
            client: Client::with_tls(http::DEFAULT_TIMEOUT, self.client_tls.as_ref())
                .with_netns(client_netns.clone()),
            client_tls: self.client_tls,
            client_netns,
            launcher: self.launcher,
            dir,
        }
    }

    /// Builds the cluster, starts every member and waits until they agree on a leader.
    pub fn start(self) -> Cluster {
        let mut cluster = self.build();
        cluster.start_all();
        cluster.wait_for_leader();
        cluster
    }
}

/// A cluster of member processes. See the module docs.
#[derive(Debug)]
pub struct Cluster {
    pub runtime: Runtime,
    pub config: Config,
    pub config_path: PathBuf,
    pub members: Vec<Member>,
    pub client: Client,
    /// Environment variables every member starts with.
    env: Vec<(String, String)>,
    /// The namespace the harness's clients send from, for members on a [`Network`].
    client_netns: Option<Arc<Netns>>,
    /// What the harness's clients trust and present, when the members serve HTTPS.
    client_tls: Option<ClientTls>,
    /// The command every member is started through, if any (see [`ClusterBuilder::launcher`]).
    launcher: Vec<String>,
    // Dropped last: the members' files live here.
    dir: TempDir,
}

impl Cluster {
    /// Three members on 127.0.0.1 by default.
    pub fn builder(runtime: Runtime) -> ClusterBuilder {
        ClusterBuilder {
            runtime,
            hosts: vec!["127.0.0.1".to_owned(); 3],
            secret: None,
            tuning: Vec::new(),
            env: Vec::new(),
            launcher: Vec::new(),
            kept_dir: None,
            placed: None,
            client_tls: None,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A client with `timeout` that reaches the members from where the harness does (the client
    /// host of their network, if they are on one).
    pub fn new_client(&self, timeout: Duration) -> Client {
        Client::with_tls(timeout, self.client_tls.as_ref()).with_netns(self.client_netns.clone())
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Gives member `i` a config file of its own, `member-<i>.json`, used from its next start.
    /// Members refuse each other's messages unless their `servers` lists are the same.
    pub fn set_member_config(&mut self, i: usize, config: Config) {
        let path = self.dir().join(format!("member-{i}.json"));
        config.write(&path);
        self.members[i].own_config = Some((config, path));
    }

    /// The config member `i` starts with: its own, or the shared one.
    pub fn member_config(&self, i: usize) -> &Config {
        match &self.members[i].own_config {
            Some((config, _)) => config,
            None => &self.config,
        }
    }

    /// The member that member `i`'s `/status` names as leader, by its index.
    pub fn leader_of(&self, i: usize, status: &Json) -> Option<usize> {
        let leader = status["leader"].as_str()?;
        self.member_config(i)
            .servers
            .iter()
            .position(|entry| entry == leader)
    }

    /// Starts member `i` (again, after a kill: same listen address, config and data dir).
    pub fn start(&mut self, i: usize) {
        let binary = self.runtime.binary();
        let member = &mut self.members[i];
        assert!(member.child.is_none(), "member {i} is already running");
        member.starts += 1;
        let config_path = match &member.own_config {
            Some((_, path)) => path,
            None => &self.config_path,
        };
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&member.log)
            .expect("open the member's log");
        let args = [
            "--config".to_owned(),
            config_path.display().to_string(),
            "--listen".to_owned(),
            member.listen.to_string(),
            "--data-dir".to_owned(),
            member.data_dir.display().to_string(),
        ];
        let on_host = match &member.netns {
            Some(ns) => format!("ip netns exec {ns} "),
            None => String::new(),
        };
        let _ = writeln!(
            log,
            "=== start #{} of member {i} ({}): {on_host}{} {}",
            member.starts,
            member.entry,
            binary.display(),
            args.join(" ")
        );
        let stderr = log.try_clone().expect("clone the log handle");
        let mut command = match (&member.netns, self.launcher.split_first()) {
            // `ip netns exec` execs the server: the child's pid is the server's.
            (Some(ns), _) => Network::command(ns, &binary),
            (None, Some((program, launcher_args))) => {
                let mut command = Command::new(program);
                command.args(launcher_args).arg(&binary);
                command
            }
            (None, None) => Command::new(&binary),
        };
        let child = command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .env("RUST_BACKTRACE", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        member.child = Some(child);
    }

    /// Starts every member, in order.
    pub fn start_all(&mut self) {
        for i in 0..self.len() {
            self.start(i);
        }
    }

    /// Whether member `i` was started and has not exited.
    pub fn is_running(&mut self, i: usize) -> bool {
        match &mut self.members[i].child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The process id of member `i`, while the harness runs it (the benchmark reads `/proc`).
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].child.as_ref().map(Child::id)
    }

    /// `kill -9` member `i` and reaps it (SIGKILL ends a paused process too).
    pub fn kill(&mut self, i: usize) {
        self.members[i].paused = false;
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Pauses member `i` with SIGSTOP: it keeps its sockets but answers nothing until
    /// [`Cluster::resume`].
    pub fn pause(&mut self, i: usize) {
        let member = &mut self.members[i];
        let child = member
            .child
            .as_ref()
            .unwrap_or_else(|| panic!("member {i} is not running"));
        signal(child, "STOP");
        member.paused = true;
    }

    /// Resumes member `i` with SIGCONT after [`Cluster::pause`].
    pub fn resume(&mut self, i: usize) {
        let member = &mut self.members[i];
        if let Some(child) = &member.child {
            signal(child, "CONT");
        }
        member.paused = false;
    }

    /// Whether member `i` is paused by the harness.
    pub fn is_paused(&self, i: usize) -> bool {
        self.members[i].paused
    }

    /// Sends SIGTERM to member `i` and waits up to `timeout` for it to exit; panics (after
    /// killing it) if it does not.
    pub fn terminate(&mut self, i: usize, timeout: Duration) -> ExitStatus {
        self.stop_with(i, "TERM", timeout)
    }

    /// Sends SIGINT (Ctrl-C) to member `i` and waits up to `timeout` for it to exit, as
    /// [`Cluster::terminate`].
    pub fn interrupt(&mut self, i: usize, timeout: Duration) -> ExitStatus {
        self.stop_with(i, "INT", timeout)
    }

    fn stop_with(&mut self, i: usize, signal_name: &str, timeout: Duration) -> ExitStatus {
        let child = self.members[i]
            .child
            .as_mut()
            .unwrap_or_else(|| panic!("member {i} is not running"));
        signal(child, signal_name);
        match self.wait_exit(i, timeout) {
            Some(status) => status,
            None => {
                self.kill(i);
                panic!("member {i} did not exit within {timeout:?} of SIG{signal_name}");
            }
        }
    }

    /// Waits up to `timeout` for member `i` to exit by itself, and reaps it.
    pub fn wait_exit(&mut self, i: usize, timeout: Duration) -> Option<ExitStatus> {
        let member = &mut self.members[i];
        let child = member.child.as_mut()?;
        let status = wait_child(child, timeout)?;
        member.child = None;
        Some(status)
    }

    /// `http://<listen address><path>` of member `i`, `https://` when the members serve TLS.
    pub fn url(&self, i: usize, path: &str) -> String {
        let scheme = if self.client_tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}{path}", self.members[i].reach)
    }

    /// `GET /status` of member `i`, when it answers `200` with JSON.
    pub fn status(&self, i: usize) -> Option<Json> {
        let response = self.client.get(&self.url(i, "/status")).ok()?;
        (response.status == 200)
            .then(|| serde_json::from_str(&response.body).ok())
            .flatten()
    }

    /// The commit index member `i` reports.
    pub fn commit_index(&self, i: usize) -> Option<u64> {
        self.status(i)?["commit_index"].as_u64()
    }

    /// The index of the member whose config entry is `entry`.
    pub fn member_by_entry(&self, entry: &str) -> Option<usize> {
        self.members.iter().position(|m| m.entry == entry)
    }

    /// Indices of the members started and not stopped by the harness since.
    pub fn started(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| self.members[i].child.is_some())
            .collect()
    }

    /// The leader every started member agrees on, when that member says it leads.
    pub fn leader(&self) -> Option<usize> {
        let started = self.started();
        let mut agreed: Option<usize> = None;
        for &i in &started {
            let status = self.status(i)?;
            let leader = self.leader_of(i, &status)?;
            match agreed {
                Some(l) if l != leader => return None,
                _ => agreed = Some(leader),
            }
        }
        let leader = agreed?;
        if !started.contains(&leader) {
            return None;
        }
        let status = self.status(leader)?;
        (status["role"] == json!("leader")).then_some(leader)
    }

    /// Waits until every started member agrees on a leader that says it leads.
    pub fn wait_for_leader(&self) -> usize {
        wait_until(
            "the started members agree on a leader",
            ELECTION_TIMEOUT,
            || self.leader(),
        )
    }

    /// Waits until member `i` reports a commit index of at least `index`.
    pub fn wait_for_commit(&self, i: usize, index: u64, timeout: Duration) {
        wait_until(
            &format!("member {i} reports commit_index >= {index}"),
            timeout,
            || self.commit_index(i).filter(|&c| c >= index),
        );
    }

    /// `POST /client-request` to member `i`.
    pub fn try_request(&self, i: usize, command: &Json) -> Result<Response, String> {
        self.client
            .post_json(&self.url(i, "/client-request"), command)
    }

    /// `POST /client-request` to member `i`; panics if the request gets no HTTP answer.
    pub fn request(&self, i: usize, command: &Json) -> Response {
        self.try_request(i, command)
            .unwrap_or_else(|e| panic!("request {command} to member {i}: {e}"))
    }

    /// Runs `command` on member `i` and returns the answer's JSON; panics unless it is `200`.
    pub fn ok(&self, i: usize, command: &Json) -> Json {
        let response = self.request(i, command);
        assert_eq!(
            response.status, 200,
            "{command} on member {i}: {}",
            response.body
        );
        response.json()
    }

    /// Every member's log, for failure reports.
    pub fn logs(&self) -> String {
        let mut all = String::new();
        for (i, member) in self.members.iter().enumerate() {
            let text = std::fs::read_to_string(&member.log).unwrap_or_default();
            all.push_str(&format!(
                "----- member {i} ({}, {}) log -----\n{}\n",
                member.entry,
                self.runtime.name(),
                tail(&text, 200)
            ));
        }
        all
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.len() {
            self.kill(i);
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> &str {
    let mut start = text.len();
    for _ in 0..=lines {
        match text[..start].rfind('\n') {
            Some(at) => start = at,
            None => return text,
        }
    }
    &text[start + 1..]
}

/// Sends a signal by name (`TERM`, `INT`) to a child process.
pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill(1)");
    assert!(status.success(), "kill -{name} {} failed", child.id());
}

/// Waits up to `timeout` for `child` to exit.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What a server run to its exit said.
#[derive(Debug)]
pub struct Exit {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Runs a server binary with `args` until it exits by itself, at most `timeout` (then kills it
/// and panics), capturing its output in files under `dir`.
pub fn run_to_exit(runtime: Runtime, args: &[&str], dir: &Path, timeout: Duration) -> Exit {
    let mut command = Command::new(runtime.binary());
    command.args(args);
    run_command_to_exit(command, dir, timeout)
}

/// Runs `command` (a server with its arguments, perhaps behind `ip netns exec`) until it exits
/// by itself, as [`run_to_exit`] does.
pub fn run_command_to_exit(mut command: Command, dir: &Path, timeout: Duration) -> Exit {
    let shown = format!("{command:?}");
    let out_path = dir.join("run.stdout");
    let err_path = dir.join("run.stderr");
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("create stdout file"))
        .stderr(File::create(&err_path).expect("create stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    let status = wait_child(&mut child, timeout);
    let elapsed = started.elapsed();
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{shown} did not exit within {timeout:?}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    };
    Exit {
        status,
        stdout,
        stderr,
        elapsed,
    }
}
