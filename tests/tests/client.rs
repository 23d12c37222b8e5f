//! The client library (`crates/paxos-client`), both twins against both servers: the blocking and
//! the async client give the same answers to the same commands; a write whose answer was lost
//! (its member killed mid-flight, or its answer swallowed on the way back) is retried on
//! another member with the same `client_id` and `seq` and applies once; and every error kind is
//! reached and reported as documented: refused with the server's sentence, unavailable (every
//! member down, or overloaded), outcome unknown (settled by the client's next write), bad
//! configuration.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use paxos_client::{Cas, Done, Error, Failure, Status, Value, Watch};
use paxos_tests::http::raw_post;
use paxos_tests::{Cluster, Json, Runtime, json, scenarios, wait_for};

scenarios! {
    both_clients_give_the_same_answers,
    a_write_whose_leader_is_killed_mid_flight_applies_once,
    a_write_whose_answer_is_lost_is_answered_by_another_member,
    refusals_carry_the_servers_sentence,
    a_cluster_without_members_is_unavailable,
    a_write_without_a_majority_is_unknown_until_the_next_write,
    overloaded_members_leave_a_write_unavailable,
}

/// Which twin of the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Twin {
    Blocking,
    Async,
}

const TWINS: [Twin; 2] = [Twin::Blocking, Twin::Async];

/// How a test sets up a client; the builders of both twins take the same settings.
#[derive(Clone, Debug)]
struct Setup {
    servers: Vec<String>,
    timeout: Duration,
    attempt_timeout: Duration,
    exactly_once: bool,
}

impl Setup {
    fn new(servers: Vec<String>) -> Setup {
        Setup {
            servers,
            timeout: Duration::from_secs(20),
            attempt_timeout: Duration::from_secs(6),
            exactly_once: true,
        }
    }

    fn of(cluster: &Cluster) -> Setup {
        Setup::new(cluster.members.iter().map(|m| m.entry.clone()).collect())
    }

    fn timeout(mut self, timeout: Duration) -> Setup {
        self.timeout = timeout;
        self
    }

    fn exactly_once(mut self, exactly_once: bool) -> Setup {
        self.exactly_once = exactly_once;
        self
    }

    fn build(&self, twin: Twin) -> Client {
        match twin {
            Twin::Blocking => Client::Blocking(
                paxos_client::blocking::Client::builder()
                    .servers(self.servers.clone())
                    .timeout(self.timeout)
                    .attempt_timeout(self.attempt_timeout)
                    .exactly_once(self.exactly_once)
                    .build()
                    .expect("a blocking client"),
            ),
            Twin::Async => Client::Async(
                paxos_client::Client::builder()
                    .servers(self.servers.clone())
                    .timeout(self.timeout)
                    .attempt_timeout(self.attempt_timeout)
                    .exactly_once(self.exactly_once)
                    .build()
                    .expect("an async client"),
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime"),
            ),
        }
    }
}

/// A client of either twin, called the same way: the async one on a runtime of its own.
#[derive(Debug)]
enum Client {
    Blocking(paxos_client::blocking::Client),
    Async(paxos_client::Client, tokio::runtime::Runtime),
}

/// Calls the same method on either twin.
macro_rules! call {
    ($client:expr, $method:ident($($arg:expr),*)) => {
        match $client {
            Client::Blocking(client) => client.$method($($arg),*),
            Client::Async(client, runtime) => runtime.block_on(client.$method($($arg),*)),
        }
    };
}

impl Client {
    fn get(&self, key: &str) -> Result<Done, Error> {
        call!(self, get(key))
    }
    fn put(&mut self, key: &str, value: &str) -> Result<Done, Error> {
        call!(self, put(key, value))
    }
    fn delete(&mut self, key: &str) -> Result<Done, Error> {
        call!(self, delete(key))
    }
    fn cas(&mut self, key: &str, expected: Option<&str>, value: &str) -> Result<Cas, Error> {
        call!(self, cas(key, expected, value))
    }
    fn append(&mut self, key: &str, value: &str) -> Result<Done, Error> {
        call!(self, append(key, value))
    }
    fn watch(&self, key: &str, after: u64, wait: Duration) -> Result<Watch, Error> {
        call!(self, watch(key, after, wait))
    }
    fn status(&self) -> Result<Status, Error> {
        call!(self, status())
    }
    fn members(&self) -> Vec<paxos_client::MemberStatus> {
        call!(self, members())
    }
}

fn list(items: &[&str]) -> Option<Value> {
    Some(Value::List(items.iter().map(|s| (*s).to_owned()).collect()))
}

fn string(text: &str) -> Option<Value> {
    Some(Value::Str(text.to_owned()))
}

/// One gauge or counter of member `i`'s `/metrics`.
fn metric(cluster: &Cluster, i: usize, name: &str) -> Option<u64> {
    let text = cluster.client.get(&cluster.url(i, "/metrics")).ok()?.body;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Every command on one twin, as facts that hold whatever slots the commands landed in: the
/// values, and how the indexes relate. Each key is prefixed so both twins share a cluster.
fn script(client: &mut Client, prefix: &str) -> Vec<String> {
    let key = |name: &str| format!("{prefix}{name}");
    let (k, l, c) = (key("k"), key("l"), key("c"));
    let mut facts = Vec::new();
    let mut fact = |text: String| facts.push(text.replace(prefix, "<prefix>"));

    let absent = client.get(&k).unwrap();
    fact(format!(
        "get absent: {:?} modified {}",
        absent.value, absent.modified
    ));
    let put = client.put(&k, "a").unwrap();
    fact(format!(
        "put: {:?}, changed at its slot: {}, after the read: {}",
        put.value,
        put.modified == put.index,
        put.index > absent.index
    ));
    let read = client.get(&k).unwrap();
    fact(format!(
        "get: {:?}, modified by the put: {}, read at or after it: {}",
        read.value,
        read.modified == put.index,
        // A get takes no slot: its index is the read index, at least the put's slot.
        read.index >= put.index
    ));
    let mismatch = client.cas(&k, Some("b"), "c").unwrap();
    fact(format!("cas b->c: {mismatch:?}").replace(&put.index.to_string(), "<put>"));
    let swapped = client.cas(&k, Some("a"), "c").unwrap();
    fact(format!(
        "cas a->c swapped: {}, value {:?}",
        swapped.swapped(),
        match &swapped {
            Cas::Swapped(done) => done.value.clone(),
            Cas::Mismatch { value, .. } => value.clone(),
        }
    ));
    let created = client.cas(&c, None, "new").unwrap();
    fact(format!("cas absent->new swapped: {}", created.swapped()));
    client.append(&l, "1").unwrap();
    let appended = client.append(&l, "2").unwrap();
    fact(format!("append twice: {:?}", appended.value));
    let refused = client.append(&k, "x").unwrap_err();
    fact(format!("append to a string: {refused}").replace(&refused_server(&refused), "<server>"));
    let deleted = client.delete(&k).unwrap();
    let gone = client.get(&k).unwrap();
    fact(format!(
        "delete: {:?}; get: {:?}, modified by the delete: {}",
        deleted.value,
        gone.value,
        gone.modified == deleted.index
    ));
    let quiet = client
        .watch(&k, deleted.index, Duration::from_millis(300))
        .unwrap();
    fact(format!(
        "watch after the delete: unchanged through it: {}",
        matches!(quiet, Watch::Unchanged { index } if index >= deleted.index)
    ));
    let change = client.watch(&k, put.index, Duration::from_secs(5)).unwrap();
    fact(format!(
        "watch after the put: {}",
        match change {
            Watch::Changed {
                value, modified, ..
            } => format!(
                "changed to {value:?} by the delete: {}",
                modified == deleted.index
            ),
            Watch::Unchanged { .. } => "unchanged".to_owned(),
        }
    ));
    let too_long = client.put(&"k".repeat(1100), "v").unwrap_err();
    fact(format!("a key over 1 KiB: {too_long}"));
    let status = client.status().unwrap();
    fact(format!(
        "status: {} servers, a leader: {}",
        status.servers.len(),
        status.leader.is_some()
    ));
    let members = client.members();
    fact(format!(
        "members: {} of {} answered",
        members.iter().filter(|m| m.status.is_ok()).count(),
        members.len()
    ));
    facts
}

fn refused_server(error: &Error) -> String {
    match error {
        Error::Refused {
            server: Some(server),
            ..
        } => server.clone(),
        other => panic!("expected a refusal by a member, got {other:?}"),
    }
}

fn both_clients_give_the_same_answers(runtime: Runtime) {
    let cluster = Cluster::builder(runtime).start();
    let setup = Setup::of(&cluster);
    let blocking = script(&mut setup.build(Twin::Blocking), "blocking/");
    let asynchronous = script(&mut setup.build(Twin::Async), "async/");
    assert_eq!(blocking, asynchronous);
    // And the answers are the right ones, not just the same ones.
    let expected = [
        "get absent: None modified 0",
        "put: Some(Str(\"a\")), changed at its slot: true, after the read: true",
        "get: Some(Str(\"a\")), modified by the put: true, read at or after it: true",
        "cas b->c: Mismatch { value: Some(Str(\"a\")), modified: <put> }",
        "cas a->c swapped: true, value Some(Str(\"c\"))",
        "cas absent->new swapped: true",
        "append twice: Some(List([\"1\", \"2\"]))",
    ];
    assert_eq!(blocking[..expected.len()], expected, "{blocking:#?}");
    let rest = &blocking[expected.len()..];
    assert!(
        rest[0].starts_with("append to a string: <server> refused the request (400): ")
            && rest[0].ends_with("; it changed nothing"),
        "{}",
        rest[0]
    );
    assert_eq!(
        rest[1],
        "delete: None; get: None, modified by the delete: true"
    );
    assert_eq!(
        rest[2],
        "watch after the delete: unchanged through it: true"
    );
    assert_eq!(
        rest[3],
        "watch after the put: changed to None by the delete: true"
    );
    assert!(
        rest[4].starts_with(
            "a key over 1 KiB: refused without sending, as every member would (400): field \
             `key` is 1100 bytes long"
        ),
        "{}",
        rest[4]
    );
    assert_eq!(rest[5], "status: 3 servers, a leader: true");
    assert_eq!(rest[6], "members: 3 of 3 answered");
}

/// The leader takes an append it cannot commit (both followers paused), and is killed with the
/// append in flight; the followers come back, elect a leader and may well commit the dead
/// leader's copy of it too. The client's retry goes to a follower with the same pair, so the
/// list holds the item once, whichever copy was decided.
fn a_write_whose_leader_is_killed_mid_flight_applies_once(runtime: Runtime) {
    let mut cluster = Cluster::builder(runtime).start();
    for twin in TWINS {
        let leader = cluster.wait_for_leader();
        let followers: Vec<usize> = (0..cluster.len()).filter(|&i| i != leader).collect();
        // The leader first, so that the first attempt goes to it.
        let mut servers = vec![cluster.members[leader].entry.clone()];
        servers.extend(followers.iter().map(|&i| cluster.members[i].entry.clone()));
        let mut client = Setup::new(servers).build(twin);
        let key = format!("killed-{twin:?}");
        for &i in &followers {
            cluster.pause(i);
        }
        let waiting_before = metric(&cluster, leader, "paxos_client_requests_waiting");
        assert_eq!(waiting_before, Some(0));
        let appending = {
            let key = key.clone();
            thread::spawn(move || {
                let done = client.append(&key, "item");
                (client, done)
            })
        };
        wait_for(
            "the leader holds the append",
            Duration::from_secs(10),
            || metric(&cluster, leader, "paxos_client_requests_waiting") == Some(1),
        );
        cluster.kill(leader);
        for &i in &followers {
            cluster.resume(i);
        }
        let (client, done) = appending.join().unwrap();
        let done = done.unwrap_or_else(|e| panic!("{twin:?}: {e}"));
        assert_eq!(done.value, list(&["item"]), "{twin:?}");
        assert_eq!(
            client.get(&key).unwrap().value,
            list(&["item"]),
            "{twin:?}: the retried append applied once"
        );
        cluster.start(leader);
    }
}

/// A proxy in front of one member that passes each request on and swallows the answer: the
/// command runs, and its client hears only that the connection closed. It keeps the answers.
struct Swallower {
    address: SocketAddr,
    swallowed: Arc<Mutex<Vec<Json>>>,
}

impl Swallower {
    fn start(member: SocketAddr) -> Swallower {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let swallowed = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&swallowed);
        // Ends with the test process; it holds no member's resources.
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { continue };
                let kept = Arc::clone(&kept);
                thread::spawn(move || {
                    let Some(request) = read_message(&mut client) else {
                        return;
                    };
                    let mut upstream = TcpStream::connect(member).unwrap();
                    upstream.write_all(&request).unwrap();
                    if let Some(answer) = read_message(&mut upstream) {
                        let text = String::from_utf8_lossy(&answer).into_owned();
                        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
                        kept.lock()
                            .unwrap()
                            .push(serde_json::from_str(body).unwrap_or(Json::Null));
                    }
                    // Dropping `client` closes it without a byte of the answer.
                });
            }
        });
        Swallower { address, swallowed }
    }

    fn swallowed(&self) -> Vec<Json> {
        self.swallowed.lock().unwrap().clone()
    }
}

/// One HTTP message with a `Content-Length` body (all the API sends), whole.
fn read_message(stream: &mut TcpStream) -> Option<Vec<u8>> {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let mut message = Vec::new();
    let mut buffer = [0; 16 * 1024];
    loop {
        let text = String::from_utf8_lossy(&message);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                return Some(message);
            }
        }
        match stream.read(&mut buffer) {
            Ok(0) => return None,
            Ok(n) => message.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

fn a_write_whose_answer_is_lost_is_answered_by_another_member(runtime: Runtime) {
    let cluster = Cluster::builder(runtime).start();
    let swallower = Swallower::start(cluster.members[0].listen);
    let mut servers = vec![swallower.address.to_string()];
    servers.extend(cluster.members[1..].iter().map(|m| m.entry.clone()));
    for twin in TWINS {
        let key = format!("lost-{twin:?}");
        let mut client = Setup::new(servers.clone()).build(twin);
        let before = swallower.swallowed().len();
        let done = client.append(&key, "once").unwrap();
        let swallowed = swallower.swallowed();
        assert_eq!(swallowed.len(), before + 1, "{twin:?}: {swallowed:?}");
        // The answer the client got is the one the first attempt was given and lost: the same
        // slot, so the retry did not apply it again.
        let lost = &swallowed[before];
        assert_eq!(
            json!({"ok": true, "value": done.value, "index": done.index, "modified": done.modified}),
            *lost,
            "{twin:?}"
        );
        assert_eq!(client.get(&key).unwrap().value, list(&["once"]), "{twin:?}");

        // Without exactly-once the client may not send it again: the outcome is unknown to it,
        // though the command applied.
        let key = format!("lost-plain-{twin:?}");
        let mut plain = Setup::new(servers.clone()).exactly_once(false).build(twin);
        match plain.append(&key, "x") {
            Err(Error::OutcomeUnknown { attempts }) => {
                assert_eq!(attempts.len(), 1, "{attempts:?}");
                assert_eq!(attempts[0].server, swallower.address.to_string());
                assert!(attempts[0].may_have_applied);
                assert!(
                    matches!(attempts[0].failure, Failure::NoAnswer(_)),
                    "{attempts:?}"
                );
            }
            other => panic!("{twin:?}: expected an unknown outcome, got {other:?}"),
        }
        assert_eq!(plain.get(&key).unwrap().value, list(&["x"]), "{twin:?}");
    }
}

fn refusals_carry_the_servers_sentence(runtime: Runtime) {
    let cluster = Cluster::builder(runtime).start();
    let first = cluster.members[0].entry.clone();
    for twin in TWINS {
        let mut client = Setup::of(&cluster).build(twin);
        let key = format!("refused-{twin:?}");
        client.put(&key, "a string").unwrap();
        // Ordered, then refused: the member's sentence, as a raw request gets it.
        let raw = cluster.request(1, &json!({"op": "append", "key": key, "value": "x"}));
        assert_eq!(raw.status, 400);
        match client.append(&key, "x") {
            Err(Error::Refused {
                server,
                status,
                message,
            }) => {
                assert_eq!(server.as_deref(), Some(first.as_str()));
                assert_eq!(status, 400);
                assert_eq!(message, raw.error_sentence());
            }
            other => panic!("{twin:?}: {other:?}"),
        }
        assert_eq!(client.get(&key).unwrap().value, string("a string"));

        // Over a size limit: refused without sending, with the sentence a member gives.
        let long_key = "k".repeat(1025);
        let raw = cluster.request(0, &json!({"op": "get", "key": long_key}));
        assert_eq!(raw.status, 400);
        assert_eq!(
            client.get(&long_key).unwrap_err(),
            Error::Refused {
                server: None,
                status: 400,
                message: raw.error_sentence(),
            }
        );
        let half = "e".repeat(512 * 1024);
        let body = json!({"op": "cas", "key": "k", "expected": half, "value": half}).to_string();
        let address = cluster.members[0].listen.to_string();
        let raw = raw_post(
            &address,
            "/client-request",
            body.as_bytes(),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(raw.status, 413);
        assert_eq!(
            client.cas("k", Some(&half), &half).unwrap_err(),
            Error::Refused {
                server: None,
                status: 413,
                message: raw.error_sentence(),
            }
        );

        // A watch longer than the members allow: refused at once, not after the wait.
        let started = Instant::now();
        match client.watch(&key, 0, Duration::from_secs(301)) {
            Err(Error::Refused {
                status: 400,
                message,
                ..
            }) => assert!(message.contains("`wait` may be at most"), "{message}"),
            other => panic!("{twin:?}: {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    // Bad configuration: nothing is sent.
    let config = |result: Result<paxos_client::blocking::Client, Error>| match result {
        Err(Error::Config(message)) => message,
        other => panic!("expected a configuration error, got {other:?}"),
    };
    let blocking = paxos_client::blocking::Client::builder;
    assert!(config(blocking().build()).starts_with("no servers"));
    assert!(config(blocking().servers(["localhost"]).build()).contains("expected HOST:PORT"));
    assert!(
        config(
            blocking()
                .config_file(cluster.dir().join("missing.json"))
                .build()
        )
        .starts_with("cannot read the config file")
    );
    let asynchronous = paxos_client::Client::builder().servers(["h:0"]).build();
    assert!(matches!(asynchronous, Err(Error::Config(m)) if m.contains("the port `0`")));
    // The cluster's own config file names its members.
    let from_file = blocking()
        .config_file(&cluster.config_path)
        .build()
        .unwrap();
    assert_eq!(from_file.servers(), cluster.config.servers.as_slice());
    assert!(from_file.get("refused-Blocking").is_ok());
}

fn a_cluster_without_members_is_unavailable(runtime: Runtime) {
    let mut cluster = Cluster::builder(runtime).start();
    let setup = Setup::of(&cluster).timeout(Duration::from_millis(1500));
    let mut clients: Vec<Client> = TWINS.iter().map(|&twin| setup.build(twin)).collect();
    for client in &mut clients {
        client.put("down", "before").unwrap();
    }
    for i in 0..cluster.len() {
        cluster.kill(i);
    }
    for (twin, client) in TWINS.iter().zip(&mut clients) {
        let started = Instant::now();
        let error = client.put("down", "after").unwrap_err();
        let took = started.elapsed();
        let Error::Unavailable { attempts } = &error else {
            panic!("{twin:?}: expected unavailable, got {error:?}");
        };
        // Every member, in rounds, until the deadline, and no more.
        assert!(attempts.len() > cluster.len(), "{twin:?}: {attempts:?}");
        for (attempt, member) in attempts.iter().zip(cluster.members.iter().cycle()) {
            assert_eq!(attempt.server, member.entry);
            assert_eq!(
                attempt.failure,
                Failure::Unreachable("connection refused".into())
            );
            assert!(!attempt.may_have_applied);
        }
        // The last round starts with a quarter of a second left at least.
        assert!(
            took >= Duration::from_millis(1000) && took < Duration::from_secs(4),
            "{twin:?}: {took:?}"
        );
        assert!(error.to_string().contains("it was not run"), "{error}");
        assert!(matches!(client.get("down"), Err(Error::Unavailable { .. })));
        assert!(matches!(client.status(), Err(Error::Unavailable { .. })));
        assert!(client.members().iter().all(|m| m.status.is_err()));
    }
}

/// Without a majority a member takes the write and answers, after its request timeout, that
/// the outcome is unknown; the client tries the others (down) until its deadline and says so.
/// Once the others are back, the client's next write settles the first: the list holds it at
/// most once, before the next, and no longer changes.
fn a_write_without_a_majority_is_unknown_until_the_next_write(runtime: Runtime) {
    let mut cluster = Cluster::builder(runtime)
        .tuning("request_timeout_ms", 500)
        .start();
    let survivor = cluster.wait_for_leader();
    let setup = Setup::of(&cluster).timeout(Duration::from_secs(2));
    for twin in TWINS {
        let key = format!("unknown-{twin:?}");
        let mut client = setup.build(twin);
        client.append(&key, "first").unwrap();
        let others: Vec<usize> = (0..cluster.len()).filter(|&i| i != survivor).collect();
        for &i in &others {
            cluster.kill(i);
        }
        let error = client.append(&key, "maybe").unwrap_err();
        let Error::OutcomeUnknown { attempts } = &error else {
            panic!("{twin:?}: expected an unknown outcome, got {error:?}");
        };
        let survivor_entry = &cluster.members[survivor].entry;
        let timed_out = attempts
            .iter()
            .find(|a| &a.server == survivor_entry)
            .expect("the survivor was tried");
        assert!(timed_out.may_have_applied, "{attempts:?}");
        match &timed_out.failure {
            Failure::Status {
                status: 503,
                message,
            } => {
                assert!(message.contains("its outcome is unknown"), "{message}")
            }
            other => panic!("{twin:?}: {other:?}"),
        }
        assert!(error.to_string().contains("it may have applied"), "{error}");

        for &i in &others {
            cluster.start(i);
        }
        cluster.wait_for_leader();
        let next = client.append(&key, "next").unwrap();
        let settled = client.get(&key).unwrap().value;
        assert!(
            settled == list(&["first", "next"]) || settled == list(&["first", "maybe", "next"]),
            "{twin:?}: {settled:?}"
        );
        assert_eq!(next.value, settled, "{twin:?}");
        // Copies of the unknown write may still sit undecided in members' logs (one per
        // attempt); decided now, each is refused for its old seq. Checking that nothing changes
        // takes a wait: a second of heartbeats, in which the leader re-sends what it has not
        // had acknowledged.
        thread::sleep(Duration::from_secs(1));
        assert_eq!(client.get(&key).unwrap().value, settled, "{twin:?}");
    }
}

/// 480 requests wait on a member without a majority; the next is refused at once with
/// `503 overloaded`, which did not run it, and the other members are down: unavailable, not
/// unknown.
fn overloaded_members_leave_a_write_unavailable(runtime: Runtime) {
    const CAP: usize = 480;
    let mut cluster = Cluster::builder(runtime)
        .tuning("request_timeout_ms", 60_000)
        .start();
    let target = 0;
    for i in 1..cluster.len() {
        cluster.kill(i);
    }
    let request = br#"{"op": "put", "key": "crowd", "value": "v"}"#;
    let head = format!(
        "POST /client-request HTTP/1.1\r\nHost: crowd\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        request.len()
    );
    let mut crowd = Vec::new();
    for _ in 0..CAP {
        let mut stream = TcpStream::connect(cluster.members[target].listen).unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(request).unwrap();
        crowd.push(stream);
        // Connections beyond the listen backlog wait for the member to accept the earlier ones.
        if crowd.len() % 100 == 0 {
            let n = crowd.len() as u64;
            wait_for(
                "the member takes the crowd in",
                Duration::from_secs(30),
                || metric(&cluster, target, "paxos_client_requests_waiting") >= Some(n),
            );
        }
    }
    wait_for("480 requests wait", Duration::from_secs(30), || {
        metric(&cluster, target, "paxos_client_requests_waiting") == Some(CAP as u64)
    });
    let setup = Setup::of(&cluster).timeout(Duration::from_secs(2));
    for twin in TWINS {
        let mut client = setup.build(twin);
        let error = client.put("crowd", "mine").unwrap_err();
        let Error::Unavailable { attempts } = &error else {
            panic!("{twin:?}: expected unavailable, got {error:?}");
        };
        let refused = &attempts[0];
        assert_eq!(refused.server, cluster.members[target].entry);
        assert!(!refused.may_have_applied);
        match &refused.failure {
            Failure::Status {
                status: 503,
                message,
            } => {
                assert!(message.contains("overloaded"), "{message}")
            }
            other => panic!("{twin:?}: {other:?}"),
        }
        assert!(error.to_string().contains("overloaded"), "{error}");
    }
    drop(crowd);
}
