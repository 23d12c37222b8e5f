#!/usr/bin/env bash
# Shows the difference between twins, file by file: what threads and async each cost in code.
# `twin-diff.sh [STYLE] [TWINS]`: STYLE `unified` (the default) prints a unified diff, `side` the
# files side by side, `stat` only how many lines differ per file; TWINS `servers` (the default)
# compares the two servers' crates, `client` the client library's blocking and async modules.
set -euo pipefail
cd "$(dirname "$0")/.."
style=${1:-unified}
case "${2:-servers}" in
  servers) threaded=crates/paxos-threaded/src async=crates/paxos-async/src names=(threaded async) ;;
  client) threaded=crates/paxos-client/src/blocking async=crates/paxos-client/src/async_impl
          names=(blocking async) ;;
  *) echo "usage: just diff [unified|side|stat] [servers|client]" >&2; exit 2 ;;
esac
all_changed=0 all_total=0
files=$( { (cd "$threaded" && find . -name '*.rs'); (cd "$async" && find . -name '*.rs'); } | sort -u)
for file in $files; do
  file=${file#./}
  # A file on one side only is diffed against nothing, so that it shows whole.
  t="$threaded/$file"; [ -f "$t" ] || t=/dev/null
  a="$async/$file"; [ -f "$a" ] || a=/dev/null
  case "$style" in
    unified) diff -u --label "${names[0]}/$file" --label "${names[1]}/$file" "$t" "$a" || true ;;
    side) printf '\n==== %s ====\n' "$file"
          diff --side-by-side --width="${COLUMNS:-200}" "$t" "$a" || true ;;
    stat) changed=$(diff "$t" "$a" | grep -c '^[<>]' || true)
          total=$(cat "$t" "$a" | wc -l)
          printf '%-20s %5s of %5s lines differ\n' "$file" "$changed" "$total"
          all_changed=$((all_changed + changed)); all_total=$((all_total + total)) ;;
    *) echo "usage: just diff [unified|side|stat] [servers|client]" >&2; exit 2 ;;
  esac
done
if [ "$style" = stat ]; then
  printf '%-20s %5s of %5s lines differ\n' "in all" "$all_changed" "$all_total"
fi
