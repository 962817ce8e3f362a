#!/usr/bin/env bash
# Runs one benchmark: bench/<name>/run.sh if the benchmark needs orchestration, otherwise the
# executable build/release/bench/<name>/bench_<name>. Benchmarks print a table and a ratio
# against a baseline measured in the same run.
set -euo pipefail
name=${1:?usage: bench.sh NAME}
top=$(cd "$(dirname "$0")/.." && pwd)
if [ -x "$top/bench/$name/run.sh" ]; then
  exec "$top/bench/$name/run.sh"
fi
exe=$top/build/release/bench/$name/bench_$name
[ -x "$exe" ] || { echo "bench: no benchmark named '$name' (looked for bench/$name/run.sh and $exe)" >&2; exit 2; }
exec "$exe"
