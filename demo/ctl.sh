#!/usr/bin/env bash
# The operator's side of `make demo`, from a second terminal: talks to the demo's broker with
# the operator certificate (the ACL lets "operator" use every device's topics).
#
#   demo/ctl.sh set C          desired targetTemperature = C (retained desired document)
#   demo/ctl.sh watch          telemetry and reported properties as they reach the broker
#   demo/ctl.sh broker-stop    stop mosquitto (the app queues telemetry in its outbox)
#   demo/ctl.sh broker-start   start it again on the same port (the queue drains)
#   demo/ctl.sh app-restart    SIGKILL the app and start it again
#   demo/ctl.sh crash          (DEMO_KEELD=1) SIGSEGV keel-envmon; keeld reports and restarts it
#   demo/ctl.sh world-restart  power-cycle keel-sim (RT core, bus, room; their state persists)
#   demo/ctl.sh modbus         read the sensors on the world's RS485 bus (keel modbus read)
#   demo/ctl.sh sensor-update [1.1.0|1.0.0|broken|forged]
#                              push supply-air sensor firmware (unit 2) through the gateway's
#                              updateSensorFirmware method (default 1.1.0)
#
# KEEL_DEMO_DIR: the demo's directory (default build/demo). Exit: 0 ok, 1 failed, 2 usage.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${KEEL_DEMO_DIR:-$top/build/demo}
bin=${KEEL_BIN:-$top/build/release/bin}
usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }
[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }
[[ -f $dir/env ]] || { echo "ctl: no demo in $dir (run make demo first)" >&2; exit 1; }
# shellcheck source=/dev/null
source "$dir/env"
# Shows the real command before running it, so the demo teaches the tools.
run() {
  printf '$'; printf ' %q' "${@/#$top\//}"; printf '\n'
  "$@"
}
case ${1:-} in
set)
  v=${2:-}
  [[ $v =~ ^-?[0-9]+(\.[0-9]+)?$ ]] || { echo "ctl: set needs a temperature, e.g. 21.5" >&2; exit 2; }
  run "$bin/keel" cloud set --device "$device" "{\"targetTemperature\":$v}" --config "$dir/operator.json"
  ;;
watch)
  run "$bin/keel" cloud watch --config "$dir/operator.json"
  ;;
broker-stop)
  kill -TERM "$(cat "$dir/broker/pid")" && echo "broker stopped: telemetry now queues on the device"
  ;;
broker-start)
  setsid "$mosq" -c "$dir/broker/mosquitto.conf" </dev/null >/dev/null 2>&1 &
  echo $! >"$dir/broker/pid"
  echo "broker started (pid $!): watch the queue drain"
  ;;
crash)
  [[ ${keeld_mode:-0} == 1 ]] || { echo "ctl: crash needs the demo under keeld (DEMO_KEELD=1)" >&2; exit 1; }
  export KEEL_SOCKET
  pid=$("$bin/keel" app list | awk '$1 == "envmon" && $3 == "running" {print $4}')
  [[ -n $pid ]] || { echo "ctl: envmon is not running" >&2; exit 1; }
  run kill -SEGV "$pid"
  echo "keel-envmon (pid $pid) crashed: see keel app list, keel app crashes envmon"
  ;;
app-restart)
  old=$(cat "$dir/envmon.pid")
  kill -KILL "$old" 2>/dev/null || true
  period=$(cat "$dir/envmon.period" 2>/dev/null || echo 2000)
  setsid "$bin/keel-envmon" --rt-socket "$dir/rt.sock" --cloud "$dir/device.json" \
    --status "$dir/envmon.json" --period-ms "$period" </dev/null >>"$dir/envmon.log" 2>&1 &
  echo $! >"$dir/envmon.pid"
  echo "app killed (pid $old) and started again (pid $!)"
  ;;
world-restart)
  old=$(cat "$dir/keel-sim.pid")
  kill -TERM "$old" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$old" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$old" 2>/dev/null || true
  # keel-sim.cmd holds the command line demo.sh used, shell-quoted
  eval "setsid $(cat "$dir/keel-sim.cmd") </dev/null >>\"\$dir/keel-sim.log\" 2>&1 &"
  echo $! >"$dir/keel-sim.pid"
  echo "world powered off (pid $old) and on again (pid $!): the room and the sensor's flash persist"
  ;;
modbus)
  bus=$(jq -r .modbus.port "$dir/world.json")
  echo "unit 1 (room sensor): temperature, humidity, pressure"
  run "$bin/keel" modbus read -R "127.0.0.1:$bus" -u 1 -T input 0 3
  echo "unit 2 (supply-air sensor): temperature"
  run "$bin/keel" modbus read -R "127.0.0.1:$bus" -u 2 -T input 0 1
  ;;
sensor-update)
  case ${2:-1.1.0} in
  broken) img=$dir/firmware/supply-air-1.2.0-broken.kimg ;;
  forged) img=$dir/firmware/supply-air-forged.kimg ;;
  *) img=$dir/firmware/supply-air-${2:-1.1.0}.kimg ;;
  esac
  [[ -f $img ]] || { echo "ctl: no image $img" >&2; exit 2; }
  run "$bin/keel" cloud call --device gateway-1 updateSensorFirmware \
    "{\"unit\":2,\"image\":\"$img\"}" --timeout 60 --config "$dir/operator.json"
  ;;
*)
  usage >&2
  exit 2
  ;;
esac
