//! The client library's twins and the `paxos` tool over HTTPS, against both servers with TLS:
//! put and get with the cluster's CA (servers written `https://`, or plain with a CA file), with
//! a client certificate where the cluster requires one; and the clear errors of what does not
//! fit: no CA, a file that is missing or not PEM, another CA, a certificate for another name, no
//! client certificate where one is required. Certificates are made at run time
//! (`paxos_tests::tls`).

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use paxos_client::{Error, Failure, Value};
use paxos_tests::runtime::cli_binary;
use paxos_tests::tempdir::TempDir;
use paxos_tests::tls::{Certs, Pair};
use paxos_tests::{Cluster, Runtime, scenarios, wait_for};

scenarios! {
    both_clients_and_the_cli_put_and_get_over_https,
    a_cluster_that_requires_client_certs_takes_the_clients_one,
    what_does_not_fit_is_a_clear_error,
}

/// How long a call may take: far more than a refused handshake needs, which ends the call at
/// once (the scenarios check that it did).
const TIMEOUT: Duration = Duration::from_secs(20);
/// A call's deadline where a member refuses the client's certificate: under TLS 1.3 it does so
/// after the client's side of the handshake, which the client may see only as a broken
/// connection, and so waits out.
const SHORT: Duration = Duration::from_secs(3);
/// Well under `TIMEOUT`: a refused handshake ends the call without waiting out its deadline.
const PROMPT: Duration = Duration::from_secs(5);

/// Which twin of the client.
#[derive(Clone, Copy, Debug)]
enum Twin {
    Blocking,
    Async,
}

const TWINS: [Twin; 2] = [Twin::Blocking, Twin::Async];

/// The TLS settings of a client, the same for both twins and the tool.
#[derive(Clone, Debug, Default)]
struct Tls<'a> {
    ca: Option<&'a Path>,
    identity: Option<&'a Pair>,
}

fn certs() -> (TempDir, Certs) {
    let dir = TempDir::new("client-tls-certs");
    let certs = Certs::make(dir.path());
    (dir, certs)
}

fn entries(cluster: &Cluster, scheme: &str) -> Vec<String> {
    let entries = cluster.members.iter().map(|m| m.entry.as_str());
    entries.map(|entry| format!("{scheme}{entry}")).collect()
}

/// Puts `value` at `key` and reads it back with a client of `twin`, or the first error.
fn put_and_get(
    twin: Twin,
    servers: &[String],
    tls: &Tls,
    key: &str,
    value: &str,
    timeout: Duration,
) -> Result<Option<Value>, Error> {
    match twin {
        Twin::Blocking => {
            let mut builder = paxos_client::blocking::Client::builder()
                .servers(servers.iter().cloned())
                .timeout(timeout);
            if let Some(ca) = tls.ca {
                builder = builder.ca_file(ca);
            }
            if let Some(pair) = tls.identity {
                builder = builder.client_cert_files(&pair.cert, &pair.key);
            }
            let mut client = builder.build()?;
            client.put(key, value)?;
            Ok(client.get(key)?.value)
        }
        Twin::Async => {
            let mut builder = paxos_client::Client::builder()
                .servers(servers.iter().cloned())
                .timeout(timeout);
            if let Some(ca) = tls.ca {
                builder = builder.ca_file(ca);
            }
            if let Some(pair) = tls.identity {
                builder = builder.client_cert_files(&pair.cert, &pair.key);
            }
            let mut client = builder.build()?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            runtime.block_on(async {
                client.put(key, value).await?;
                Ok(client.get(key).await?.value)
            })
        }
    }
}

/// What one run of `paxos` said.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `paxos --servers <servers> [TLS flags] args...`, without the environment's settings.
fn paxos(servers: &[String], tls: &Tls, args: &[&str]) -> Run {
    let mut command = Command::new(cli_binary());
    command.arg("--servers").arg(servers.join(","));
    if let Some(ca) = tls.ca {
        command.arg("--ca").arg(ca);
    }
    if let Some(pair) = tls.identity {
        command
            .arg("--cert")
            .arg(&pair.cert)
            .arg("--key")
            .arg(&pair.key);
    }
    command.args(args);
    for variable in ["PAXOS_SERVERS", "PAXOS_CA", "PAXOS_CERT", "PAXOS_KEY"] {
        command.env_remove(variable);
    }
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

/// Every member's TLS failure in `error`, which must be a call that ran nothing.
fn tls_failures(error: &Error) -> Vec<String> {
    let Error::Unavailable { attempts } = error else {
        panic!("expected unavailable, with nothing run: {error:?}");
    };
    attempts
        .iter()
        .map(|attempt| match &attempt.failure {
            Failure::Tls(why) => why.clone(),
            other => panic!("expected a TLS failure, got {other:?} in {error}"),
        })
        .collect()
}

/// A call refused in the handshake by every member, promptly, with each member saying `why`.
fn refused_promptly(twin: Twin, servers: &[String], tls: &Tls, why: &str) {
    let started = Instant::now();
    let error =
        put_and_get(twin, servers, tls, "k", "v", TIMEOUT).expect_err("a refused handshake");
    let failures = tls_failures(&error);
    assert!(
        started.elapsed() < PROMPT,
        "{twin:?} took {:?}: {error}",
        started.elapsed()
    );
    assert_eq!(failures.len(), servers.len(), "one round: {error}");
    assert!(
        failures.iter().all(|f| f.contains(why)),
        "{twin:?}: {error}"
    );
}

/// A run of the tool that failed its handshake with every member: exit 1 and one line that says
/// so and names the flags to check.
fn cli_refused(run: &Run, why: &str) {
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(run.stdout, "", "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(
        run.stderr
            .starts_with("paxos: TLS failed with every member")
            && run.stderr.contains(why)
            && run.stderr.contains("check --ca, --cert and --key"),
        "{run:?}"
    );
}

fn both_clients_and_the_cli_put_and_get_over_https(runtime: Runtime) {
    let (_dir, certs) = certs();
    let cluster = Cluster::builder(runtime)
        .tls(&certs, &certs.member, false)
        .start();
    let tls = Tls {
        ca: Some(&certs.ca),
        identity: None,
    };
    // Written https://, and written plain with the CA file making them so.
    for scheme in ["https://", ""] {
        let servers = entries(&cluster, scheme);
        for twin in TWINS {
            let key = format!("{twin:?}{scheme}");
            let value = put_and_get(twin, &servers, &tls, &key, "over tls", TIMEOUT);
            assert_eq!(
                value,
                Ok(Some(Value::Str("over tls".into()))),
                "{twin:?} {servers:?}"
            );
        }
        let key = format!("cli{scheme}");
        let put = paxos(&servers, &tls, &["put", &key, "from the tool"]);
        assert_eq!(put.code, Some(0), "{put:?}");
        let get = paxos(&servers, &tls, &["get", &key]);
        assert_eq!(
            (get.code, get.stdout.as_str()),
            (Some(0), "from the tool\n"),
            "{get:?}"
        );
    }
    // The tool takes its files from the environment too.
    let servers = entries(&cluster, "");
    let get = Command::new(cli_binary())
        .args(["get", "cli"])
        .env("PAXOS_SERVERS", servers.join(","))
        .env("PAXOS_CA", &certs.ca)
        .output()
        .expect("run paxos");
    assert_eq!(
        String::from_utf8_lossy(&get.stdout),
        "from the tool\n",
        "{get:?}"
    );
}

fn a_cluster_that_requires_client_certs_takes_the_clients_one(runtime: Runtime) {
    let (_dir, certs) = certs();
    let cluster = Cluster::builder(runtime)
        .tls(&certs, &certs.member, true)
        .start();
    let servers = entries(&cluster, "https://");
    // The client presents a certificate the cluster's CA signed (the members' own, here).
    let with_cert = Tls {
        ca: Some(&certs.ca),
        identity: Some(&certs.member),
    };
    for twin in TWINS {
        let value = put_and_get(
            twin,
            &servers,
            &with_cert,
            &format!("{twin:?}"),
            "mutual",
            TIMEOUT,
        );
        assert_eq!(value, Ok(Some(Value::Str("mutual".into()))), "{twin:?}");
    }
    let put = paxos(&servers, &with_cert, &["put", "cli", "mutual"]);
    assert_eq!(put.code, Some(0), "{put:?}");
    let get = paxos(&servers, &with_cert, &["get", "cli"]);
    assert_eq!(
        (get.code, get.stdout.as_str()),
        (Some(0), "mutual\n"),
        "{get:?}"
    );

    // Without one, or with one another CA signed, every member refuses the client, and nothing
    // applies. Under TLS 1.3 the refusal comes after the client's side of the handshake, and
    // the client may see it as the alert (a TLS failure) or as a broken connection while it
    // writes (an outcome it cannot know): either way the call fails, and the key stays absent.
    let without = Tls {
        ca: Some(&certs.ca),
        identity: None,
    };
    let stranger = Tls {
        ca: Some(&certs.ca),
        identity: Some(&certs.stranger),
    };
    for twin in TWINS {
        for refused in [&without, &stranger] {
            let error = put_and_get(twin, &servers, refused, "refused", "v", SHORT)
                .expect_err("a refused client certificate");
            assert!(
                matches!(
                    error,
                    Error::Unavailable { .. } | Error::OutcomeUnknown { .. }
                ),
                "{twin:?}: {error:?}"
            );
        }
    }
    let run = paxos(
        &servers,
        &without,
        &["--timeout", "3", "put", "refused", "v"],
    );
    assert!(matches!(run.code, Some(1 | 3)), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    // However the refusal reached it, the tool points at the missing certificate.
    assert!(run.stderr.contains("--cert and --key"), "{run:?}");
    let get = paxos(&servers, &with_cert, &["get", "refused"]);
    assert_eq!((get.code, get.stdout.as_str()), (Some(0), ""), "{get:?}");
}

fn what_does_not_fit_is_a_clear_error(runtime: Runtime) {
    let (dir, certs) = certs();
    let cluster = Cluster::builder(runtime)
        .tls(&certs, &certs.member, false)
        .start();
    let servers = entries(&cluster, "https://");
    let config_error =
        |twin: Twin, tls: &Tls| match put_and_get(twin, &servers, tls, "k", "v", TIMEOUT) {
            Err(Error::Config(message)) => message,
            other => panic!("{twin:?}: expected a config error, got {other:?}"),
        };
    let not_pem = dir.path().join("not-a-certificate.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let missing = dir.path().join("missing.pem");
    let other_ca = Tls {
        ca: Some(&certs.other_ca),
        identity: None,
    };
    for twin in TWINS {
        // Nothing to verify the members against: the option to give is named.
        assert!(
            config_error(twin, &Tls::default()).contains("no CA file is given"),
            "{twin:?}"
        );
        let unreadable = config_error(
            twin,
            &Tls {
                ca: Some(&missing),
                identity: None,
            },
        );
        assert!(
            unreadable.starts_with(&format!("cannot read the CA file {}", missing.display())),
            "{twin:?}: {unreadable}"
        );
        let garbage = config_error(
            twin,
            &Tls {
                ca: Some(&not_pem),
                identity: None,
            },
        );
        assert!(
            garbage.contains("no PEM certificate"),
            "{twin:?}: {garbage}"
        );
        let wrong_key = Pair {
            cert: certs.member.cert.clone(),
            key: certs.stranger.key.clone(),
        };
        let mismatch = config_error(
            twin,
            &Tls {
                ca: Some(&certs.ca),
                identity: Some(&wrong_key),
            },
        );
        assert!(
            mismatch.contains("is not the private key of"),
            "{twin:?}: {mismatch}"
        );
        // Another CA signed the members' certificates.
        refused_promptly(
            twin,
            &servers,
            &other_ca,
            "not signed by a CA in the client's CA file",
        );
    }
    cli_refused(
        &paxos(&servers, &other_ca, &["get", "k"]),
        "not signed by a CA in the client's CA file",
    );
    let run = paxos(&servers, &Tls::default(), &["get", "k"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.contains("no CA file is given") && run.stderr.contains("--ca"),
        "{run:?}"
    );
    let run = paxos(
        &servers,
        &Tls {
            ca: Some(&missing),
            identity: None,
        },
        &["get", "k"],
    );
    assert_eq!(run.code, Some(2), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(run.stderr.contains("cannot read the CA file"), "{run:?}");

    // A member whose certificate is for another name than the one it is reached by: it never
    // finds itself (discovery checks the name too), but it serves handshakes while it looks,
    // for the 30 s of the suite's discovery timeout.
    let mut wrong_name = Cluster::builder(runtime)
        .size(1)
        .tls(&certs, &certs.wrong_name, false)
        .build();
    wrong_name.start_all();
    let listen = wrong_name.members[0].listen;
    wait_for("the member listens", Duration::from_secs(10), || {
        TcpStream::connect(listen).is_ok()
    });
    let servers = entries(&wrong_name, "https://");
    let tls = Tls {
        ca: Some(&certs.ca),
        identity: None,
    };
    for twin in TWINS {
        refused_promptly(
            twin,
            &servers,
            &tls,
            "(the certificate is for wrong.example)",
        );
    }
    cli_refused(&paxos(&servers, &tls, &["get", "k"]), "not valid for name");
}
