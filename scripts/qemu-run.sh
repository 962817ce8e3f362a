#!/usr/bin/env bash
# Runs a real-time-core ELF on QEMU's mps2-an386 (Cortex-M4F).
#   qemu-run.sh [--test] [--timeout S] [--no-icount] ELF [extra qemu args...]
# --test: deterministic (-icount shift=0: one guest instruction = 1 ns), console to stdout,
#         exit status = the firmware's semihosting exit code; a hang is killed after S seconds
#         (default 60) and reported as exit 124.
# Without --test the firmware runs as fast as QEMU can, for demos.
set -euo pipefail
usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }
test_mode=0 timeout_s=60 icount=1
while [ $# -gt 0 ]; do
  case "$1" in
    --test) test_mode=1; shift ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --no-icount) icount=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { usage >&2; exit 2; }
elf=$1; shift
[ -f "$elf" ] || { echo "qemu-run: no such firmware image: $elf" >&2; exit 2; }
command -v qemu-system-arm >/dev/null || { echo "qemu-run: qemu-system-arm missing: run scripts/deps.sh" >&2; exit 2; }
args=(-M mps2-an386 -nographic -monitor none -serial stdio -kernel "$elf"
      -semihosting-config enable=on,target=native)
if [ "$test_mode" = 1 ] && [ "$icount" = 1 ]; then
  args+=(-icount shift=0)
fi
exec timeout --kill-after=5 "$timeout_s" qemu-system-arm "${args[@]}" "$@" </dev/null
