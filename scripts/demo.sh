#!/usr/bin/env bash
# make demo: runs the device on this machine. Until the reference solution lands, it boots the
# real-time core's firmware on the emulated Cortex-M4 (QEMU mps2-an386) and shows its console.
#   DEMO_SECONDS=N   run unattended for at most N seconds, exit 0 only if the device came up
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
fw=$top/build/fw/firmware/tests/hello/fw_hello.elf
echo "keel demo: booting the real-time core firmware on QEMU mps2-an386 (Cortex-M4F)"
out=$("$top/scripts/qemu-run.sh" --test --timeout "${DEMO_SECONDS:-30}" "$fw" | tr -d '\r')
printf '%s\n' "$out" | sed 's/^/  rt-core | /'
grep -q '^PASS$' <<<"$out"
