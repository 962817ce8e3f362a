#!/usr/bin/env bash
# Static checks on Keel's own code (not tests' generated files, not third-party headers).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
dirs=()
for d in src tools sim apps firmware; do [ -d "$d" ] && dirs+=("$d"); done
echo "lint: cppcheck on ${dirs[*]}"
cppcheck --quiet --error-exitcode=1 --std=c11 --inline-suppr \
  --enable=warning,performance,portability \
  --suppress=missingIncludeSystem --suppress=unmatchedSuppression \
  -I include "${dirs[@]}"
echo "lint: clean"
