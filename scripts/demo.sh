#!/usr/bin/env bash
# make demo: the whole device on this machine, no hardware. Starts a local mosquitto with TLS
# and freshly made certificates (the cloud), nginx (the release server), and keeld, the device's
# supervisor, with three signed packages: envmon-rt (keel-sim: the real-time core running the
# envmon firmware on Keel's RTOS, the room, an RS485 bus with two MODBUS sensors), envmon
# (keel-envmon) and gateway (keel-gateway). Then shows a live view and the commands to try from
# a second terminal (demo/ctl.sh). Ctrl-C stops everything it started.
#
#   DEMO_SECONDS=N   unattended: run at most N seconds with the world 60x faster than the wall
#                    clock, go through the interactions (setpoint, sensor firmware update, power
#                    cycle, crash, deploy 1.1.0, a broken 1.2.0, a forged release) and exit
#                    0 only if each had the right outcome and the room settled within 0.5 C
#                    of the setpoint; 1 otherwise (docs/quickstart.md, section 3).
#   DEMO_SPEED=X     virtual seconds per wall second (default 1 interactive, 60 unattended)
#   DEMO_TARGET=C    the setpoint the unattended run asks for (default 22)
#   KEEL_BIN=DIR     where keel, keeld and the apps are (default build/release/bin)
#   KEEL_APP_BIN=DIR where the packaged programs are, if not KEEL_BIN (an unsanitized build)
#   KEEL_DEMO_DIR=D  working directory (default build/demo)
#   DEMO_DIRECT=1    without keeld (no root needed): keel-sim, keel-envmon and keel-gateway as
#                    plain processes, each app with its own cloud link, the bus as RTU over TCP.
set -euo pipefail
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${KEEL_BIN:-$top/build/release/bin}
appbin=${KEEL_APP_BIN:-$bin}
seconds=${DEMO_SECONDS:-0}
unattended=0
[[ $seconds =~ ^[0-9]+$ ]] || { echo "demo: DEMO_SECONDS must be a whole number" >&2; exit 2; }
((seconds > 0)) && unattended=1
speed=${DEMO_SPEED:-$((unattended ? 60 : 1))}
[[ $speed =~ ^[1-9][0-9]*$ ]] || { echo "demo: DEMO_SPEED must be a whole number >= 1" >&2; exit 2; }
target=${DEMO_TARGET:-22}
dir=${KEEL_DEMO_DIR:-$top/build/demo}
direct=${DEMO_DIRECT:-0}
[[ -n ${DEMO_KEELD:-} ]] && echo "demo: DEMO_KEELD is gone: keeld is the default (DEMO_DIRECT=1 runs without it)" >&2
[[ $direct == 0 || $direct == 1 ]] || { echo "demo: DEMO_DIRECT must be 0 or 1" >&2; exit 2; }
keeld_mode=$((1 - direct))
device=envmon-1
prefix=keel
if ((keeld_mode)); then
  [[ $(id -u) == 0 ]] || { echo "demo: keeld's sandbox needs root (sudo make demo), or DEMO_DIRECT=1" >&2; exit 3; }
  for b in keel keeld; do
    [[ -x $bin/$b ]] || { echo "demo: $bin/$b not built (make release)" >&2; exit 3; }
  done
  for b in keel-sim keel-envmon keel-envmon-broken keel-gateway; do
    [[ -x $appbin/$b ]] || { echo "demo: $appbin/$b not built (make release)" >&2; exit 3; }
  done
  command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] ||
    { echo "demo: nginx is missing (bash scripts/deps.sh)" >&2; exit 3; }
else
  for b in keel keel-sim keel-envmon keel-gateway; do
    [[ -x $bin/$b ]] || { echo "demo: $bin/$b not built (make release)" >&2; exit 3; }
  done
fi
command -v jq >/dev/null || { echo "demo: jq is missing (bash scripts/deps.sh)" >&2; exit 3; }
mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[[ -x $mosq ]] || { echo "demo: mosquitto is missing (bash scripts/deps.sh)" >&2; exit 3; }

mkdir -p "$dir/state" "$dir/broker"
# One demo per directory: a second one would take over the first one's pid files and ports.
exec 9>"$dir/.lock"
flock -n 9 || { echo "demo: another demo is running in $dir (KEEL_DEMO_DIR picks another)" >&2; exit 3; }
# pid files of an earlier run name processes that are gone (and pids that may be reused)
rm -f "$dir/envmon.pid" "$dir/keel-sim.pid" "$dir/broker/pid" "$dir/gateway.pid" "$dir/web/pid"
pids=()
cleanup() {
  trap - EXIT INT TERM
  local p f
  # demo/ctl.sh may have restarted the app, the world or the broker: stop those too
  for f in "$dir/envmon.pid" "$dir/keel-sim.pid" "$dir/broker/pid" "$dir/gateway.pid"; do
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
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# The unattended checks' view of the broker: ONE operator subscription to every topic they
# read, into one file. The setpoint is asked only once device telemetry has arrived in this
# file, which proves the subscription is live, so the acknowledgement cannot be published
# before anyone listens. (Separate watchers, one per topic, made integration.demo flaky: under
# load the reported-properties watcher could connect after the ack had gone by, and reported
# properties are not retained.) The topics are given reported first, so even a client that
# subscribed one topic at a time would have asked for it before the telemetry it got.
watch_broker() { # file topic-filter...
  local out=$1 t args=()
  shift
  for t in "$@"; do args+=(-t "$t"); done
  mosquitto_sub -h 127.0.0.1 -p "$port" --cafile "$pki/ca.pem" --cert "$pki/operator.pem" \
    --key "$pki/operator.key" -i "demo-watch-$$-$RANDOM" -v "${args[@]}" >"$out" 2>/dev/null &
  pids+=("$!")
}
# Lines of the watch file on topics under a prefix (device telemetry, reported properties).
seen() { # topic-prefix grep-pattern
  grep -F -- "$1" "$dir/broker-watch.log" 2>/dev/null | grep -q -- "$2"
}
# ---- the cloud: mosquitto with TLS, client certificates, an ACL per device ----
pki=$dir/pki
"$top/scripts/cloud-certs.sh" "$pki" "$device" gateway-1 operator >/dev/null
port=$(free_port)
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
bin=$bin
appbin=$appbin
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

# The rest depends on the mode: demo/keeld.sh (the device under keeld, the default) or
# demo/direct.sh (the programs started directly, with the MODBUS gateway). Both are parts of
# this script, sourced, sharing its variables and its cleanup.
if ((keeld_mode)); then
  # shellcheck source=demo/keeld.sh
  source "$top/demo/keeld.sh"
else
  # shellcheck source=demo/direct.sh
  source "$top/demo/direct.sh"
fi
