#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time, keeping its corpus between runs.
#   fuzz-run.sh TARGET CORPUS_DIR SECONDS [SEED_DIR]
# Exit status is libFuzzer's: non-zero when it found a crash, leak or timeout; the reproducer
# is written next to the corpus (crash-*, leak-*, timeout-*).
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
target=$1 corpus=$2 seconds=$3 seeds=${4:-}
mkdir -p "$corpus"
dirs=("$corpus")
[ -n "$seeds" ] && [ -d "$seeds" ] && dirs+=("$seeds")
exec "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$corpus/" "${dirs[@]}"
