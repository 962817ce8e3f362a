#!/usr/bin/env bash
# Runs a firmware test twice under -icount shift=0 and fails unless both runs pass and print
# exactly the same output (the kernel's scheduling is deterministic given the instruction count).
#   repeat.sh QEMU_RUN ELF
set -uo pipefail
run=$1 elf=$2
a=$("$run" --test --timeout 60 "$elf"); ra=$?
b=$("$run" --test --timeout 60 "$elf"); rb=$?
printf '%s\n' "$a"
if [ $ra -ne 0 ] || [ $rb -ne 0 ]; then
  echo "repeat: exit codes $ra and $rb" >&2; exit 1
fi
if [ "$a" != "$b" ]; then
  echo "repeat: the two runs differ:" >&2
  diff <(printf '%s\n' "$a") <(printf '%s\n' "$b") >&2
  exit 1
fi
echo "repeat: two runs identical"
