//! Hosts in Linux network namespaces: a small network on one machine whose members are separate
//! hosts, each with two addresses and three names of its own, so that a cluster meets what it
//! meets across real machines (names that are not its listen address, several addresses per
//! host, a cable pulled) rather than loopback.
//!
//! ```text
//!                   switch namespace <id>-sw: two bridges, nothing else
//!        lan-a (the cluster network)                 lan-b (the front network)
//!        10.77.1.0/24                                10.77.2.0/24
//!   port n0a  n1a  n2a ... cla                  port n0b  n1b  n2b ... clb
//!         |    |    |       |                         |    |    |       |
//!       eth0 of host namespaces                     eth1 of host namespaces
//!       <id>-h0, <id>-h1, ... and the client's <id>-cl
//! ```
//!
//! - Every host (`node0`, `node1`, ... and `client`) is a namespace of its own with loopback,
//!   `eth0` on lan A and `eth1` on lan B: two addresses, `10.77.1.N` and `10.77.2.N`.
//! - Every host has three names, written to every namespace's hosts file
//!   (`/etc/netns/<namespace>/hosts`, which `ip netns exec` mounts over `/etc/hosts`):
//!   `nodeI` (both addresses, lan A's first), `nodeI.cluster.test` (lan A) and
//!   `nodeI.front.test` (lan B). `resolv.conf` names no server, so no lookup leaves the host.
//! - Nothing is created in the root namespace, and no namespace has a default route or a link
//!   to the root namespace: traffic cannot leave these hosts. The addresses exist only here.
//! - Members run with `ip netns exec <namespace>` (which execs the server, so the child's pid is
//!   the server's), bind `0.0.0.0`, and are named in the config by whatever spelling a scenario
//!   picks ([`Host::spellings`]).
//! - The harness's clients run in the client's namespace: [`Netns::enter`] moves the calling
//!   thread there with `setns(2)` and back when its guard drops; [`crate::http::Client`] does it
//!   around each request when it has a namespace ([`Client::with_netns`](crate::Client::with_netns)).
//!   A client in the test process still resolves names with the machine's `/etc/hosts`, so the
//!   harness reaches members by address (their front address, [`Host::front`]).
//! - Partitions take a host's switch ports down ([`Network::set_port`], [`Network::unplug`]):
//!   the host keeps its addresses and sees its link lose carrier, and its packets go nowhere, as
//!   when a cable is pulled. No `tc`/`netem`: this machine's kernel has no such qdisc.
//! - A host's addresses can change while its names stay ([`Network::readdress`]): the hosts
//!   files are rewritten in place, so running processes (whose `/etc/hosts` is a bind mount of
//!   the file) read the new addresses at their next lookup.
//!
//! Dropping a [`Network`] kills every process still in its namespaces, deletes the namespaces
//! (which deletes their links and bridges) and removes their `/etc/netns/<namespace>`
//! directories; it runs when a test panics too. A run killed outright leaves them behind: the
//! next [`Network`] of any process removes the namespaces of processes that no longer exist
//! (names `tpx-<pid>-...`).
//!
//! Namespaces need root and iproute2's `ip`. [`Network::for_scenario`] says in one line why a
//! scenario is skipped when they are missing, and fails instead when `PAXOS_TESTS_REQUIRE_NETNS`
//! is set (as CI should set it).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use nix::sched::{CloneFlags, setns};

/// The port every member listens on, on every host: each host has its own ports.
pub const PORT: u16 = 7001;
/// Every namespace this module creates is named `tpx-<pid>-<n>-<role>`.
const PREFIX: &str = "tpx-";
/// Set to make a scenario that cannot make namespaces fail instead of being skipped.
pub const REQUIRE_VAR: &str = "PAXOS_TESTS_REQUIRE_NETNS";
/// Where `ip netns exec` finds a namespace's own `/etc` files.
const ETC_NETNS: &str = "/etc/netns";

/// The two networks every host is on: lan A, the cluster network, and lan B, the front one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lan {
    /// `10.77.1.0/24`, each host's `eth0`; `nodeI.cluster.test`.
    A,
    /// `10.77.2.0/24`, each host's `eth1`; `nodeI.front.test`.
    B,
}

impl Lan {
    pub const BOTH: [Lan; 2] = [Lan::A, Lan::B];

    fn index(self) -> usize {
        match self {
            Lan::A => 0,
            Lan::B => 1,
        }
    }

    /// The address with last octet `host_octet` on this network.
    pub fn address(self, host_octet: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, 1 + self.index() as u8, host_octet)
    }

    /// The host's interface on this network.
    fn interface(self) -> &'static str {
        match self {
            Lan::A => "eth0",
            Lan::B => "eth1",
        }
    }

    fn bridge(self) -> &'static str {
        match self {
            Lan::A => "lan-a",
            Lan::B => "lan-b",
        }
    }

    /// The domain of the name that resolves to this network's address only.
    fn domain(self) -> &'static str {
        match self {
            Lan::A => "cluster.test",
            Lan::B => "front.test",
        }
    }

    fn suffix(self) -> char {
        match self {
            Lan::A => 'a',
            Lan::B => 'b',
        }
    }
}

/// One host: a namespace with an address on each network, and three names.
#[derive(Clone, Debug)]
pub struct Host {
    /// The namespace, for `ip netns exec` and `ip -n`.
    pub ns: String,
    /// The short name, `node<i>` or `client`.
    pub label: String,
    /// The address on lan A, then on lan B.
    pub addrs: [Ipv4Addr; 2],
    /// The switch's port names for this host's links, lan A's then lan B's (`n0a`, `n0b`).
    ports: [String; 2],
}

impl Host {
    pub fn addr(&self, lan: Lan) -> Ipv4Addr {
        self.addrs[lan.index()]
    }

    /// The address the harness's clients reach this host's member at: lan B's, so that a cut of
    /// the cluster network leaves the members reachable, as the fault proxies do.
    pub fn front(&self) -> SocketAddr {
        SocketAddr::from((self.addr(Lan::B), PORT))
    }

    /// The host's names: the short one (both addresses), lan A's and lan B's.
    pub fn names(&self) -> [String; 3] {
        [
            self.label.clone(),
            format!("{}.{}", self.label, Lan::A.domain()),
            format!("{}.{}", self.label, Lan::B.domain()),
        ]
    }

    /// Every way a config may spell this host's member: each name and each address, with
    /// [`PORT`].
    pub fn spellings(&self) -> Vec<String> {
        let names = self.names().into_iter();
        let addrs = self.addrs.iter().map(Ipv4Addr::to_string);
        names.chain(addrs).map(|h| format!("{h}:{PORT}")).collect()
    }

    /// The spelling whose every address is on lan A (`nodeI.cluster.test:7001`): peers that
    /// use it talk over the cluster network only, so a cut of lan A cuts them off.
    pub fn cluster_entry(&self) -> String {
        format!("{}.{}:{PORT}", self.label, Lan::A.domain())
    }

    /// The short name's spelling (`nodeI:7001`), which resolves to both addresses.
    pub fn short_entry(&self) -> String {
        format!("{}:{PORT}", self.label)
    }
}

/// An open namespace that threads can enter.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
    file: File,
}

impl Netns {
    /// Opens the named namespace (`/var/run/netns/<name>`); the handle keeps it alive.
    pub fn open(name: &str) -> Result<Netns, String> {
        let path = Path::new("/var/run/netns").join(name);
        let file = File::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        Ok(Netns {
            name: name.to_owned(),
            file,
        })
    }

    /// Moves the calling thread into this namespace until the guard drops. Sockets the thread
    /// opens meanwhile belong to this namespace (and stay there); threads it starts meanwhile
    /// start in it.
    pub fn enter(&self) -> Inside {
        let back = File::open("/proc/thread-self/ns/net")
            .unwrap_or_else(|e| panic!("cannot open this thread's network namespace: {e}"));
        setns(&self.file, CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("cannot enter network namespace {}: {e}", self.name));
        Inside { back }
    }
}

/// A thread inside a namespace ([`Netns::enter`]); dropping it moves the thread back.
#[derive(Debug)]
pub struct Inside {
    back: File,
}

impl Drop for Inside {
    fn drop(&mut self) {
        if let Err(e) = setns(&self.back, CloneFlags::CLONE_NEWNET)
            && !std::thread::panicking()
        {
            panic!("cannot return to this thread's network namespace: {e}");
        }
    }
}

/// The network: see the module docs.
#[derive(Debug)]
pub struct Network {
    id: String,
    switch: String,
    /// The members' hosts, `node0`, `node1`, ...
    pub hosts: Vec<Host>,
    /// The clients' host.
    pub client: Host,
    client_ns: Option<Arc<Netns>>,
    /// Every namespace created, in order: each is deleted on drop.
    namespaces: Vec<String>,
    /// Switch ports taken down and not brought up since.
    down: Mutex<BTreeSet<String>>,
    /// The next host number (last octet) for a new address.
    next_octet: u8,
}

/// The last octet of host `i`'s first addresses, and of the client's.
fn first_octet(i: usize) -> u8 {
    11 + i as u8
}
const CLIENT_OCTET: u8 = 250;

impl Network {
    /// Why namespaces cannot be made here, if they cannot: not root, no `ip`, or `ip netns add`
    /// failing. Found out once per process.
    pub fn unavailable() -> Option<String> {
        static ANSWER: OnceLock<Option<String>> = OnceLock::new();
        ANSWER.get_or_init(find_unavailable).clone()
    }

    /// A network of `hosts` hosts for the scenario `what`, or `None` after printing one line
    /// saying why the scenario is skipped (straight to stderr, past the test harness's capture).
    /// With `PAXOS_TESTS_REQUIRE_NETNS` set, panics instead of skipping.
    pub fn for_scenario(what: &str, hosts: usize) -> Option<Network> {
        if let Some(reason) = Network::unavailable() {
            if std::env::var_os(REQUIRE_VAR).is_some() {
                panic!("{what}: network namespaces are required ({REQUIRE_VAR}) but {reason}");
            }
            // One write, so that the line stays whole among the test harness's own output.
            let line = format!(
                "SKIPPED {what}: no network namespaces here: {reason} (they need root and \
                 iproute2's `ip`; set {REQUIRE_VAR}=1 to fail instead)\n"
            );
            let _ = std::io::stderr().write_all(line.as_bytes());
            return None;
        }
        Some(Network::start(hosts))
    }

    /// Builds a network of `hosts` member hosts and the client's host; panics if any step
    /// fails (after removing what it made). Check [`Network::unavailable`] first.
    pub fn start(hosts: usize) -> Network {
        assert!(
            (1..=80).contains(&hosts),
            "1 to 80 hosts (their addresses are 10.77.x.11 up)"
        );
        sweep_stale();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let id = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let host = |label: String, role: &str, octet: u8, port_prefix: &str| Host {
            ns: format!("{id}-{role}"),
            label,
            addrs: Lan::BOTH.map(|lan| lan.address(octet)),
            ports: Lan::BOTH.map(|lan| format!("{port_prefix}{}", lan.suffix())),
        };
        let mut network = Network {
            switch: format!("{id}-sw"),
            hosts: (0..hosts)
                .map(|i| {
                    host(
                        format!("node{i}"),
                        &format!("h{i}"),
                        first_octet(i),
                        &format!("n{i}"),
                    )
                })
                .collect(),
            client: host("client".to_owned(), "cl", CLIENT_OCTET, "cl"),
            id,
            client_ns: None,
            namespaces: Vec::new(),
            down: Mutex::new(BTreeSet::new()),
            next_octet: first_octet(hosts).max(100),
        };
        // A panic from here on drops `network`, which removes whatever was made.
        network
            .build()
            .unwrap_or_else(|e| panic!("cannot build the test network: {e}"));
        network
    }

    fn build(&mut self) -> Result<(), String> {
        let switch = self.switch.clone();
        self.add_namespace(&switch)?;
        for lan in Lan::BOTH {
            ip(&["-n", &switch, "link", "add", lan.bridge(), "type", "bridge"])?;
            ip(&["-n", &switch, "link", "set", lan.bridge(), "up"])?;
        }
        let hosts: Vec<Host> = self.hosts.iter().chain([&self.client]).cloned().collect();
        for host in &hosts {
            self.add_namespace(&host.ns)?;
            for lan in Lan::BOTH {
                let port = &host.ports[lan.index()];
                let (ns, eth) = (&host.ns, lan.interface());
                // Made in the switch's namespace with its peer end put straight into the host's:
                // neither end ever exists in the root namespace.
                ip(&[
                    "-n", &switch, "link", "add", port, "type", "veth", "peer", "name", eth,
                    "netns", ns,
                ])?;
                ip(&["-n", &switch, "link", "set", port, "master", lan.bridge()])?;
                ip(&["-n", &switch, "link", "set", port, "up"])?;
                let cidr = format!("{}/24", host.addr(lan));
                ip(&["-n", ns, "addr", "add", &cidr, "dev", eth])?;
                ip(&["-n", ns, "link", "set", eth, "up"])?;
            }
        }
        self.write_hosts_files()?;
        self.client_ns = Some(Arc::new(Netns::open(&self.client.ns)?));
        Ok(())
    }

    /// Creates a namespace (recorded for removal first) with its loopback up and its `/etc`
    /// directory.
    fn add_namespace(&mut self, name: &str) -> Result<(), String> {
        ip(&["netns", "add", name])?;
        self.namespaces.push(name.to_owned());
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        etc_dir_create(name)
    }

    /// The namespace the harness's clients run in.
    pub fn client_netns(&self) -> Arc<Netns> {
        self.client_ns.clone().expect("the network is built")
    }

    /// This network's id, the prefix of its namespaces' names.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The hosts file every namespace gets.
    pub fn hosts_file(&self) -> String {
        let mut text = format!(
            "# written by paxos-tests (tests/src/netns.rs) for network {}\n127.0.0.1\tlocalhost\n",
            self.id
        );
        for host in self.hosts.iter().chain([&self.client]) {
            let [short, on_a, on_b] = host.names();
            text.push_str(&format!("{}\t{short} {on_a}\n", host.addr(Lan::A)));
            text.push_str(&format!("{}\t{short} {on_b}\n", host.addr(Lan::B)));
        }
        text
    }

    /// Writes every host's hosts file and `resolv.conf`, in place: a running process's
    /// `/etc/hosts` is a bind mount of the file, so replacing the file would leave it reading the
    /// old one.
    fn write_hosts_files(&self) -> Result<(), String> {
        let hosts = self.hosts_file();
        for host in self.hosts.iter().chain([&self.client]) {
            let dir = etc_dir(&host.ns);
            let write = |name: &str, text: &str| {
                std::fs::write(dir.join(name), text)
                    .map_err(|e| format!("cannot write {}: {e}", dir.join(name).display()))
            };
            write("hosts", &hosts)?;
            write(
                "resolv.conf",
                "# written by paxos-tests: no name server; names come from the hosts file\n",
            )?;
        }
        Ok(())
    }

    /// A command that runs `program` on host `ns` (`ip netns exec <ns> <program>`).
    pub fn command(ns: &str, program: &Path) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns]).arg(program);
        command
    }

    /// Takes the switch port of host `host`'s link on `lan` down (`up` false) or up.
    pub fn set_port(&self, host: usize, lan: Lan, up: bool) {
        let port = &self.hosts[host].ports[lan.index()];
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.switch, "link", "set", port, state])
            .unwrap_or_else(|e| panic!("cannot set {port} {state}: {e}"));
        let mut down = self.down.lock().unwrap_or_else(PoisonError::into_inner);
        match up {
            true => down.remove(port),
            false => down.insert(port.clone()),
        };
    }

    /// Unplugs host `host`: both its switch ports down.
    pub fn unplug(&self, host: usize) {
        for lan in Lan::BOTH {
            self.set_port(host, lan, false);
        }
    }

    /// Brings every port taken down back up.
    pub fn heal_all(&self) {
        let down: Vec<String> =
            std::mem::take(&mut *self.down.lock().unwrap_or_else(PoisonError::into_inner))
                .into_iter()
                .collect();
        for port in down {
            ip(&["-n", &self.switch, "link", "set", &port, "up"])
                .unwrap_or_else(|e| panic!("cannot set {port} up: {e}"));
        }
    }

    /// The switch ports down now (`n0a`, `n0b`, ...), sorted.
    pub fn ports_down(&self) -> Vec<String> {
        let down = self.down.lock().unwrap_or_else(PoisonError::into_inner);
        down.iter().cloned().collect()
    }

    /// Delays every packet the switch sends a member on `lan` by `ms` milliseconds (so a round
    /// trip between two members on it takes `2 * ms` more), with `tc`'s netem queueing discipline
    /// on the members' switch ports. An error that says why when `tc` or netem is missing, as
    /// on this machine's kernel ("Specified qdisc kind is unknown").
    pub fn delay(&self, lan: Lan, ms: u64) -> Result<(), String> {
        for host in &self.hosts {
            let port = &host.ports[lan.index()];
            let delay = format!("{ms}ms");
            let args = [
                "-n",
                &self.switch,
                "qdisc",
                "add",
                "dev",
                port,
                "root",
                "netem",
                "delay",
                &delay,
            ];
            let output = Command::new("tc")
                .args(args)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("cannot run `tc` (iproute2's): {e}"))?;
            if !output.status.success() {
                return Err(format!(
                    "cannot delay packets: `tc {}` said {:?}: this kernel has no netem \
                     queueing discipline",
                    args.join(" "),
                    String::from_utf8_lossy(&output.stderr).trim()
                ));
            }
        }
        Ok(())
    }

    /// Gives host `host` a new address on each network in place of its old ones, and rewrites
    /// every hosts file so that its names resolve to the new addresses. Returns them.
    pub fn readdress(&mut self, host: usize) -> [Ipv4Addr; 2] {
        let octet = self.next_octet;
        self.next_octet = self
            .next_octet
            .checked_add(1)
            .expect("fewer than 250 hosts");
        let ns = self.hosts[host].ns.clone();
        for lan in Lan::BOTH {
            let old = format!("{}/24", self.hosts[host].addr(lan));
            let new = lan.address(octet);
            // The old one first: deleting a primary address deletes its secondaries with it.
            ip(&["-n", &ns, "addr", "del", &old, "dev", lan.interface()])
                .unwrap_or_else(|e| panic!("{e}"));
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{new}/24"),
                "dev",
                lan.interface(),
            ])
            .unwrap_or_else(|e| panic!("{e}"));
            self.hosts[host].addrs[lan.index()] = new;
        }
        self.write_hosts_files()
            .unwrap_or_else(|e| panic!("cannot rewrite the hosts files: {e}"));
        self.hosts[host].addrs
    }

    /// What the network is, for logs and post-mortems: namespaces, addresses and the hosts file.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "network {}: switch namespace {} with bridges lan-a (10.77.1.0/24) and lan-b \
             (10.77.2.0/24)\n",
            self.id, self.switch
        );
        for host in self.hosts.iter().chain([&self.client]) {
            text.push_str(&format!(
                "  {:<7} namespace {}: eth0 {} (switch port {}), eth1 {} (switch port {})\n",
                host.label, host.ns, host.addrs[0], host.ports[0], host.addrs[1], host.ports[1]
            ));
        }
        text.push_str("hosts file of every namespace:\n");
        text.push_str(&self.hosts_file());
        text
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            if let Err(e) = remove_namespace(ns) {
                eprintln!("netns: cleaning up {ns}: {e}");
            }
        }
        etc_netns_tidy();
    }
}

/// Kills every process in namespace `ns`, deletes it and removes its `/etc/netns` directory.
fn remove_namespace(ns: &str) -> Result<(), String> {
    let mut errors = Vec::new();
    if let Ok(pids) = ip(&["netns", "pids", ns]) {
        for pid in pids.split_whitespace() {
            let _ = Command::new("kill")
                .args(["-KILL", pid])
                .stderr(Stdio::null())
                .status();
        }
    }
    if let Err(e) = ip(&["netns", "del", ns])
        && Path::new("/var/run/netns").join(ns).exists()
    {
        errors.push(e);
    }
    let dir = etc_dir(ns);
    if dir.exists()
        && let Err(e) = std::fs::remove_dir_all(&dir)
    {
        errors.push(format!("cannot remove {}: {e}", dir.display()));
    }
    match errors.is_empty() {
        true => Ok(()),
        false => Err(errors.join("; ")),
    }
}

/// Removes the namespaces, and `/etc/netns` directories, that earlier runs of processes that no
/// longer exist left behind (a run killed outright runs no drop guard).
fn sweep_stale() {
    static SWEPT: OnceLock<()> = OnceLock::new();
    SWEPT.get_or_init(|| {
        let mut stale: BTreeSet<String> = BTreeSet::new();
        let mut swept = false;
        if let Ok(list) = ip(&["netns", "list"]) {
            stale.extend(
                list.lines()
                    .filter_map(|l| l.split_whitespace().next().map(str::to_owned)),
            );
        }
        if let Ok(entries) = std::fs::read_dir(ETC_NETNS) {
            stale.extend(
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned()),
            );
        }
        for name in stale {
            let Some(pid) = name
                .strip_prefix(PREFIX)
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            if pid != std::process::id() && !alive(pid) {
                eprintln!("netns: removing {name}, left behind by process {pid}");
                if let Err(e) = remove_namespace(&name) {
                    eprintln!("netns: {e}");
                }
                swept = true;
            }
        }
        // A dead run that left namespaces behind made /etc/netns too, most likely: remove it if
        // nothing else is in it.
        if swept {
            let _guard = ETC_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = std::fs::remove_dir(ETC_NETNS);
        }
    });
}

/// Whether process `pid` exists and has not exited (a zombie, killed and not yet reaped, has).
fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // `pid (comm) S ...`: the state follows the last parenthesis.
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|rest| rest.split_whitespace().next());
    matches!(state, Some(state) if state != "Z" && state != "X")
}

/// Serialises making and removing directories under `/etc/netns` within this process.
static ETC_LOCK: Mutex<bool> = Mutex::new(false);

fn etc_dir(ns: &str) -> PathBuf {
    Path::new(ETC_NETNS).join(ns)
}

fn etc_dir_create(ns: &str) -> Result<(), String> {
    let mut created_root = ETC_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = etc_dir(ns);
    for _ in 0..5 {
        match std::fs::create_dir(ETC_NETNS) {
            Ok(()) => *created_root = true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {ETC_NETNS}: {e}")),
        }
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(()),
            // Another process removed an empty /etc/netns meanwhile: make it again.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
        }
    }
    Err(format!(
        "cannot create {}: {ETC_NETNS} keeps vanishing",
        dir.display()
    ))
}

/// Removes `/etc/netns` if this process created it and it is empty again.
fn etc_netns_tidy() {
    let mut created_root = ETC_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    if *created_root && std::fs::remove_dir(ETC_NETNS).is_ok() {
        *created_root = false;
    }
}

/// Runs `ip` with `args`; its stdout, or an error naming the command and what it said.
fn ip(args: &[&str]) -> Result<String, String> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    match output.status.success() {
        true => Ok(String::from_utf8_lossy(&output.stdout).into_owned()),
        false => Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )),
    }
}

fn find_unavailable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|id| id.parse::<u32>().ok());
    if euid != Some(0) {
        return Some(format!(
            "not running as root (effective uid {})",
            euid.map_or("unknown".to_owned(), |id| id.to_string())
        ));
    }
    if let Err(e) = ip(&["-V"]) {
        return Some(format!("iproute2 is missing: {e}"));
    }
    let probe = format!("{PREFIX}{}-probe", std::process::id());
    if let Err(e) = ip(&["netns", "add", &probe]) {
        return Some(e);
    }
    let entered = Netns::open(&probe).and_then(|ns| {
        // Entering and leaving on a thread of its own: a failure leaves no test thread inside.
        std::thread::spawn(move || {
            let back = File::open("/proc/thread-self/ns/net").map_err(|e| e.to_string())?;
            setns(&ns.file, CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns into {probe_name}: {e}", probe_name = ns.name))?;
            setns(&back, CloneFlags::CLONE_NEWNET).map_err(|e| e.to_string())
        })
        .join()
        .unwrap_or_else(|_| Err("the setns probe panicked".to_owned()))
    });
    let _ = ip(&["netns", "del", &probe]);
    entered.err()
}
