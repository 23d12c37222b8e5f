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

    /// The server binary of the same build profile as this test, which lives next to the test
    /// executable's `deps/` directory: `target/<profile>/deps/<test>` → `target/<profile>/<bin>`.
    /// `PAXOS_TESTS_BIN_DIR` overrides the directory. The suite never builds the servers itself.
    pub fn binary(self) -> PathBuf {
        let dir = match std::env::var_os("PAXOS_TESTS_BIN_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => {
                let exe = std::env::current_exe().expect("the test executable's path");
                let deps = exe.parent().expect("the test executable's directory");
                deps.parent().unwrap_or(deps).to_path_buf()
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
