//! The two servers under test and where their binaries are.

use std::path::PathBuf;

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
    /// `PAXOS_TESTS_BIN_DIR` overrides the directory. The suite never builds the servers itself.
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
        path
    }
}
