# Twin Paxos: one Multi-Paxos key-value server, written for std threads and for tokio.
# A bare `just` lists the recipes.

set default-list := true
set shell := ["bash", "-euo", "pipefail", "-c"]

# Run a local 3-member cluster of the threaded server (ports BASE_PORT..BASE_PORT+2); Ctrl-C stops it.
[group('run')]
run-threaded base_port="7001":
    scripts/run-cluster.sh threaded {{base_port}}

# Run a local 3-member cluster of the async server (ports BASE_PORT..BASE_PORT+2); Ctrl-C stops it.
[group('run')]
run-async base_port="7001":
    scripts/run-cluster.sh async {{base_port}}

# Run the `paxos` command line tool (docs/cli.md); without --servers or --config it talks to the cluster of `just run-*`.
[group('run')]
[positional-arguments]
paxos *args:
    @cargo build --release --quiet -p paxos-cli
    @PAXOS_SERVERS="${PAXOS_SERVERS:-127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003}" target/release/paxos "$@"

# Run every test: core unit tests, the simulator, the integration suite and 30 s of nemesis for both servers.
[group('test')]
test:
    cargo build --workspace --bins
    cargo test --workspace
    {{just_executable()}} nemesis threaded 30
    {{just_executable()}} nemesis async 30

# Kill, pause, partition and restart a real cluster under load for SECONDS, then check linearizability (flags: --members 5, --seed N).
[group('test')]
nemesis runtime seconds="60" *flags:
    cargo build -p paxos-threaded -p paxos-async -p paxos-tests --bins
    cargo run --quiet -p paxos-tests --bin nemesis -- {{runtime}} {{seconds}} {{flags}}

# Run the integration suite against the threaded server only.
[group('test')]
test-threaded:
    cargo build -p paxos-threaded --bins
    cargo test -p paxos-tests -- threaded::

# Run the integration suite against the async server only.
[group('test')]
test-async:
    cargo build -p paxos-async --bins
    cargo test -p paxos-tests -- async_::

# Run RUNS seeded simulations of the core, from START_SEED on; a failure prints the seed to replay.
[group('test')]
sim runs="1000" start_seed="1":
    PAXOS_SIM_RUNS={{runs}} PAXOS_SIM_SEED={{start_seed}} cargo test -p paxos-core --release sim::seeded_runs -- --nocapture

# Fuzz the core for longer: CASES cases per property (`just test` runs a few hundred each).
[group('test')]
fuzz cases="200000":
    PROPTEST_CASES={{cases}} cargo test -p paxos-core --release --no-fail-fast --test fuzz_command --test fuzz_envelope --test fuzz_storage --test fuzz_node

# Check formatting and lints, as CI does.
[group('check')]
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Show what the runtime forces to differ, file by file: the two servers' sources, or the client's twins (`just diff unified client`).
[group('check')]
diff style="unified" twins="servers":
    scripts/twin-diff.sh {{style}} {{twins}}

# Measure both servers side by side (about 8 minutes on 2 cores); writes target/report/.
[group('bench')]
bench:
    cargo build --release --bins
    target/release/paxos-bench --out target/report

# Every benchmark scenario, small (about a minute): keeps the benchmark from rotting; CI runs it.
[group('bench')]
bench-quick:
    cargo build --release --bins
    target/release/paxos-bench --quick --out target/report-quick
