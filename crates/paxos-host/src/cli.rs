//! The command line both binaries share, parsed by hand.
//!
//! Three flags do not justify an argument-parsing dependency, and writing the parser here lets
//! every usage error be exactly one line that names the flag, which is what the contract asks of
//! both servers (exit status 2).

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Run a server.
    Run(Args),
    /// `--help` or `-h`: print [`usage`] and exit 0.
    Help,
    /// `--version`: print the version and exit 0.
    Version,
}

/// The flags of a server run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    /// `--config FILE`: the cluster config.
    pub config: PathBuf,
    /// `--listen HOST:PORT`: the address to bind.
    pub listen: String,
    /// `--data-dir DIR`, or [`default_data_dir`] of `--listen`.
    pub data_dir: PathBuf,
}

/// A usage error: one line naming the flag and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (see --help)", self.0)
    }
}

impl std::error::Error for UsageError {}

/// The text `--help` prints.
pub fn usage(program: &str) -> String {
    format!(
        "\
{program} {version}: one member of a Twin Paxos replicated key-value cluster

Usage: {program} --config FILE --listen HOST:PORT [--data-dir DIR]

Options:
  --config FILE      the cluster config (JSON): the `servers` list, an optional `secret`
                     and optional tuning fields
  --listen HOST:PORT the address to serve HTTP on; it must be reachable as one of the
                     config's `servers` entries, which is how the server finds itself
  --data-dir DIR     where the durable Paxos log lives, created if missing
                     [default: ./paxos-data/HOST-PORT, from --listen]
  -h, --help         print this help and exit
  --version          print the version and exit

Each flag also takes the form --flag=VALUE. The log level comes from the environment
variable PAXOS_LOG (error, warn, info, debug, trace or off; default info).

Exit status: 0 after a clean shutdown on SIGINT or SIGTERM, 1 for a failure at run time,
2 for a usage or configuration error.
",
        version = env!("CARGO_PKG_VERSION"),
    )
}

/// The version line `--version` prints.
pub fn version(program: &str) -> String {
    format!("{program} {}", env!("CARGO_PKG_VERSION"))
}

/// Parses the arguments after the program name.
pub fn parse<I>(args: I) -> Result<Parsed, UsageError>
where
    I: IntoIterator<Item = OsString>,
{
    let mut config: Option<PathBuf> = None;
    let mut listen: Option<String> = None;
    let mut data_dir: Option<PathBuf> = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            let shown = arg.to_string_lossy();
            return Err(UsageError(format!("unexpected argument `{shown}`")));
        };
        let (flag, inline) = match text.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value)),
            _ => (text.to_owned(), None),
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--version" => return Ok(Parsed::Version),
            "--config" | "--listen" | "--data-dir" => {}
            other if other.starts_with('-') => {
                return Err(UsageError(format!("unknown flag `{other}`")));
            }
            other => return Err(UsageError(format!("unexpected argument `{other}`"))),
        }
        let value: OsString = match inline {
            Some(value) => value.into(),
            None => args
                .next()
                .ok_or_else(|| UsageError(format!("{flag} needs a value")))?,
        };
        if value.is_empty() {
            return Err(UsageError(format!("{flag} needs a non-empty value")));
        }
        let twice = || UsageError(format!("{flag} is given more than once"));
        match flag.as_str() {
            "--config" => {
                if config.replace(value.into()).is_some() {
                    return Err(twice());
                }
            }
            "--data-dir" => {
                if data_dir.replace(value.into()).is_some() {
                    return Err(twice());
                }
            }
            _ => {
                let value = value
                    .into_string()
                    .map_err(|_| UsageError(format!("{flag} must be valid UTF-8")))?;
                split_host_port(&value)
                    .map_err(|e| UsageError(format!("{flag} `{value}`: {e}")))?;
                if listen.replace(value).is_some() {
                    return Err(twice());
                }
            }
        }
    }
    let config = config.ok_or_else(|| UsageError("missing required flag --config".into()))?;
    let listen = listen.ok_or_else(|| UsageError("missing required flag --listen".into()))?;
    let data_dir = data_dir.unwrap_or_else(|| default_data_dir(&listen));
    Ok(Parsed::Run(Args {
        config,
        listen,
        data_dir,
    }))
}

/// The data dir of a server listening on `listen` when `--data-dir` is not given:
/// `./paxos-data/<host>-<port>`, so several members started from one directory do not share one.
pub fn default_data_dir(listen: &str) -> PathBuf {
    let (host, port) = split_host_port(listen).unwrap_or((listen, 0));
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    PathBuf::from("paxos-data").join(format!("{host}-{port}"))
}

/// Splits `host:port`, where the host may be a name, an IPv4 address or a bracketed IPv6
/// address, and the port is a number from 1 to 65535.
pub fn split_host_port(address: &str) -> Result<(&str, u16), String> {
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err("expected HOST:PORT".to_owned());
    };
    if host.is_empty() {
        return Err("expected HOST:PORT, the host is missing".to_owned());
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err("an IPv6 host must be in brackets, as in [::1]:7001".to_owned());
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("the port `{port}` is not a number from 1 to 65535")),
        Ok(port) => Ok((host, port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Parsed, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn parses_both_flag_forms_and_defaults_the_data_dir() {
        let parsed = parse_strs(&["--config", "c.json", "--listen=127.0.0.1:7001"]).unwrap();
        assert_eq!(
            parsed,
            Parsed::Run(Args {
                config: "c.json".into(),
                listen: "127.0.0.1:7001".into(),
                data_dir: "paxos-data/127.0.0.1-7001".into(),
            })
        );
        let parsed =
            parse_strs(&["--listen", "[::1]:7", "--config=c", "--data-dir", "/d"]).unwrap();
        let Parsed::Run(args) = parsed else { panic!() };
        assert_eq!(args.data_dir, PathBuf::from("/d"));
        assert_eq!(
            default_data_dir("[::1]:7"),
            PathBuf::from("paxos-data/___1_-7")
        );
    }

    #[test]
    fn help_and_version_win() {
        assert_eq!(parse_strs(&["--config", "c", "-h"]), Ok(Parsed::Help));
        assert_eq!(parse_strs(&["--version"]), Ok(Parsed::Version));
    }

    #[test]
    fn every_error_names_the_flag() {
        let err = |args: &[&str]| parse_strs(args).unwrap_err().0;
        assert_eq!(err(&["--listen", "a:1"]), "missing required flag --config");
        assert_eq!(err(&["--config", "c"]), "missing required flag --listen");
        assert_eq!(err(&["--config"]), "--config needs a value");
        assert_eq!(err(&["--config="]), "--config needs a non-empty value");
        assert_eq!(err(&["--bogus", "x"]), "unknown flag `--bogus`");
        assert_eq!(err(&["stray"]), "unexpected argument `stray`");
        assert!(err(&["--config", "a", "--config", "b"]).contains("more than once"));
        assert!(err(&["--listen", "localhost"]).starts_with("--listen `localhost`"));
        assert!(err(&["--listen", "h:99999"]).contains("not a number from 1 to 65535"));
    }
}
