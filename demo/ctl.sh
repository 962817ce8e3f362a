#!/usr/bin/env bash
# The operator's side of `make demo`, from a second terminal: talks to the demo's broker with
# the operator certificate (the ACL lets "operator" use every device's topics).
#
#   demo/ctl.sh set C          desired targetTemperature = C (retained desired document)
#   demo/ctl.sh watch          telemetry and reported properties as they reach the broker
#   demo/ctl.sh broker-stop    stop mosquitto (the app queues telemetry in its outbox)
#   demo/ctl.sh broker-start   start it again on the same port (the queue drains)
#   demo/ctl.sh app-restart    SIGKILL the app and start it again
#   demo/ctl.sh modbus         read the sensors on the world's RS485 bus (keel modbus read)
#   demo/ctl.sh sensor-update  call the gateway's updateSensorFirmware method, show the answer
#
# KEEL_DEMO_DIR: the demo's directory (default build/demo). Exit: 0 ok, 1 failed, 2 usage.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${KEEL_DEMO_DIR:-$top/build/demo}
bin=${KEEL_BIN:-$top/build/release/bin}
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }
[[ -f $dir/env ]] || { echo "ctl: no demo in $dir (run make demo first)" >&2; exit 1; }
# shellcheck source=/dev/null
source "$dir/env"
tls=(-h localhost -p "$port" --cafile "$pki/ca.pem" --cert "$pki/operator.pem"
  --key "$pki/operator.key")
case ${1:-} in
set)
  v=${2:-}
  [[ $v =~ ^-?[0-9]+(\.[0-9]+)?$ ]] || { echo "ctl: set needs a temperature, e.g. 21.5" >&2; exit 2; }
  # The desired document's $version must grow: keep a counter beside the demo.
  n=$(( $(cat "$dir/desired.version" 2>/dev/null || echo 0) + 1 ))
  echo "$n" >"$dir/desired.version"
  doc="{\"targetTemperature\":$v,\"\$version\":$n}"
  mosquitto_pub "${tls[@]}" -i "demo-ctl-$$" -q 1 -r -t "$prefix/$device/twin/desired" -m "$doc"
  echo "desired: $doc"
  ;;
watch)
  exec mosquitto_sub "${tls[@]}" -i "demo-ctl-$$" -v -t "$prefix/$device/messages/events/#" \
    -t "$prefix/$device/twin/PATCH/properties/reported/#"
  ;;
broker-stop)
  kill -TERM "$(cat "$dir/broker/pid")" && echo "broker stopped: telemetry now queues on the device"
  ;;
broker-start)
  setsid "$mosq" -c "$dir/broker/mosquitto.conf" </dev/null >/dev/null 2>&1 &
  echo $! >"$dir/broker/pid"
  echo "broker started (pid $!): watch the queue drain"
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
modbus)
  bus=$(jq -r .modbus.port "$dir/world.json")
  echo "unit 1 (room sensor): temperature, humidity, pressure"
  "$bin/keel" modbus read -R "127.0.0.1:$bus" -u 1 -T input 0 3
  echo "unit 2 (supply-air sensor): temperature"
  "$bin/keel" modbus read -R "127.0.0.1:$bus" -u 2 -T input 0 1
  ;;
sensor-update)
  rid=$RANDOM
  out=$(mktemp)
  mosquitto_sub "${tls[@]}" -i "demo-ctl-sub-$$" -v -C 1 -W 10 \
    -t "$prefix/gateway-1/methods/res/#" >"$out" 2>/dev/null &
  subpid=$!
  sleep 0.5 # let the subscription settle before the call (a demo helper, not a test)
  mosquitto_pub "${tls[@]}" -i "demo-ctl-$$" -q 1 \
    -t "$prefix/gateway-1/methods/POST/updateSensorFirmware/?\$rid=$rid" -m '{"unit":2}'
  wait "$subpid" || true
  if [[ -s $out ]]; then cat "$out"; rm -f "$out"; else rm -f "$out"; echo "no answer in 10 s" >&2; exit 1; fi
  ;;
*)
  usage >&2
  exit 2
  ;;
esac
