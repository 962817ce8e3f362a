#!/usr/bin/env bash
# make bench-gateway: the MODBUS gateway on the RT core's line driver (keel-sim's bit-exact
# RS485 bus at 115200 8E1, the bridge channel, keel-gateway's master) against two baselines
# measured in the same run: the same bus reached through keel-sim's serial server node (RTU
# over TCP, keel-sim --modbus-port: a second master on the same wire, what an Ethernet-to-RS485
# serial server gives a gateway), and the physical floor of the line (every character on the
# wire, 11 bits at the baud rate, as counted by the bus model).
#
#   bench/gateway/run.sh [--runs N]   (default 3; the best run of each cell is shown)
# Rows: 4 points polled 20 times (keel-gateway --once, one process per poll), and a 60 KB
# signed firmware push to unit 2 (257 FC 21 requests), each at --speed 1 (the world paced to
# the wall clock, as the demo runs) and --speed 0 (as fast as the machine goes).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${KEEL_BIN:-$top/build/release/bin}
runs=3
case ${1:-} in
  --runs) runs=$2 ;;
  -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "usage: bench/gateway/run.sh [--runs N]" >&2; exit 2 ;;
esac
for b in keel keel-sim keel-gateway; do
  [[ -x $bin/$b ]] || { echo "bench-gateway: no $bin/$b (make release)" >&2; exit 3; }
done
dir=$(mktemp -d)
sim_pid=
cleanup() {
  [[ -n $sim_pid ]] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
comp=5d2c8e41-0b7a-4f3e-9c16-7a8b9c0d1e2f
"$bin/keel" image keygen --out "$dir/sensor" >/dev/null
sign() { # version out
  { printf 'KEEL-SENSOR-FW supply-air %s\n' "$1"; head -c 60000 /dev/urandom; } >"$2.bin"
  "$bin/keel" image sign --key "$dir/sensor.sec" --component "$comp" --version "$1" \
    --counter 1 "$2.bin" "$2" >/dev/null
}
sign 1.0.0 "$dir/a.kimg"
sign 1.1.0 "$dir/b.kimg"
points='"points": [
 {"name": "t", "unit": 1, "function": 4, "address": 0, "scale": 0.01, "signed": true},
 {"name": "h", "unit": 1, "function": 4, "address": 1, "scale": 0.01},
 {"name": "p", "unit": 1, "function": 4, "address": 2, "scale": 0.1},
 {"name": "s", "unit": 2, "function": 4, "address": 0, "scale": 0.01, "signed": true}]'
now() { date +%s.%N; }
start_sim() { # speed
  rm -rf "$dir/state" "$dir/br.sock" "$dir/w.json" && mkdir -p "$dir/state"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$bin/keel-sim" --bridge-socket "$dir/br.sock" \
    --gateway-manifest "$top/apps/gateway/app_manifest.json" \
    --rt-manifest "$top/firmware/apps/envmon/app_manifest.json" --state "$dir/state" \
    --status "$dir/w.json" --speed "$1" --modbus-port "$port" --sensor-key "$dir/sensor.pub" \
    --sensor-image "$dir/a.kimg" --sensor-component "$comp" >"$dir/sim.log" 2>&1 &
  sim_pid=$!
  for _ in $(seq 200); do [[ -S $dir/br.sock && -s $dir/w.json ]] && break; sleep 0.05; done
  echo "{\"bus\": {\"rt_bridge\": \"9c1b7e22-5f4a-4d83-b0e6-2a7c3d9f8e10\"}, $points}" >"$dir/br.json"
  echo "{\"bus\": {\"rtu_over_tcp\": \"127.0.0.1:$port\"}, $points}" >"$dir/tcp.json"
}
stop_sim() { kill "$sim_pid"; wait "$sim_pid" 2>/dev/null || true; sim_pid=; }
gw() { # config extra...
  local cfg=$1
  shift
  if [[ $cfg == br ]]; then
    "$bin/keel-gateway" --config "$dir/br.json" --rt-socket "$dir/br.sock" "$@"
  else
    "$bin/keel-gateway" --config "$dir/tcp.json" "$@"
  fi
}
polls() { # cfg -> seconds for 20 polls
  local s e
  s=$(now)
  for _ in $(seq 20); do gw "$1" --once >/dev/null 2>&1; done
  e=$(now)
  echo "$e - $s" | bc
}
push() { # cfg image -> seconds
  local s e
  s=$(now)
  gw "$1" --sensor-key "$dir/sensor.pub" --update-sensor "2:$2" >"$dir/push.out" 2>/dev/null ||
    { echo "bench-gateway: push failed: $(cat "$dir/push.out")" >&2; exit 1; }
  e=$(now)
  echo "$e - $s" | bc
}
best() { sort -g | head -1; }
printf '%-34s %12s %12s %12s %9s\n' "cell (best of $runs)" "bridge s" "serial srv s" "line floor s" "bridge/floor"
for speed in 1 0; do
  start_sim "$speed"
  pb=() pt=() ub=() ut=()
  for _ in $(seq "$runs"); do
    pb+=("$(polls br)")
    pt+=("$(polls tcp)")
    c0=$(jq .rs485.chars "$dir/w.json")
    ub+=("$(push br "$dir/b.kimg")")
    sleep 0.3 # the status file is rewritten 4 times a second: take one written after the push
    c1=$(jq .rs485.chars "$dir/w.json")
    ut+=("$(push tcp "$dir/a.kimg")")
  done
  floor=$(echo "scale=3; ($c1 - $c0) * 11 / 115200" | bc)
  b=$(printf '%s\n' "${pb[@]}" | best) t=$(printf '%s\n' "${pt[@]}" | best)
  printf '%-34s %12.3f %12.3f %12s %9s\n' "20 polls x 4 points, speed $speed" "$b" "$t" "-" "-"
  b=$(printf '%s\n' "${ub[@]}" | best) t=$(printf '%s\n' "${ut[@]}" | best)
  ratio=$(echo "scale=2; $b / $floor" | bc)
  printf '%-34s %12.3f %12.3f %12.3f %8sx\n' "60 KB push, speed $speed" "$b" "$t" "$floor" "$ratio"
  stop_sim
done
echo "line floor: characters the bus model counted during one push, 11 bits each at 115200 baud"
echo "(FC 21 replies echo the request, so each record crosses the line twice)."
