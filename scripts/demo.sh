#!/usr/bin/env bash
# make demo: the whole device on this machine, no hardware. Starts a local mosquitto with TLS
# and freshly made certificates (the cloud), keel-sim (the real-time core running the envmon
# firmware on Keel's RTOS, its sensor and HVAC, the room, an RS485 bus with MODBUS sensors),
# keel-envmon and keel-gateway (the high-level apps), then shows a live view and the commands to try from a second terminal (demo/ctl.sh).
# Ctrl-C stops everything it started.
#
#   DEMO_SECONDS=N   unattended: run at most N seconds with the world 60x faster than the wall
#                    clock, set targetTemperature, and exit 0 only if telemetry reached the
#                    broker (from both apps), the setpoint was acknowledged (ac 200), a sensor
#                    firmware update through the gateway's method succeeded, the apps rode out
#                    a power cycle of the world (the sensor kept its new firmware), and the
#                    room settled within 0.5 C of the setpoint; 1 otherwise.
#   DEMO_SPEED=X     virtual seconds per wall second (default 1 interactive, 60 unattended)
#   DEMO_TARGET=C    the setpoint the unattended run asks for (default 22)
#   KEEL_BIN=DIR     where keel, keel-sim, keel-envmon, keel-gateway are (build/release/bin)
#   KEEL_DEMO_DIR=D  working directory (default build/demo; the room's state persists there)
#   DEMO_KEELD=1     run the RT core (keel-sim) and keel-envmon as signed keeld packages: keeld
#                    pairs their channel, carries telemetry to the broker and restarts a
#                    crashed app (demo/ctl.sh crash). Needs root and unsanitized binaries
#                    (the release tree). No MODBUS gateway in this mode (keel-sim's bus is a
#                    TCP socket and keeld's sandbox has no network); unattended, it checks
#                    telemetry, the ack, a crash recovered by keeld and the room instead.
set -euo pipefail
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${KEEL_BIN:-$top/build/release/bin}
seconds=${DEMO_SECONDS:-0}
unattended=0
[[ $seconds =~ ^[0-9]+$ ]] || { echo "demo: DEMO_SECONDS must be a whole number" >&2; exit 2; }
((seconds > 0)) && unattended=1
speed=${DEMO_SPEED:-$((unattended ? 60 : 1))}
[[ $speed =~ ^[1-9][0-9]*$ ]] || { echo "demo: DEMO_SPEED must be a whole number >= 1" >&2; exit 2; }
target=${DEMO_TARGET:-22}
dir=${KEEL_DEMO_DIR:-$top/build/demo}
keeld_mode=${DEMO_KEELD:-0}
[[ $keeld_mode == 0 || $keeld_mode == 1 ]] || { echo "demo: DEMO_KEELD must be 0 or 1" >&2; exit 2; }
if ((keeld_mode)); then
  [[ -x $bin/keeld ]] || { echo "demo: $bin/keeld not built (make release)" >&2; exit 3; }
  [[ $(id -u) == 0 ]] || { echo "demo: DEMO_KEELD=1 needs root (keeld's sandbox)" >&2; exit 3; }
fi
device=envmon-1
prefix=keel
for b in keel keel-sim keel-envmon keel-gateway; do
  [[ -x $bin/$b ]] || { echo "demo: $bin/$b not built (make release)" >&2; exit 3; }
done
command -v jq >/dev/null || { echo "demo: jq is missing (bash scripts/deps.sh)" >&2; exit 3; }
mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[[ -x $mosq ]] || { echo "demo: mosquitto is missing (bash scripts/deps.sh)" >&2; exit 3; }

mkdir -p "$dir/state" "$dir/broker"
# pid files of an earlier run name processes that are gone (and pids that may be reused)
rm -f "$dir/envmon.pid" "$dir/keel-sim.pid" "$dir/broker/pid" "$dir/gateway.pid"
pids=()
cleanup() {
  trap - EXIT INT TERM
  local p f
  # demo/ctl.sh may have restarted the app, the world or the broker: stop those too
  for f in "$dir/envmon.pid" "$dir/keel-sim.pid" "$dir/broker/pid"; do
    [[ -f $f ]] && pids+=("$(cat "$f")")
  done
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -f "$dir/rt.sock"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf 'demo: %s\n' "$*"; }
# Waits (with a deadline, never a fixed sleep) until a command succeeds.
wait_for() { # seconds description command...
  local limit=$1 what=$2 t0=$SECONDS
  shift 2
  until "$@" 2>/dev/null; do
    if ((SECONDS - t0 >= limit)); then log "$what did not come up in ${limit}s"; return 1; fi
    sleep 0.05
  done
}

# ---- the cloud: mosquitto with TLS, client certificates, an ACL per device ----
pki=$dir/pki
"$top/scripts/cloud-certs.sh" "$pki" "$device" gateway-1 operator >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$dir/broker/acl" <<ACL
user operator
topic readwrite $prefix/#

pattern readwrite $prefix/%u/#
ACL
cat >"$dir/broker/mosquitto.conf" <<CONF
per_listener_settings false
allow_anonymous false
listener $port 127.0.0.1
cafile $pki/ca.pem
certfile $pki/server.pem
keyfile $pki/server.key
require_certificate true
use_identity_as_username true
tls_version tlsv1.2
acl_file $dir/broker/acl
persistence true
persistence_location $dir/broker/
$( [[ $(id -u) == 0 ]] && echo "user root" )
log_dest file $dir/broker/mosquitto.log
CONF
cat >"$dir/device.json" <<JSON
{"cloud": {"scheme": "plain", "host": "127.0.0.1", "port": $port,
  "device_id": "$device", "prefix": "$prefix",
  "ca": "$pki/ca.pem", "cert": "$pki/$device.pem", "key": "$pki/$device.key",
  "outbox": "$dir/state/outbox.db", "backoff_min_ms": 200, "backoff_max_ms": 2000}}
JSON
cat >"$dir/operator.json" <<JSON
{"host": "127.0.0.1", "port": $port, "prefix": "$prefix",
 "ca": "$pki/ca.pem", "cert": "$pki/operator.pem", "key": "$pki/operator.key"}
JSON
cat >"$dir/env" <<ENV
port=$port
device=$device
prefix=$prefix
pki=$pki
mosq=$mosq
keeld_mode=$keeld_mode
KEEL_SOCKET=$dir/keeld/keeld.sock
ENV
start_broker() {
  "$mosq" -c "$dir/broker/mosquitto.conf" >>"$dir/broker/mosquitto.out" 2>&1 &
  echo $! >"$dir/broker/pid"
  pids+=("$!")
}
start_broker
wait_for 10 "mosquitto on port $port" bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
log "cloud: mosquitto with TLS on 127.0.0.1:$port (certificates in $pki)"

# ---- sensor firmware: a signing key and signed images for the supply-air sensor (unit 2) ----
# 1.0.0 is what the sensor is provisioned with; 1.1.0 an update; 1.2.0 a build that fails its
# self-test (the sensor falls back); "forged" is signed with a key the gateway does not trust.
sensor_comp=5d2c8e41-0b7a-4f3e-9c16-7a8b9c0d1e2f
fw=$dir/firmware
mkdir -p "$fw"
[[ -f $fw/sensor.pub ]] || "$bin/keel" image keygen --out "$fw/sensor" >/dev/null
[[ -f $fw/rogue.pub ]] || "$bin/keel" image keygen --out "$fw/rogue" >/dev/null
sign_fw() { # version magic key out
  [[ -f $4 ]] && return 0
  { printf '%s supply-air %s\n' "$2" "$1"; head -c 20000 /dev/urandom; } >"$4.bin"
  "$bin/keel" image sign --key "$3" --component "$sensor_comp" --version "$1" --counter 1 \
    "$4.bin" "$4" >/dev/null
}
sign_fw 1.0.0 KEEL-SENSOR-FW "$fw/sensor.sec" "$fw/supply-air-1.0.0.kimg"
sign_fw 1.1.0 KEEL-SENSOR-FW "$fw/sensor.sec" "$fw/supply-air-1.1.0.kimg"
sign_fw 1.2.0 BROKEN-BUILD "$fw/sensor.sec" "$fw/supply-air-1.2.0-broken.kimg"
sign_fw 9.9.9 KEEL-SENSOR-FW "$fw/rogue.sec" "$fw/supply-air-forged.kimg"

period=2000
((unattended)) && period=$((2000 / speed > 50 ? 2000 / speed : 50))
echo "$period" >"$dir/envmon.period"

# ---- DEMO_KEELD=1: keeld runs the RT core and the app as signed packages ----
if ((keeld_mode)); then
  export KEEL_SOCKET=$dir/keeld/keeld.sock
  keys=$dir/keys
  mkdir -p "$keys" "$dir/keeld" "$dir/packages"
  [[ -f $keys/dev.pub ]] || "$bin/keel" image keygen --out "$keys/dev" >/dev/null
  jq -n --arg st "$dir/keeld" --arg key "$keys/dev.pub" --slurpfile dev "$dir/device.json" \
    '{state_dir: $st, trusted_keys: [$key], backoff_initial_ms: 200,
      cloud: ($dev[0].cloud + {outbox: ($st + "/outbox.db")})}' >"$dir/keeld.json"
  rm -f "$KEEL_SOCKET"
  "$bin/keeld" --config "$dir/keeld.json" >"$dir/keeld.log" 2>&1 &
  pids+=("$!")
  wait_for 10 "keeld" test -S "$KEEL_SOCKET"
  pkg() { # name exe manifest args-json: pack a signed package, install it (over an old one)
    local p=$dir/packages/$1
    rm -rf "$p" "$p.kpkg" && mkdir -p "$p/bin" && cp "$bin/$2" "$p/bin/"
    jq --arg exe "bin/$2" --argjson args "$4" '. + {exec: $exe, args: $args}' \
      "$3" >"$p/app_manifest.json"
    "$bin/keel" app pack --key "$keys/dev.sec" "$p" "$p.kpkg" >/dev/null
    "$bin/keel" app install "$p.kpkg" >/dev/null
  }
  pkg envmon-rt keel-sim "$top/firmware/apps/envmon/app_manifest.json" \
    "[\"--state\", \"/data\", \"--status\", \"/data/world.json\", \"--speed\", \"$speed\"]"
  pkg envmon keel-envmon "$top/apps/envmon/app_manifest.json" \
    "[\"--status\", \"/data/envmon.json\", \"--period-ms\", \"$period\"]"
  rm -f "$dir/keeld/data/envmon-rt/world.json" "$dir/keeld/data/envmon/envmon.json"
  ln -sfn "$dir/keeld/data/envmon-rt/world.json" "$dir/world.json"
  ln -sfn "$dir/keeld/data/envmon/envmon.json" "$dir/envmon.json"
  "$bin/keel" app start envmon-rt >/dev/null
  "$bin/keel" app start envmon >/dev/null
  wait_for 10 "the world's status" test -s "$dir/world.json"
  wait_for 10 "keel-envmon" test -s "$dir/envmon.json"
  log "keeld: envmon-rt (keel-sim, the RT core at ${speed}x) and envmon installed signed; keeld paired their channel (log $dir/keeld.log)"
  applog() { "$bin/keel" app logs envmon 200 2>/dev/null || true; }
  if ((unattended)); then
    sub() {
      mosquitto_sub -h 127.0.0.1 -p "$port" --cafile "$pki/ca.pem" --cert "$pki/operator.pem" \
        --key "$pki/operator.key" -i "demo-watch-$$-$RANDOM" -v -t "$1" >"$2" 2>/dev/null &
      pids+=("$!")
    }
    sub "$prefix/$device/messages/events/#" "$dir/telemetry.log"
    sub "$prefix/$device/twin/PATCH/properties/reported/#" "$dir/reported.log"
    deadline=$((SECONDS + seconds))
    have_telemetry=0 asked=0 acked=0 settled=0 crashed=0 recovered=0 room=0
    while ((SECONDS < deadline)); do
      grep -q '"temperature"' "$dir/telemetry.log" 2>/dev/null && have_telemetry=1
      if ((have_telemetry && !asked)); then
        "$top/demo/ctl.sh" set "$target" >/dev/null && asked=1
        log "telemetry reached the broker through keeld; asked for targetTemperature=$target"
      fi
      if ((asked)) && grep -q "\"targetTemperature\":{\"value\":$target,\"ac\":200" "$dir/reported.log"; then
        ((acked)) || log "the device acknowledged targetTemperature=$target (ac 200)"
        acked=1
      fi
      if ((acked && !crashed)) && "$top/demo/ctl.sh" crash >/dev/null; then
        crashed=1
        log "keel-envmon crashed (SIGSEGV)"
      fi
      if ((crashed && !recovered)) && "$bin/keel" app crashes envmon 2>/dev/null | grep -q SIGSEGV &&
        (($(applog | grep -c 'rt: connected') >= 2)); then
        recovered=1
        log "keeld wrote a crash report and restarted it; it re-opened its channel to the RT core"
      fi
      room=$(jq -r '.room.temperature' "$dir/world.json" 2>/dev/null || echo 0)
      if ((acked)) && jq -en --argjson r "$room" --argjson t "$target" '($r - $t) | fabs <= 0.5' >/dev/null; then
        settled=$((settled + 1))
      else
        settled=0
      fi
      if ((settled >= 10 && recovered)); then
        log "room settled at $room C (target $target); world $(jq -r .time_s "$dir/world.json") s"
        log "PASS"
        exit 0
      fi
      sleep 0.5
    done
    log "FAIL after ${seconds}s: telemetry=$have_telemetry asked=$asked acked=$acked crash_recovered=$recovered room=$room target=$target"
    applog | tail -5 | sed 's/^/  envmon | /'
    tail -5 "$dir/keeld.log" | sed 's/^/  keeld  | /'
    exit 1
  fi
  while :; do
    printf '\033[H\033[2J'
    echo "Keel demo under keeld: environment monitor with HVAC control  (Ctrl-C stops everything)"
    echo "-------------------------------------------------------------------------------------"
    jq -r '"world (envmon-rt)  t=\(.time_s|floor) s   room \(.room.temperature*100|round/100) C   HVAC actuator: \(.hvac)"' "$dir/world.json" 2>/dev/null || echo "world: starting"
    jq -r '"HL app (envmon)    rt \(.rt)   reading \(.temperature*100|round/100) C   setpoint \(.targetTemperature // "none")   HVAC \(.hvacMode)   cloud \(.cloud)\nlast property ack  \(.lastAck)"' "$dir/envmon.json" 2>/dev/null || echo "app: starting"
    echo "apps (keel app list):"
    "$bin/keel" app list 2>/dev/null | sed 's/^/  /'
    echo "-------------------------------------------------------------------------------------"
    echo "Try, from a second terminal in $top (KEEL_SOCKET=$KEEL_SOCKET for keel app):"
    echo "  demo/ctl.sh set 23.5   set targetTemperature        demo/ctl.sh watch   watch the broker"
    echo "  demo/ctl.sh crash      SIGSEGV keel-envmon: keeld restarts it; keel app crashes envmon"
    echo "Recent app events:"
    applog | tail -4 | sed 's/^/  /'
    sleep 1
  done
fi

# ---- the world: the RT core (envmon firmware on the RTOS sim port), sensor, HVAC, room ----
# keeld does not yet load RT images into a sim process or pair channels (docs/quickstart.md,
# "Gaps"), so the demo starts keel-sim and the app itself; keel-sim pairs the two manifests.
rm -f "$dir/world.json" "$dir/envmon.json"
# The bus gets a fixed port for this run, so a restarted world (demo/ctl.sh world-restart)
# is found where the gateway expects it.
bus_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sim_cmd=("$bin/keel-sim" --socket "$dir/rt.sock" --state "$dir/state"
  --app-manifest "$top/apps/envmon/app_manifest.json"
  --rt-manifest "$top/firmware/apps/envmon/app_manifest.json"
  --speed "$speed" --status "$dir/world.json" --modbus-port "$bus_port"
  --sensor-key "$fw/sensor.pub" --sensor-image "$fw/supply-air-1.0.0.kimg"
  --sensor-component "$sensor_comp")
printf '%q ' "${sim_cmd[@]}" >"$dir/keel-sim.cmd"
"${sim_cmd[@]}" >"$dir/keel-sim.log" 2>&1 &
pids+=("$!")
echo "$!" >"$dir/keel-sim.pid"
wait_for 10 "keel-sim" test -S "$dir/rt.sock"
wait_for 10 "the world's status" test -s "$dir/world.json"
log "world: keel-sim at ${speed}x real time, RS485 bus on 127.0.0.1:$bus_port (log $dir/keel-sim.log)"

"$bin/keel-envmon" --rt-socket "$dir/rt.sock" --cloud "$dir/device.json" \
  --status "$dir/envmon.json" --period-ms "$period" >"$dir/envmon.log" 2>&1 &
envmon_pid=$!
pids+=("$envmon_pid")
echo "$envmon_pid" >"$dir/envmon.pid"
wait_for 10 "keel-envmon" test -s "$dir/envmon.json"
log "app: keel-envmon (log $dir/envmon.log)"

# ---- the MODBUS gateway: its poll map, and its own cloud identity (standalone) ----
gw_period=$((unattended ? 500 : 2000))
cat >"$dir/gateway.conf.json" <<JSON
{"bus": {"rtu_over_tcp": "127.0.0.1:$bus_port"}, "period_ms": $gw_period,
 "points": [
  {"name": "roomTemperature", "unit": 1, "function": 4, "address": 0, "scale": 0.01, "signed": true},
  {"name": "roomHumidity", "unit": 1, "function": 4, "address": 1, "scale": 0.01},
  {"name": "roomPressure", "unit": 1, "function": 4, "address": 2, "scale": 0.1},
  {"name": "supplyAirTemperature", "unit": 2, "function": 4, "address": 0, "scale": 0.01, "signed": true}
 ],
 "cloud": {"scheme": "plain", "host": "127.0.0.1", "port": $port,
  "device_id": "gateway-1", "prefix": "$prefix",
  "ca": "$pki/ca.pem", "cert": "$pki/gateway-1.pem", "key": "$pki/gateway-1.key",
  "outbox": "$dir/state/gateway-outbox.db", "backoff_min_ms": 200, "backoff_max_ms": 2000}}
JSON
rm -f "$dir/gateway.json"
"$bin/keel-gateway" --config "$dir/gateway.conf.json" --status "$dir/gateway.json" \
  --sensor-key "$fw/sensor.pub" \
  >"$dir/gateway.log" 2>&1 &
pids+=("$!")
echo "$!" >"$dir/gateway.pid"
wait_for 10 "keel-gateway" test -s "$dir/gateway.json"
log "app: keel-gateway polling 4 points on the bus (log $dir/gateway.log)"

sub() { # topic filter -> operator subscription, output file
  mosquitto_sub -h 127.0.0.1 -p "$port" --cafile "$pki/ca.pem" --cert "$pki/operator.pem" \
    --key "$pki/operator.key" -i "demo-watch-$$-$RANDOM" -v -t "$1" >"$2" 2>/dev/null &
  pids+=("$!")
}

if ((unattended)); then
  sub "$prefix/$device/messages/events/#" "$dir/telemetry.log"
  sub "$prefix/$device/twin/PATCH/properties/reported/#" "$dir/reported.log"
  sub "$prefix/gateway-1/messages/events/#" "$dir/gateway-telemetry.log"
  deadline=$((SECONDS + seconds))
  have_telemetry=0 asked=0 acked=0 settled=0 gw=0 sensor=0 cycled=0 survived=0
  while ((SECONDS < deadline)); do
    if ((!gw)) && grep -q '"supplyAirTemperature"' "$dir/gateway-telemetry.log" 2>/dev/null; then
      gw=1
      log "gateway telemetry (MODBUS sensors) reached the broker"
      # a sensor firmware update through the cloud method, to whichever version is not running
      now=$(jq -r .modbus.sensorFirmware "$dir/world.json")
      want=1.1.0
      [[ $now == 1.1.0 ]] && want=1.0.0
      if "$top/demo/ctl.sh" sensor-update "$want" >"$dir/sensor-update.out" 2>&1 &&
        grep -q "running the new image" "$dir/sensor-update.out"; then
        sensor=1
        log "sensor firmware $now -> $want through updateSensorFirmware"
        # a power cycle of the world: the apps must ride it out, the sensor keep its firmware
        "$top/demo/ctl.sh" world-restart >/dev/null
        cycled=1
        log "world power-cycled"
      else
        log "sensor firmware update failed: $(tail -1 "$dir/sensor-update.out")"
      fi
    fi
    grep -q '"temperature"' "$dir/telemetry.log" 2>/dev/null && have_telemetry=1
    if ((have_telemetry && !asked)); then
      "$top/demo/ctl.sh" set "$target" >/dev/null && asked=1
      log "telemetry reached the broker; asked for targetTemperature=$target"
    fi
    if ((asked)) && grep -q "\"targetTemperature\":{\"value\":$target,\"ac\":200" "$dir/reported.log"; then
      ((acked)) || log "the device acknowledged targetTemperature=$target (ac 200)"
      acked=1
    fi
    if ((cycled && !survived)) && (($(grep -c '^rt: connected' "$dir/envmon.log") >= 2)) &&
      [[ $(jq -r .modbus.sensorFirmware "$dir/world.json" 2>/dev/null) == "$want" ]]; then
      survived=1
      log "after the power cycle: the app reconnected to the RT core, the sensor runs $want"
    fi
    room=$(jq -r '.room.temperature' "$dir/world.json" 2>/dev/null || echo 0)
    if ((acked)) && jq -en --argjson r "$room" --argjson t "$target" '($r - $t) | fabs <= 0.5' >/dev/null; then
      settled=$((settled + 1))
    else
      settled=0
    fi
    # settled: inside the band for 10 checks in a row (5 s of wall time, minutes of room time)
    if ((settled >= 10 && gw && sensor && survived)); then
      log "room settled at $room C (target $target); world $(jq -r .time_s "$dir/world.json") s"
      log "PASS"
      exit 0
    fi
    sleep 0.5
  done
  log "FAIL after ${seconds}s: telemetry=$have_telemetry asked=$asked acked=$acked gateway=$gw sensor_update=$sensor power_cycle=$survived room=$room target=$target"
  tail -5 "$dir/envmon.log" | sed 's/^/  envmon | /'
  tail -3 "$dir/keel-sim.log" | sed 's/^/  sim    | /'
  exit 1
fi

# ---- interactive: the live view ----
ctl="demo/ctl.sh"
view() {
  local w e
  w=$(cat "$dir/world.json" 2>/dev/null || echo '{}')
  e=$(cat "$dir/envmon.json" 2>/dev/null || echo '{}')
  printf '\033[H\033[2J'
  echo "Keel demo: environment monitor with HVAC control          (Ctrl-C stops everything)"
  [[ $speed == 1 ]] && echo "(the room moves ~0.3 C a minute; DEMO_SPEED=20 make demo runs the world 20x faster)"
  echo "-------------------------------------------------------------------------------------"
  jq -r '"world (keel-sim)   t=\(.time_s|floor) s   room \(.room.temperature*100|round/100) C  \(.room.humidity|round) %RH  \(.room.pressure*10|round/10) hPa\n                   HVAC actuator: \(.hvac)   (changes: \(.hvac_changes))\nRT core (envmon)   samples \(.rt.samples)   last \(.rt.temperature*100|round/100) C   requests \(.rt.requests)   channel \(.rt.channel)\nRS485 bus          frames \(.modbus.answered) answered, \(.modbus.refused) refused   supply-air sensor firmware \(.modbus.sensorFirmware)"' <<<"$w" 2>/dev/null || echo "world: starting"
  jq -r '"HL app (envmon)    rt \(.rt)   reading \(.temperature*100|round/100) C   setpoint \(.targetTemperature // "none")   HVAC \(.hvacMode)\ncloud link         \(.cloud)   telemetry sent \(.telemetrySent)   queued \(.queued)   acked \(.acked)\nlast property ack  \(.lastAck)"' <<<"$e" 2>/dev/null || echo "app: starting"
  jq -r '"MODBUS gateway     bus \(.bus)   polls \(.polls)   sent \(.sent)   cloud \(.cloud)\n                   room \(.last.roomTemperature) C  \(.last.roomHumidity) %RH  supply air \(.last.supplyAirTemperature) C  errors \(.last.errors)\n                   last sensor update: \(.lastSensorUpdate)"' "$dir/gateway.json" 2>/dev/null || echo "gateway: starting"
  local states="" n f
  for n in mosquitto:broker/pid keel-sim:keel-sim.pid keel-envmon:envmon.pid keel-gateway:gateway.pid; do
    f=$dir/${n#*:}
    if [[ -f $f ]] && kill -0 "$(cat "$f")" 2>/dev/null; then
      states+="${n%%:*} running (pid $(cat "$f"))   "
    else
      states+="${n%%:*} STOPPED   "
    fi
  done
  echo "processes          $states"
  echo "-------------------------------------------------------------------------------------"
  echo "Try, from a second terminal in $top (ctl.sh wraps keel cloud / keel modbus; it prints them):"
  echo "  $ctl set 23.5        set the desired targetTemperature (watch the ack and the HVAC)"
  echo "  $ctl watch           watch telemetry and reported properties at the broker"
  echo "  $ctl broker-stop     stop the broker; telemetry queues in the outbox"
  echo "  $ctl broker-start    start it again and see the queue drain"
  echo "  $ctl app-restart     kill the app (SIGKILL) and start it again; it reconnects"
  echo "  $ctl world-restart   power-cycle the world (RT core, sensors, room): the apps ride it out"
  echo "  $ctl modbus          read the sensors on the RS485 bus yourself (keel modbus)"
  echo "  $ctl sensor-update [1.1.0|broken|forged]   push sensor firmware through the gateway"
  echo "  (sudo make demo DEMO_KEELD=1: the RT core and the app as keeld packages; docs/quickstart.md 3b)"
  echo "Recent app events:"
  tail -4 "$dir/envmon.log" 2>/dev/null | sed 's/^/  /'
}
while :; do
  view
  # the app may have been restarted by demo/ctl.sh: adopt the new pid so Ctrl-C stops it
  if [[ -f $dir/envmon.pid ]] && [[ $(cat "$dir/envmon.pid") != "$envmon_pid" ]]; then
    envmon_pid=$(cat "$dir/envmon.pid")
    pids+=("$envmon_pid")
  fi
  sp=$(cat "$dir/keel-sim.pid" 2>/dev/null || true)
  [[ -z $sp || " ${pids[*]} " == *" $sp "* ]] || pids+=("$sp")
  if [[ $(cat "$dir/broker/pid" 2>/dev/null) != "" ]]; then
    bp=$(cat "$dir/broker/pid")
    [[ " ${pids[*]} " == *" $bp "* ]] || pids+=("$bp")
  fi
  sleep 1
done
