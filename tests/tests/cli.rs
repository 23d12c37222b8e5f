//! The `paxos` command line tool (`crates/paxos-cli`) against both servers: every command, in
//! plain text and `--json`, with the members from `--servers`, `--config` or `PAXOS_SERVERS`;
//! and its exit statuses: 1 for a refusal, a `cas` that did not match, a member down for
//! `members` or no member answering (with a message that says so), 2 for usage and
//! configuration errors, 3 for a write whose outcome is unknown.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use paxos_tests::runtime::cli_binary;
use paxos_tests::{Cluster, Json, Runtime, json, scenarios};

scenarios! {
    the_cli_runs_every_command,
    the_cli_says_what_failed_with_its_exit_status,
}

/// What one run of `paxos` said.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Json {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

/// Runs `paxos` with `args` and no `PAXOS_SERVERS` unless `env` gives it.
fn paxos(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(cli_binary());
    command.args(args).env_remove("PAXOS_SERVERS");
    command.envs(env.iter().copied());
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("run paxos");
    Run {
        code: status.code(),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

/// Runs `paxos --servers <every member> args...` and expects exit status `code`.
fn expect(cluster: &Cluster, code: i32, args: &[&str]) -> Run {
    let servers = servers(cluster);
    let mut all = vec!["--servers", servers.as_str()];
    all.extend_from_slice(args);
    let run = paxos(&all, &[]);
    assert_eq!(run.code, Some(code), "paxos {args:?}: {run:?}");
    run
}

fn servers(cluster: &Cluster) -> String {
    let entries: Vec<&str> = cluster.members.iter().map(|m| m.entry.as_str()).collect();
    entries.join(",")
}

fn index_of(run: &Run) -> u64 {
    let text = run.stdout.trim();
    let digits = text
        .strip_prefix("OK, index ")
        .unwrap_or_else(|| panic!("{run:?}"));
    let digits: String = digits.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap()
}

fn the_cli_runs_every_command(runtime: Runtime) {
    let cluster = Cluster::builder(runtime).start();
    let put = expect(&cluster, 0, &["put", "greeting", "hello"]);
    let put_index = index_of(&put);
    assert_eq!(expect(&cluster, 0, &["get", "greeting"]).stdout, "hello\n");
    // Absent: nothing printed, and `--json` tells it from an empty string.
    assert_eq!(expect(&cluster, 0, &["get", "missing"]).stdout, "");
    let absent = expect(&cluster, 0, &["get", "missing", "--json"]).json();
    assert_eq!(absent["value"], Json::Null);

    expect(&cluster, 0, &["append", "log", "a"]);
    let appended = expect(&cluster, 0, &["append", "log", "b"]);
    assert!(
        appended.stdout.ends_with("; the list holds 2 items\n"),
        "{appended:?}"
    );
    assert_eq!(expect(&cluster, 0, &["get", "log"]).stdout, "a\nb\n");
    let list = expect(&cluster, 0, &["--json", "get", "log"]);
    // The fields in the servers' order, as a raw request gets them.
    assert!(
        list.stdout
            .starts_with(r#"{"ok":true,"value":["a","b"],"index":"#),
        "{list:?}"
    );
    let list = list.json();
    assert_eq!(list["ok"], json!(true));
    assert_eq!(list["value"], json!(["a", "b"]));
    let log_modified = list["modified"].as_u64().unwrap();

    // A cas that does not match changes nothing and exits 1, saying what the key holds.
    let mismatch = expect(&cluster, 1, &["cas", "greeting", "hi", "--expected", "bye"]);
    assert_eq!(mismatch.stdout, "");
    assert!(
        mismatch.stderr.contains("`greeting` holds \"hello\""),
        "{mismatch:?}"
    );
    let mismatch = expect(
        &cluster,
        1,
        &["cas", "greeting", "hi", "--expected", "bye", "--json"],
    );
    assert_eq!(
        mismatch.json(),
        json!({"ok": false, "value": "hello", "modified": put_index})
    );
    expect(
        &cluster,
        0,
        &["cas", "greeting", "hi", "--expected", "hello"],
    );
    expect(&cluster, 0, &["cas", "fresh", "new", "--absent"]);
    expect(&cluster, 1, &["cas", "fresh", "newer", "--absent"]);
    assert_eq!(expect(&cluster, 0, &["get", "fresh"]).stdout, "new\n");

    let deleted = index_of(&expect(&cluster, 0, &["delete", "greeting"]));
    assert_eq!(expect(&cluster, 0, &["get", "greeting"]).stdout, "");

    // A watch from before the delete answers at once with it; one from the list's last change
    // waits out its wait.
    let after = put_index.to_string();
    let watched = expect(&cluster, 0, &["watch", "greeting", "--after", &after]);
    assert_eq!(watched.stdout, format!("{deleted} null\n"));
    let after = log_modified.to_string();
    let quiet = expect(
        &cluster,
        0,
        &["watch", "log", "--after", &after, "--wait", "0.3"],
    );
    assert!(
        quiet.stdout.starts_with("unchanged through index "),
        "{quiet:?}"
    );
    let quiet = expect(
        &cluster,
        0,
        &["watch", "log", "--after", &after, "--wait", "0.3", "--json"],
    );
    assert_eq!(quiet.json()["changed"], json!(false));

    // Following: one line per change, as it comes.
    let mut follower = Command::new(cli_binary())
        .args(["--servers", &servers(&cluster), "watch", "news", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (lines, received) = mpsc::channel();
    let stdout = follower.stdout.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    for value in ["first", "second"] {
        let put = cluster.ok(0, &json!({"op": "put", "key": "news", "value": value}));
        let line = received
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("no line for {value}: {e}"));
        assert_eq!(line, format!("{} \"{value}\"", put["index"]));
    }
    let _ = follower.kill();
    let _ = follower.wait();

    // /status and every member's.
    let status = expect(&cluster, 0, &["status"]);
    assert!(
        status.stdout.contains("\nleader      127.0.0.1:"),
        "{status:?}"
    );
    assert!(status.stdout.contains("\nlag         "), "{status:?}");
    let status = expect(&cluster, 0, &["status", "--json"]).json();
    assert!(status["known_commit_index"].is_u64(), "{status}");
    assert_eq!(status["servers"], json!(cluster.config.servers));
    assert_eq!(status["runtime"], json!(runtime.name()));
    let members = expect(&cluster, 0, &["members"]);
    let lines: Vec<&str> = members.stdout.lines().collect();
    assert_eq!(lines.len(), 1 + cluster.len(), "{members:?}");
    assert!(lines[0].starts_with("SERVER"));
    assert_eq!(
        lines.iter().filter(|l| l.contains(" leader ")).count(),
        1,
        "{members:?}"
    );
    let members = expect(&cluster, 0, &["members", "--json"]).json();
    let members = members.as_array().unwrap();
    assert_eq!(members.len(), cluster.len());
    for (member, listed) in members.iter().zip(&cluster.members) {
        assert_eq!(member["server"], json!(listed.entry));
        assert_eq!(member["status"]["self"], json!(listed.entry));
    }

    // The members from the cluster's config file, or from the environment.
    let config = cluster.config_path.display().to_string();
    let from_file = paxos(&["--config", &config, "get", "log"], &[]);
    assert_eq!(
        (from_file.code, from_file.stdout.as_str()),
        (Some(0), "a\nb\n")
    );
    let from_env = paxos(&["get", "log"], &[("PAXOS_SERVERS", &servers(&cluster))]);
    assert_eq!(
        (from_env.code, from_env.stdout.as_str()),
        (Some(0), "a\nb\n")
    );
}

fn the_cli_says_what_failed_with_its_exit_status(runtime: Runtime) {
    let mut cluster = Cluster::builder(runtime)
        .tuning("request_timeout_ms", 500)
        .start();

    // Usage and configuration: 2, and nothing sent.
    assert_eq!(paxos(&[], &[]).code, Some(2));
    assert_eq!(paxos(&["--servers", "a:1", "frob"], &[]).code, Some(2));
    let no_servers = paxos(&["get", "k"], &[]);
    assert_eq!(no_servers.code, Some(2));
    assert!(
        no_servers.stderr.contains("no servers: give --servers"),
        "{no_servers:?}"
    );
    let bad = paxos(&["--servers", "localhost", "get", "k"], &[]);
    assert_eq!(bad.code, Some(2));
    assert!(
        bad.stderr.contains("`localhost`: expected HOST:PORT"),
        "{bad:?}"
    );
    let missing = paxos(&["--config", "/nonexistent.json", "get", "k"], &[]);
    assert_eq!(missing.code, Some(2));
    assert!(
        missing.stderr.contains("cannot read the config file"),
        "{missing:?}"
    );
    let help = paxos(&["--help"], &[]);
    assert_eq!(help.code, Some(0));
    assert!(help.stdout.contains("Exit status: 0 done"), "{help:?}");

    // Refused: 1, with the server's sentence.
    expect(&cluster, 0, &["put", "s", "a string"]);
    let refused = expect(&cluster, 1, &["append", "s", "x"]);
    assert!(
        refused.stderr.contains("refused the request (400)"),
        "{refused:?}"
    );
    assert_eq!(expect(&cluster, 0, &["get", "s"]).stdout, "a string\n");

    // A member down: `members` lists it and exits 1.
    let leader = cluster.wait_for_leader();
    let down = (leader + 1) % cluster.len();
    cluster.kill(down);
    let members = expect(&cluster, 1, &["members"]);
    let line = members
        .stdout
        .lines()
        .find(|l| l.starts_with(&cluster.members[down].entry))
        .unwrap_or_else(|| panic!("{members:?}"));
    assert!(
        line.contains("no answer: unreachable: connection refused"),
        "{line}"
    );

    // No majority: the write's outcome is unknown, 3.
    let other = (0..cluster.len())
        .find(|&i| i != leader && i != down)
        .unwrap();
    cluster.kill(other);
    let unknown = expect(&cluster, 3, &["put", "k", "v", "--timeout", "2"]);
    assert!(
        unknown.stderr.contains("the command's outcome is unknown"),
        "{unknown:?}"
    );

    // Without a majority a linearizable read cannot be confirmed (1), while a serializable one
    // is answered from the leader's own store (0).
    let at_leader = |args: &[&str]| {
        let entry = cluster.members[leader].entry.as_str();
        paxos(&[&["--servers", entry], args].concat(), &[])
    };
    let read = at_leader(&["get", "s", "--timeout", "1"]);
    assert_eq!(read.code, Some(1), "{read:?}");
    let read = at_leader(&["get", "s", "--serializable", "--timeout", "1"]);
    assert_eq!(
        (read.code, read.stdout.as_str()),
        (Some(0), "a string\n"),
        "{read:?}"
    );

    // Nobody home: 1, and a message that says so.
    cluster.kill(leader);
    let nobody = expect(&cluster, 1, &["get", "k", "--timeout", "1"]);
    let mut entries: Vec<&str> = cluster.members.iter().map(|m| m.entry.as_str()).collect();
    entries.sort_unstable();
    assert_eq!(
        nobody.stderr,
        format!(
            "paxos: no member answered at {} (connection refused): is the cluster running \
             there?\n",
            entries.join(", ")
        )
    );
}
