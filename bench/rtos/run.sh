#!/usr/bin/env bash
# make bench-rtos: Keel's Thread-Metric suite on QEMU mps2-an386 with -icount shift=0 (one
# guest instruction = 1 ns, so every figure is deterministic), beside the anchors measured
# on the same machine with FreeRTOS and ThreadX (../shared/anchors/thread-metric.md), plus
# context-switch and interrupt-to-thread latency in guest instructions.
#
#   bench/rtos/run.sh [--quick] [--jobs N] [TEST...]
#     TEST: basic coop preempt irq irq_preempt message sync memory latency (default: all)
#     --quick   0.3 s window instead of the anchors' 3 s (about ten times faster; scores are
#               scaled to counts per 30 s either way and differ from the full run by < 1 %)
#     --jobs N  run N QEMUs at once (default 1: the machine is shared)
# Scores: counter increments per 30 s (the 3 s window's count x10), as in the anchors.
# A full run takes about half an hour of one core: QEMU under icount is slow on the
# exception-heavy tests.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
fwdir=$top/build/fw/firmware/bench/thread-metric
quick=0 jobs=1
tests=()
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --jobs) jobs=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) tests+=("$1"); shift ;;
  esac
done
all=(basic coop preempt irq irq_preempt message sync memory)
[ ${#tests[@]} -gt 0 ] || tests=("${all[@]}" latency)

if [ ! -d "$fwdir" ]; then
  cmake --preset fw >/dev/null
fi
cmake --build "$top/build/fw" -j 2 >/dev/null

# Anchors: FreeRTOS V11.1, ThreadX 6.4.2, ThreadX with speed options (counts per 30 s).
declare -A name=([basic]="basic processing" [coop]="cooperative scheduling"
  [preempt]="preemptive scheduling" [irq]="interrupt processing"
  [irq_preempt]="interrupt preemption" [message]="message processing (16 B)"
  [sync]="synchronization" [memory]="memory allocation (128 B)")
declare -A freertos=([basic]=3253430 [coop]=454542970 [preempt]=108068710 [irq]=288460310
  [irq_preempt]=85469720 [message]=152283620 [sync]=258619580 [memory]=434780780)
declare -A threadx=([basic]=3253420 [coop]=428568870 [preempt]=135378430 [irq]=517238930
  [irq_preempt]=105262660 [message]=239998860 [sync]=599997150 [memory]=508472180)
declare -A threadx_speed=([basic]=3253430 [coop]=428569170 [preempt]=168160750 [irq]=526313660
  [irq_preempt]=130434250 [message]=238094280 [sync]=612242410 [memory]=499997990)

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
run_one() {
  local t=$1 elf
  if [ "$t" = latency ]; then elf=$fwdir/tm_latency.elf
  elif [ "$quick" = 1 ]; then elf=$fwdir/tm_${t}_quick.elf
  else elf=$fwdir/tm_$t.elf; fi
  "$top/scripts/qemu-run.sh" --test --timeout 1800 "$elf" >"$out/$t" 2>&1 || true
}
n=${#tests[@]} i=0
for t in "${tests[@]}"; do
  i=$((i + 1))
  echo "bench-rtos: running $t ($i/$n)..." >&2
  run_one "$t" &
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
done
wait

printf '\nThread-Metric on QEMU mps2-an386, -icount shift=0, 10 ms tick, %s window; counts per 30 s [guest instructions per event]\n\n' \
  "$([ "$quick" = 1 ] && echo "0.3 s (--quick)" || echo "3 s")"
printf '| %-27s | %-22s | %-13s | %-13s | %-13s | %-19s |\n' test Keel "FreeRTOS 11.1" "ThreadX 6.4.2" "ThreadX speed" "Keel / best"
printf '|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..29})" "$(printf -- '-%.0s' {1..24})" \
  "$(printf -- '-%.0s' {1..15})" "$(printf -- '-%.0s' {1..15})" "$(printf -- '-%.0s' {1..15})" "$(printf -- '-%.0s' {1..21})"
group() { awk -v n="$1" 'BEGIN{s=sprintf("%d",n); o=""; while (length(s)>3) {o=","substr(s,length(s)-2) o; s=substr(s,1,length(s)-3)} print s o}'; }
status=0
for t in "${all[@]}"; do
  [ -f "$out/$t" ] || continue
  line=$(grep -m1 '^tm: .* score ' "$out/$t" | tr -d '\r' || true)
  if [ -z "$line" ]; then
    printf '| %-27s | %-22s |\n' "${name[$t]}" "FAILED"; cat "$out/$t" >&2; status=1; continue
  fi
  score=$(awk '{print $4}' <<<"$line") ipe=$(awk '{print $6}' <<<"$line")
  best=${freertos[$t]}
  [ "${threadx[$t]}" -gt "$best" ] && best=${threadx[$t]}
  [ "${threadx_speed[$t]}" -gt "$best" ] && best=${threadx_speed[$t]}
  ratio=$(awk -v a="$score" -v b="$best" 'BEGIN{printf "%.2f", a/b}')
  note=""
  [ "$t" = basic ] && note=" (calibration)"
  printf '| %-27s | %13s [%6s] | %13s | %13s | %13s | %-19s |\n' "${name[$t]}" \
    "$(group "$score")" "$ipe" "$(group "${freertos[$t]}")" \
    "$(group "${threadx[$t]}")" "$(group "${threadx_speed[$t]}")" "x$ratio$note"
done
if [ -f "$out/latency" ]; then
  lat=$(tr -d '\r' <"$out/latency")
  get() { awk -v k="$1" '$3 == k {print $4}' <<<"$lat"; }
  ns=$(get yield-no-switch) ws=$(get yield-with-switch) irq=$(get irq-to-thread)
  events=$(get irq-to-thread-events)
  if [ -n "$ns" ] && [ -n "$ws" ] && [ -n "$irq" ]; then
    cs=$(awk -v a="$ws" -v b="$ns" 'BEGIN{printf "%.1f", a-b}')
    printf '\nLatency in guest instructions (mean over %s events each; anchors: context switch on a\ncooperative yield FreeRTOS 55, ThreadX 33 + 31 to pick the next thread)\n\n' "${events:-10000}"
    printf '| %-44s | %12s |\n' measure instructions
    printf '|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "$(printf -- '-%.0s' {1..14})"
    printf '| %-44s | %12s |\n' "yield, nothing else ready (no switch)" "$ns"
    printf '| %-44s | %12s |\n' "yield to an equal-priority thread" "$ws"
    printf '| %-44s | %12s |\n' "context switch (the difference)" "$cs"
    printf '| %-44s | %12s |\n' "interrupt pended -> waiting thread runs" "$irq"
  else
    echo "latency: FAILED" >&2; cat "$out/latency" >&2; status=1
  fi
fi
exit $status
