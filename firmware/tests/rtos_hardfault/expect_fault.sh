#!/usr/bin/env bash
# Runs firmware that must die in the HardFault handler: exit code 122 and a register dump
# naming the faulting thread.   expect_fault.sh QEMU_RUN ELF THREAD_NAME
set -uo pipefail
out=$("$1" --test --timeout 30 "$2"); rc=$?
printf '%s\n' "$out"
[ $rc -eq 122 ] || { echo "expect_fault: exit code $rc, wanted 122" >&2; exit 1; }
for want in "keel: HardFault" "pc=0x" "cfsr=0x" "bfar=0x" "thread: $3"; do
  grep -qF "$want" <<<"$out" || { echo "expect_fault: no '$want' in the dump" >&2; exit 1; }
done
echo "expect_fault: dump complete"
