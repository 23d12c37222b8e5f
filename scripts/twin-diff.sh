#!/usr/bin/env bash
# Shows the difference between the twin runtime crates, file by file: what threads and async each
# cost in code. `unified` (the default) prints a unified diff; `side` prints the files side by
# side; `stat` prints only how many lines differ per file.
set -euo pipefail
cd "$(dirname "$0")/.."
style=${1:-unified}
threaded=crates/paxos-threaded/src
async=crates/paxos-async/src
files=$( { (cd "$threaded" && find . -name '*.rs'); (cd "$async" && find . -name '*.rs'); } | sort -u)
for file in $files; do
  file=${file#./}
  case "$style" in
    unified) diff -u --label "threaded/$file" --label "async/$file" "$threaded/$file" "$async/$file" || true ;;
    side) printf '\n==== %s ====\n' "$file"
          diff --side-by-side --width="${COLUMNS:-200}" "$threaded/$file" "$async/$file" || true ;;
    stat) changed=$(diff "$threaded/$file" "$async/$file" | grep -c '^[<>]' || true)
          total=$(cat "$threaded/$file" "$async/$file" 2>/dev/null | wc -l)
          printf '%-20s %5s of %5s lines differ\n' "$file" "$changed" "$total" ;;
    *) echo "usage: just diff [unified|side|stat]" >&2; exit 2 ;;
  esac
done
