//! The two servers under test and where their binaries are.

use std::path::{Path, PathBuf};

/// One of the two implementations of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    Threaded,
    Async,
}

impl Runtime {
    /// The name `/status` reports in `runtime`.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Threaded => "threaded",
            Runtime::Async => "async",
        }
    }

    /// The binary's file name.
    pub fn binary_name(self) -> &'static str {
        match self {
            Runtime::Threaded => "paxos-threaded",
            Runtime::Async => "paxos-async",
        }
    }

    /// The server binary of the same build profile as the running executable. A test
    /// executable lives in `target/<profile>/deps/`, next to which the servers are
    /// (`target/<profile>/<bin>`); a binary such as the benchmark lives beside them.
    /// `PAXOS_TESTS_BIN_DIR` overrides the directory. The suite never builds the servers itself,
    /// and refuses a binary older than the sources it is built from: a bare `cargo test` after
    /// an edit would otherwise test yesterday's server.
    pub fn binary(self) -> PathBuf {
        let dir = match std::env::var_os("PAXOS_TESTS_BIN_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => {
                let exe = std::env::current_exe().expect("the running executable's path");
                let dir = exe.parent().expect("the running executable's directory");
                match dir.file_name() {
                    Some(name) if name == "deps" => dir.parent().unwrap_or(dir).to_path_buf(),
                    _ => dir.to_path_buf(),
                }
            }
        };
        let path = dir.join(format!(
            "{}{}",
            self.binary_name(),
            std::env::consts::EXE_SUFFIX
        ));
        assert!(
            path.is_file(),
            "the server binary {} is missing: build them first: cargo build --bins; `just test` does",
            path.display()
        );
        if let Some(source) = newer_source(&path, self.sources()) {
            panic!(
                "the server binary {} is older than {}: build it again first: cargo build --bins; \
                 `just test` does",
                path.display(),
                source.display()
            );
        }
        path
    }
}

impl Runtime {
    /// The directories, from the workspace root, of the crates the server is built from.
    fn sources(self) -> &'static [&'static str] {
        match self {
            Runtime::Threaded => &[
                "crates/paxos-core",
                "crates/paxos-host",
                "crates/paxos-threaded",
                "vendor/rouille",
                "vendor/tiny_http",
            ],
            Runtime::Async => &[
                "crates/paxos-core",
                "crates/paxos-host",
                "crates/paxos-async",
            ],
        }
    }
}

/// The `paxos` command line tool of the same build profile, beside the servers, refused when
/// older than its sources as they are.
pub fn cli_binary() -> PathBuf {
    let servers = Runtime::Threaded.binary();
    let dir = servers.parent().expect("the servers' directory");
    let path = dir.join(format!("paxos{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "the command line tool {} is missing: build it first: cargo build --bins; `just test` does",
        path.display()
    );
    let sources = [
        "crates/paxos-core",
        "crates/paxos-client",
        "crates/paxos-cli",
    ];
    if let Some(source) = newer_source(&path, &sources) {
        panic!(
            "the command line tool {} is older than {}: build it again first: cargo build --bins",
            path.display(),
            source.display()
        );
    }
    path
}

/// A source file of `crates` (directories from the workspace root) that changed after `binary`
/// was built, if any: their Rust sources and manifests, less their own tests.
fn newer_source(binary: &Path, crates: &[&str]) -> Option<PathBuf> {
    let built = std::fs::metadata(binary).and_then(|m| m.modified()).ok()?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    let mut dirs: Vec<PathBuf> = crates.iter().map(|dir| root.join(dir)).collect();
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if name != "tests" && name != "target" {
                    dirs.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") || name == "Cargo.toml" {
                let modified = entry.metadata().and_then(|m| m.modified()).ok()?;
                if modified > built {
                    return Some(path);
                }
            }
        }
    }
    None
}
