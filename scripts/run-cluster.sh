#!/usr/bin/env bash
# Runs a local 3-member Twin Paxos cluster in the foreground: `run-cluster.sh RUNTIME [BASE_PORT]`.
#
# It builds the server in release mode, starts three members on 127.0.0.1:BASE_PORT..+2 with each
# log line prefixed by its member, prints curl examples, and on Ctrl-C stops all three with
# SIGTERM (a clean shutdown) and waits for them. With the default base port it uses the example
# config shared/configs/local-3.json; with another it writes one under target/run/.
set -euo pipefail
cd "$(dirname "$0")/.."

runtime=${1:?usage: run-cluster.sh threaded|async [BASE_PORT]}
base=${2:-7001}
case "$runtime" in
  threaded|async) ;;
  *) echo "run-cluster.sh: runtime must be threaded or async, not '$runtime'" >&2; exit 2 ;;
esac
[[ "$base" =~ ^[0-9]+$ ]] && (( base >= 1024 && base <= 65533 )) || {
  echo "run-cluster.sh: base port must be a number from 1024 to 65533, not '$base'" >&2; exit 2; }

cargo build --release --quiet -p "paxos-$runtime"
binary=target/release/paxos-$runtime
ports=("$base" "$((base + 1))" "$((base + 2))")

run_dir=target/run/$runtime-$base
mkdir -p "$run_dir"
if [[ "$base" == 7001 ]]; then
  config=shared/configs/local-3.json
else
  config=$run_dir/cluster.json
  printf '{"servers": ["127.0.0.1:%s", "127.0.0.1:%s", "127.0.0.1:%s"]}\n' "${ports[@]}" > "$config"
fi

pids=()
stop() {
  trap - INT TERM
  echo "stopping the cluster..."
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  echo "stopped; data dirs are under $run_dir"
  exit 0
}
trap stop INT TERM

for i in 0 1 2; do
  port=${ports[$i]}
  # Each member's output goes through sed so every line says which member wrote it.
  "$binary" --config "$config" --listen "127.0.0.1:$port" --data-dir "$run_dir/data-$port" \
    > >(sed -u "s/^/[m$((i + 1)) :$port] /") 2>&1 &
  pids+=("$!")
done

cat <<MSG
Started a 3-member $runtime cluster from $config (data under $run_dir).
Try, in another terminal:

  curl -s -X POST localhost:${ports[0]}/client-request -H 'Content-Type: application/json' \\
       -d '{"op": "append", "key": "list", "value": "hello"}'
  curl -s -X POST localhost:${ports[2]}/client-request -H 'Content-Type: application/json' \\
       -d '{"op": "get", "key": "list"}'
  curl -s localhost:${ports[1]}/status

Press Ctrl-C to stop all three.
MSG
wait "${pids[@]}"
