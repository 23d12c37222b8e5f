//! `paxos`: the command line tool of Twin Paxos, on the blocking client (`docs/cli.md`).
//!
//! Each command is one call of `paxos_client::blocking::Client`, so the tool retries across
//! members and applies each write once as the library does; what it adds is the flags, the
//! output (plain or `--json`) and the exit statuses.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use paxos_client::blocking::Client;
use paxos_client::{
    Attempt, Cas, Consistency, Done, Error, Failure, MemberStatus, ReadOptions, Status, Value,
    Watch,
};
use paxos_core::Answer;
use serde::Serialize;
use serde_json::{Value as Json, json};

/// Exit statuses (`docs/cli.md`).
const OK: u8 = 0;
/// The command was refused, did not run, or found what it did not want (a `cas` mismatch, a
/// member down for `members`).
const FAILED: u8 = 1;
/// A usage or configuration error: nothing was sent. clap exits with 2 too.
const USAGE: u8 = 2;
/// A write whose outcome is unknown: it may have applied.
const UNKNOWN: u8 = 3;

/// Runs commands on a Twin Paxos cluster, trying its members in turn; writes apply once.
#[derive(Debug, Parser)]
#[command(name = "paxos", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    tls: TlsArgs,
    /// Print each answer as JSON, in the shape the HTTP API gives it
    #[arg(long, global = true)]
    json: bool,
    /// How long a command may take in all, over every member, in seconds
    #[arg(long, global = true, value_name = "SECONDS", default_value = "10", value_parser = seconds)]
    timeout: Duration,
    #[command(subcommand)]
    command: Command,
}

const AFTER_HELP: &str = "\
The members come from --servers or --config, else the PAXOS_SERVERS environment variable
(host:port,...). With TLS, write them https://host:port or give --ca (PAXOS_CA); a cluster that
requires client certificates takes --cert and --key (PAXOS_CERT, PAXOS_KEY). Exit status: 0 done,
1 refused or failed (a cas that did not match, no member answered), 2 usage or configuration
error, 3 the outcome of a write is unknown.";

#[derive(Debug, Args)]
#[group(multiple = false)]
struct Target {
    /// The members' addresses, comma-separated
    #[arg(
        long,
        short,
        global = true,
        value_name = "HOST:PORT,...",
        value_delimiter = ','
    )]
    servers: Vec<String>,
    /// Take the members from the cluster's config file (its `servers`)
    #[arg(long, short, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// HTTPS to a cluster with TLS; each flag falls back on its environment variable.
#[derive(Debug, Args)]
struct TlsArgs {
    /// The CA certificates (PEM) the members' certificates must chain to: the cluster's
    /// `tls.ca`. Speaks HTTPS to members given without a scheme [env: PAXOS_CA]
    #[arg(long, global = true, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// A client certificate (PEM) for a cluster with `require_client_cert`; needs --key
    /// [env: PAXOS_CERT]
    #[arg(long, global = true, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// The client certificate's private key (PEM) [env: PAXOS_KEY]
    // An id of its own: the commands' positional `key` is another argument.
    #[arg(long = "key", id = "client_key", global = true, value_name = "FILE")]
    client_key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a key's value: a string, or a list one item a line; nothing when absent
    Get {
        key: String,
        /// Answer from the first member's own store at once, without asking the leader; it may
        /// miss recent writes
        #[arg(long)]
        serializable: bool,
    },
    /// Set a key to a string
    Put { key: String, value: String },
    /// Remove a key (removing an absent key succeeds)
    Delete { key: String },
    /// Set a key to VALUE only if it holds --expected (or is --absent); exit 1 if it does not
    Cas(CasArgs),
    /// Append a string to the list at a key (an absent key is an empty list)
    Append { key: String, value: String },
    /// Wait for a key to change after an index, and print its value: "MODIFIED VALUE-AS-JSON"
    Watch(WatchArgs),
    /// Print one member's view of the cluster (the first member that answers)
    Status,
    /// Print every member's view of the cluster; exit 1 if one does not answer
    Members,
}

#[derive(Debug, Args)]
struct CasArgs {
    key: String,
    value: String,
    /// The value the key must hold
    #[arg(long, value_name = "OLD", required_unless_present = "absent")]
    expected: Option<String>,
    /// The key must be absent
    #[arg(long, conflicts_with = "expected")]
    absent: bool,
}

#[derive(Debug, Args)]
struct WatchArgs {
    key: String,
    /// The index to watch from: a change after it answers, so 0 answers at once with the
    /// value of any key ever written
    #[arg(long, value_name = "INDEX", default_value_t = 0)]
    after: u64,
    /// How long to wait for a change, in seconds (at most the cluster's max_watch_wait_ms)
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    wait: Duration,
    /// Keep watching, one line per change, until interrupted
    #[arg(long, short)]
    follow: bool,
}

fn seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(seconds.is_finite() && seconds > 0.0 && seconds < 1e9) {
        return Err(format!("`{text}` is not a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut client = match client(&cli) {
        Ok(client) => client,
        Err(error) => return fail(&error, false),
    };
    let json = cli.json;
    // The only client a member takes TLS from and then drops without a word: one without a
    // certificate, when the cluster requires one.
    let certless =
        file(&cli.tls.ca, "PAXOS_CA").is_some() && file(&cli.tls.cert, "PAXOS_CERT").is_none();
    let result = match &cli.command {
        Command::Get { key, serializable } => client
            .get_with(key, &read_options(*serializable))
            .map(|done| {
                print_done(json, &done, |done| value_lines(done.value.as_ref()));
                OK
            }),
        Command::Put { key, value } => client.put(key, value).map(|done| {
            print_done(json, &done, |done| format!("OK, index {}", done.index));
            OK
        }),
        Command::Delete { key } => client.delete(key).map(|done| {
            print_done(json, &done, |done| format!("OK, index {}", done.index));
            OK
        }),
        Command::Append { key, value } => client.append(key, value).map(|done| {
            print_done(json, &done, |done| {
                let items = match &done.value {
                    Some(Value::List(items)) => items.len(),
                    _ => 0,
                };
                let plural = if items == 1 { "" } else { "s" };
                format!(
                    "OK, index {}; the list holds {items} item{plural}",
                    done.index
                )
            });
            OK
        }),
        Command::Cas(args) => {
            let expected = if args.absent {
                None
            } else {
                args.expected.as_deref()
            };
            client
                .cas(&args.key, expected, &args.value)
                .map(|cas| print_cas(json, &args.key, &cas))
        }
        Command::Watch(args) => watch(&client, json, args),
        Command::Status => client.status().map(|status| {
            print_status(json, &status);
            OK
        }),
        Command::Members => Ok(print_members(json, &client.members())),
    };
    match result {
        Ok(status) => ExitCode::from(status),
        Err(error) => fail(&error, certless),
    }
}

/// The client of `--servers`, `--config` or `PAXOS_SERVERS`, in that order.
fn client(cli: &Cli) -> Result<Client, Error> {
    let builder = Client::builder().timeout(cli.timeout);
    let builder = match (&cli.target.config, cli.target.servers.as_slice()) {
        (Some(path), _) => builder.config_file(path),
        (None, []) => match std::env::var("PAXOS_SERVERS") {
            Ok(servers) if !servers.trim().is_empty() => {
                builder.servers(servers.split(',').map(str::trim))
            }
            _ => {
                return Err(Error::Config(
                    "no servers: give --servers HOST:PORT,... or --config FILE, or set \
                     PAXOS_SERVERS"
                        .to_owned(),
                ));
            }
        },
        (None, servers) => builder.servers(servers.iter().map(|s| s.trim())),
    };
    let builder = match file(&cli.tls.ca, "PAXOS_CA") {
        Some(ca) => builder.ca_file(ca),
        None => builder,
    };
    let builder = match (
        file(&cli.tls.cert, "PAXOS_CERT"),
        file(&cli.tls.client_key, "PAXOS_KEY"),
    ) {
        (Some(cert), Some(key)) => builder.client_cert_files(cert, key),
        (None, None) => builder,
        (Some(_), None) => {
            return Err(Error::Config(
                "a client certificate needs its key: give --key FILE or set PAXOS_KEY".to_owned(),
            ));
        }
        (None, Some(_)) => {
            return Err(Error::Config(
                "a client key needs its certificate: give --cert FILE or set PAXOS_CERT".to_owned(),
            ));
        }
    };
    builder.build()
}

/// A file from its flag, else from its environment variable.
fn file(flag: &Option<PathBuf>, variable: &str) -> Option<PathBuf> {
    flag.clone().or_else(|| {
        std::env::var_os(variable)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

/// The members an error's attempts went to, each once, sorted.
fn servers_of(attempts: &[Attempt]) -> String {
    let mut servers: Vec<&str> = attempts.iter().map(|a| a.server.as_str()).collect();
    servers.sort_unstable();
    servers.dedup();
    servers.join(", ")
}

/// Prints an error on stderr and names the exit status it calls for. `certless`: the client
/// speaks TLS without a certificate of its own.
fn fail(error: &Error, certless: bool) -> ExitCode {
    let status = match error {
        Error::Config(_) => USAGE,
        Error::OutcomeUnknown { .. } => UNKNOWN,
        _ => FAILED,
    };
    match error {
        Error::Unavailable { attempts }
            if attempts
                .iter()
                .all(|a| matches!(a.failure, Failure::Unreachable(_))) =>
        {
            let why = match &attempts.last().map(|a| &a.failure) {
                Some(Failure::Unreachable(why)) => why.clone(),
                _ => String::new(),
            };
            eprintln!(
                "paxos: no member answered at {} ({why}): is the cluster running there?",
                servers_of(attempts)
            );
        }
        // Every member refused the handshake: the client's TLS files, not the cluster, are
        // what to look at.
        Error::Unavailable { attempts }
            if attempts
                .iter()
                .all(|a| matches!(a.failure, Failure::Tls(_))) =>
        {
            let why = match &attempts.last().map(|a| &a.failure) {
                Some(Failure::Tls(why)) => why.clone(),
                _ => String::new(),
            };
            eprintln!(
                "paxos: TLS failed with every member ({}): {why}; check --ca, --cert and --key; \
                 nothing was run",
                servers_of(attempts)
            );
        }
        // Under TLS 1.3 a member refuses a missing client certificate after the client's side of
        // the handshake, so the client sees only a connection broken under its request.
        Error::Unavailable { attempts } | Error::OutcomeUnknown { attempts }
            if certless
                && attempts
                    .iter()
                    .all(|a| matches!(a.failure, Failure::NoAnswer(_) | Failure::Tls(_))) =>
        {
            eprintln!(
                "paxos: {error}; every member broke the connection or refused TLS: if the cluster has \
                 `require_client_cert`, give --cert and --key"
            );
        }
        error => eprintln!("paxos: {error}"),
    }
    ExitCode::from(status)
}

/// JSON as the servers write it, fields in their order.
fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("answers serialize")
}

fn print_done(json: bool, done: &Done, text: impl Fn(&Done) -> String) {
    if json {
        let answer = Answer::read(done.value.clone(), done.index, done.modified);
        println!("{}", to_json(&answer));
        return;
    }
    let text = text(done);
    if !text.is_empty() {
        println!("{text}");
    }
}

/// A value as plain text: a string as it is, a list one item a line, nothing when absent.
fn value_lines(value: Option<&Value>) -> String {
    match value {
        None => String::new(),
        Some(Value::Str(text)) => text.clone(),
        Some(Value::List(items)) => items.join("\n"),
    }
}

fn print_cas(json: bool, key: &str, cas: &Cas) -> u8 {
    match cas {
        Cas::Swapped(done) => {
            print_done(json, done, |done| format!("OK, index {}", done.index));
            OK
        }
        Cas::Mismatch { value, modified } => {
            if json {
                println!("{}", to_json(&Answer::mismatch(value.clone(), *modified)));
            }
            let holds = match value {
                None => "is absent".to_owned(),
                Some(value) => format!("holds {}", json!(value)),
            };
            eprintln!(
                "paxos: cas: `{key}` {holds} (changed at index {modified}), not what was \
                 expected; nothing changed"
            );
            FAILED
        }
    }
}

/// A watch's answer as the servers write it (`GET /watch`).
#[derive(Serialize)]
struct WatchJson<'a> {
    changed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a Option<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    modified: Option<u64>,
    index: u64,
}

fn watch(client: &Client, json: bool, args: &WatchArgs) -> Result<u8, Error> {
    let mut after = args.after;
    loop {
        let seen = client.watch(&args.key, after, args.wait)?;
        match (&seen, json) {
            (
                Watch::Changed {
                    value,
                    modified,
                    index,
                },
                true,
            ) => {
                let answer = WatchJson {
                    changed: true,
                    value: Some(value),
                    modified: Some(*modified),
                    index: *index,
                };
                println!("{}", to_json(&answer));
            }
            (Watch::Unchanged { index }, true) => {
                let answer = WatchJson {
                    changed: false,
                    value: None,
                    modified: None,
                    index: *index,
                };
                println!("{}", to_json(&answer));
            }
            (
                Watch::Changed {
                    value, modified, ..
                },
                false,
            ) => {
                println!("{modified} {}", json!(value));
            }
            // Following, silence is the news that nothing changed.
            (Watch::Unchanged { .. }, false) if args.follow => {}
            (Watch::Unchanged { index }, false) => println!("unchanged through index {index}"),
        }
        if !args.follow {
            return Ok(OK);
        }
        after = seen.next_after(after);
    }
}

fn print_status(json: bool, status: &Status) {
    if json {
        println!(
            "{}",
            serde_json::to_string(status).expect("a status serializes")
        );
        return;
    }
    let none = "(none)".to_owned();
    println!(
        "member      {} ({}, {})",
        status.entry.as_ref().unwrap_or(&none),
        status.runtime,
        status.role
    );
    println!("leader      {}", status.leader.as_ref().unwrap_or(&none));
    println!(
        "ballot      round {} of member {}",
        status.ballot.round, status.ballot.member
    );
    println!("commit      {}", status.commit_index);
    println!("applied     {}", status.applied_index);
    println!("lag         {}", lag(status));
    println!("servers     {}", status.servers.join(", "));
    println!("membership  {}", status.membership);
}

/// A get's options: linearizable unless `--serializable`.
fn read_options(serializable: bool) -> ReadOptions {
    let consistency = if serializable {
        Consistency::Serializable
    } else {
        Consistency::Linearizable
    };
    ReadOptions::default().consistency(consistency)
}

/// How many decided slots a leader has announced that the member has not learned yet.
fn lag(status: &Status) -> u64 {
    status
        .known_commit_index
        .saturating_sub(status.commit_index)
}

fn print_members(json: bool, members: &[MemberStatus]) -> u8 {
    let all_answered = members.iter().all(|m| m.status.is_ok());
    if json {
        let list: Vec<Json> = members
            .iter()
            .map(|m| match &m.status {
                Ok(status) => json!({"server": m.server, "status": status}),
                Err(error) => json!({"server": m.server, "error": error.to_string()}),
            })
            .collect();
        println!("{}", Json::Array(list));
    } else {
        let width = members.iter().map(|m| m.server.len()).max().unwrap_or(0);
        let leader_width = members
            .iter()
            .filter_map(|m| m.status.as_ref().ok()?.leader.as_ref().map(String::len))
            .max()
            .unwrap_or(0)
            .max("LEADER".len());
        println!(
            "{:width$}  {:11}  {:leader_width$}  {:>8}  {:>8}  {:>5}",
            "SERVER", "ROLE", "LEADER", "COMMIT", "APPLIED", "LAG"
        );
        for member in members {
            match &member.status {
                Ok(status) => println!(
                    "{:width$}  {:11}  {:leader_width$}  {:>8}  {:>8}  {:>5}",
                    member.server,
                    status.role,
                    status.leader.as_deref().unwrap_or("-"),
                    status.commit_index,
                    status.applied_index,
                    lag(status)
                ),
                Err(error) => println!("{:width$}  {}", member.server, no_status(error)),
            }
        }
    }
    if all_answered { OK } else { FAILED }
}

/// Why a member gave no status, in a few words.
fn no_status(error: &Error) -> String {
    match error {
        Error::Unavailable { attempts } | Error::OutcomeUnknown { attempts } => {
            match attempts.last() {
                Some(attempt) => format!("no answer: {}", attempt.failure),
                None => "no answer".to_owned(),
            }
        }
        error => error.to_string(),
    }
}
