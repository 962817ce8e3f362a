#!/usr/bin/env bash
# shellcheck disable=SC2154 # device, mosq, keys, hardware, web_port: from the demo's env file
# The operator's side of `make demo`, from a second terminal: talks to the demo's broker with
# the operator certificate (the ACL lets "operator" use every device's topics) and, on the
# device, to keeld through `keel app` ($KEEL_SOCKET). Each command prints the keel command it
# runs, so the demo teaches the tools.
#
#   demo/ctl.sh set C          desired targetTemperature = C (retained desired document)
#   demo/ctl.sh watch          telemetry and reported properties as they reach the broker
#   demo/ctl.sh broker-stop    stop mosquitto (telemetry queues in the device's outbox)
#   demo/ctl.sh broker-start   start it again on the same port (the queue drains)
#   demo/ctl.sh crash          SIGSEGV keel-envmon; keeld reports and restarts it
#   demo/ctl.sh deploy [1.1.0|broken|forged]
#                              release envmon 1.1.0 (1.2.0, a build that crashes; or 1.1.0
#                              signed by an untrusted key) with keel release make, serve it,
#                              keel cloud deploy it: keeld verifies it, runs it on trial,
#                              confirms it or reverts it (or refuses it)
#   demo/ctl.sh app-restart    restart the app (keel app stop/start; DEMO_DIRECT: SIGKILL)
#   demo/ctl.sh world-restart  power-cycle the RT core and the room (their state persists)
#   demo/ctl.sh modbus         the RS485 bus: under keeld, what the gateway and the world see;
#                              DEMO_DIRECT: read the sensors yourself (keel modbus read)
#   demo/ctl.sh sensor-update [1.1.0|1.0.0|broken|forged]
#                              push supply-air sensor firmware (unit 2) through the gateway's
#                              updateSensorFirmware method (default 1.1.0)
#
# KEEL_DEMO_DIR: the demo's directory (default build/demo). Exit: 0 ok, 1 failed, 2 usage.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${KEEL_DEMO_DIR:-$top/build/demo}
usage() { sed -n '3,26p' "$0" | sed 's/^# \{0,1\}//'; }
[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }
[[ -f $dir/env ]] || { echo "ctl: no demo in $dir (run make demo first)" >&2; exit 1; }
bin=$top/build/release/bin
# shellcheck source=/dev/null
source "$dir/env" # port, device, prefix, pki, mosq, keeld_mode, bin, KEEL_SOCKET, web_port...
export KEEL_SOCKET
# Shows the real command before running it.
run() {
  printf '$'; printf ' %q' "${@/#$top\//}"; printf '\n'
  "$@"
}
keeld_only() {
  [[ ${keeld_mode:-0} == 1 ]] || { echo "ctl: $1 needs the demo under keeld (make demo without DEMO_DIRECT)" >&2; exit 1; }
}
# keel app stop returns while the app is stopping; start is refused until it has stopped.
keeld_restart() { # app
  run "$bin/keel" app stop "$1"
  for _ in $(seq 200); do
    "$bin/keel" app list | awk -v n="$1" '$1 == n {s=$3} END {exit s != "stopped"}' && break
    sleep 0.05
  done
  run "$bin/keel" app start "$1"
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
  keeld_only crash
  pid=$("$bin/keel" app list | awk '$1 == "envmon" && $3 == "running" {print $4}')
  [[ -n $pid ]] || { echo "ctl: envmon is not running" >&2; exit 1; }
  run kill -SEGV "$pid"
  echo "keel-envmon (pid $pid) crashed: see keel app list, keel app crashes envmon"
  ;;
deploy)
  keeld_only deploy
  ver=${2:-1.1.0} key=$keys/dev.sec tag=""
  case $ver in
  broken | 1.2.0) ver=1.2.0 ;;
  1.0.0 | 1.1.0) ;;
  # 1.1.0 again, its release manifest signed with a key keeld does not trust
  forged) ver=1.1.0 key=$dir/firmware/rogue.sec tag=-forged ;;
  *) echo "ctl: deploy 1.1.0, 1.0.0, broken or forged" >&2; exit 2 ;;
  esac
  pkg=$dir/packages/envmon-$ver.kpkg
  [[ -f $pkg ]] || { echo "ctl: no package $pkg" >&2; exit 2; }
  # every release gets its own directory (keeld applies a manifest URL once)
  rel=envmon-$ver$tag-$(date +%s%N | cut -c1-13)
  run "$bin/keel" release make --key "$key" --hardware "$hardware" \
    --out "$dir/site/$rel" "$pkg"
  run "$bin/keel" cloud deploy --manifest "https://127.0.0.1:$web_port/$rel/manifest.kman" \
    --device "$device" --config "$dir/operator.json"
  echo "announced: keeld fetches, verifies and installs it on trial; follow it in the live view"
  echo "or with: KEEL_SOCKET=$KEEL_SOCKET $bin/keel app logs envmon"
  ;;
app-restart)
  if [[ ${keeld_mode:-0} == 1 ]]; then
    keeld_restart envmon
    exit 0
  fi
  old=$(cat "$dir/envmon.pid")
  kill -KILL "$old" 2>/dev/null || true
  period=$(cat "$dir/envmon.period" 2>/dev/null || echo 2000)
  setsid "$bin/keel-envmon" --rt-socket "$dir/rt.sock" --cloud "$dir/device.json" \
    --status "$dir/envmon.json" --period-ms "$period" </dev/null >>"$dir/envmon.log" 2>&1 &
  echo $! >"$dir/envmon.pid"
  echo "app killed (pid $old) and started again (pid $!)"
  ;;
world-restart)
  if [[ ${keeld_mode:-0} == 1 ]]; then
    keeld_restart envmon-rt
    echo "RT core powered off and on again: the room persists; keeld re-pairs the app's channel"
    exit 0
  fi
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
  if [[ ${keeld_mode:-0} == 1 ]]; then
    # under keeld the bus is inside the simulator, behind the RT core's line driver: only the
    # gateway (through its channel to the RT core) reaches it
    echo "the RS485 bus is behind the RT core; the gateway's last poll (its status file):"
    jq . "$dir/gateway.json"
    echo "and the bus as the world sees it:"
    jq '{rs485, bridge, modbus}' "$dir/world.json"
    exit 0
  fi
  bus=$(jq -r .modbus.port "$dir/world.json")
  echo "unit 1 (room sensor): temperature, humidity, pressure"
  run "$bin/keel" modbus read -R "127.0.0.1:$bus" -u 1 -T input 0 3
  echo "unit 2 (supply-air sensor): temperature"
  run "$bin/keel" modbus read -R "127.0.0.1:$bus" -u 2 -T input 0 1
  ;;
sensor-update)
  case ${2:-1.1.0} in
  broken) img=supply-air-1.2.0-broken.kimg ;;
  forged) img=supply-air-forged.kimg ;;
  *) img=supply-air-${2:-1.1.0}.kimg ;;
  esac
  [[ -f $dir/firmware/$img ]] || { echo "ctl: no image $dir/firmware/$img" >&2; exit 2; }
  if [[ ${keeld_mode:-0} == 1 ]]; then
    # keeld routes "<app>.<method>"; the gateway fetches the image from the release server
    # through keeld's HTTP tunnel (it has no network of its own)
    run "$bin/keel" cloud call --device "$device" gateway.updateSensorFirmware \
      "{\"unit\":2,\"url\":\"https://127.0.0.1:$web_port/sensor/$img\"}" --timeout 60 \
      --config "$dir/operator.json"
  else
    run "$bin/keel" cloud call --device gateway-1 updateSensorFirmware \
      "{\"unit\":2,\"image\":\"$dir/firmware/$img\"}" --timeout 60 --config "$dir/operator.json"
  fi
  ;;
*)
  usage >&2
  exit 2
  ;;
esac
