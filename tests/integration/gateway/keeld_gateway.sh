#!/usr/bin/env bash
# integration.gateway_keeld: keeld runs keel-sim as the RT package (envmon-rt) and
# keel-gateway as an app (gateway), both signed; keeld pairs the gateway with the RT component
# and hands keel-sim the RT end, which keel-sim routes to the RS485 bridge; the gateway opens
# its end with keel_app_channel_open and has no network of its own. Passes only if:
#   - the gateway's readings (its status file in its data dir) match the world's room;
#   - `keel cloud call ... gateway.updateSensorFirmware` (a real TLS mosquitto, keeld's cloud
#     link) pushes a signed 60 KB image through the RT core's line driver and the sensor runs
#     it (200, version 1.1.0), and a forged image is refused (422);
#   - telemetry from the gateway reached the broker through keeld, and kept coming while a
#     push ran (the push reports its progress as the reported property sensorUpdate);
#   - an image behind a URL (a real nginx) is fetched through keeld's http tunnel (the
#     manifest allows the host) and pushed, over http and over https (libcurl in the sandboxed
#     gateway over the socket keeld connected, the server's certificate verified against the
#     CA the package ships, the name checked): https://127.0.0.1:PORT pushes; a server whose
#     certificate another CA signed, and a name the certificate does not carry (127.0.0.2),
#     are refused and nothing is pushed.
# The packaged programs must be unsanitized (sanitizer runtimes cannot run in keeld's
# sandbox): APP_BIN_DIR holds them (default BIN_DIR); keeld and the tools come from BIN_DIR.
# usage: keeld_gateway.sh BIN_DIR SOURCE_DIR WORK_DIR [APP_BIN_DIR]
set -euo pipefail
bin=$1 top=$2 dir=$3 app_bin=${4:-$1}
rm -rf "$dir" && mkdir -p "$dir"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
}
trap cleanup EXIT
log() { printf 'gateway_keeld: %s\n' "$*"; }
fail() {
  log "FAIL: $*"
  tail -20 "$dir/keeld.log" | sed 's/^/  keeld | /'
  "$bin/keel" app logs gateway 30 2>/dev/null | sed 's/^/  gateway | /' || true
  "$bin/keel" app logs envmon-rt 30 2>/dev/null | sed 's/^/  envmon-rt | /' || true
  exit 1
}
# Waits (with a deadline, never a fixed sleep) until a command succeeds.
wait_for() { # seconds description command...
  local limit=$1 what=$2 t0=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS - t0 < limit)) || fail "$what did not happen in ${limit}s"
    sleep 0.1
  done
}
mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
device=dev1 prefix=keel
sensor_comp=5d2c8e41-0b7a-4f3e-9c16-7a8b9c0d1e2f

# ---- the cloud: mosquitto with TLS and client certificates ----
pki=$dir/pki
"$top/scripts/cloud-certs.sh" "$pki" "$device" operator >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$dir/broker"
printf 'user operator\ntopic readwrite %s/#\n\npattern readwrite %s/%%u/#\n' "$prefix" "$prefix" >"$dir/broker/acl"
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
$( [[ $(id -u) == 0 ]] && echo "user root" )
log_dest file $dir/broker/mosquitto.log
CONF
"$mosq" -c "$dir/broker/mosquitto.conf" >"$dir/broker/out" 2>&1 &
pids+=("$!")
wait_for 10 "mosquitto" bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
cat >"$dir/operator.json" <<JSON
{"host": "127.0.0.1", "port": $port, "prefix": "$prefix",
 "ca": "$pki/ca.pem", "cert": "$pki/operator.pem", "key": "$pki/operator.key"}
JSON
mosquitto_sub -h 127.0.0.1 -p "$port" --cafile "$pki/ca.pem" --cert "$pki/operator.pem" \
  --key "$pki/operator.key" -i "gw-keeld-$$" -v -t "$prefix/$device/#" \
  >"$dir/telemetry.log" 2>/dev/null &
pids+=("$!")

# ---- sensor firmware: 1.0.0 provisioned, 1.1.0 the update, a forged 9.9.9 ----
fw=$dir/fw
mkdir -p "$fw"
"$bin/keel" image keygen --out "$fw/sensor" >/dev/null
"$bin/keel" image keygen --out "$fw/rogue" >/dev/null
sign() { # version key out
  { printf 'KEEL-SENSOR-FW supply-air %s\n' "$1"; head -c 60000 /dev/urandom; } >"$3.bin"
  "$bin/keel" image sign --key "$2" --component "$sensor_comp" --version "$1" --counter 1 \
    "$3.bin" "$3" >/dev/null
}
sign 1.0.0 "$fw/sensor.sec" "$fw/fw-1.0.0.kimg"
sign 1.1.0 "$fw/sensor.sec" "$fw/fw-1.1.0.kimg"
sign 9.9.9 "$fw/rogue.sec" "$fw/fw-forged.kimg"
mkdir -p "$dir/site"
sign 1.2.0 "$fw/sensor.sec" "$dir/site/fw-1.2.0.kimg"

# ---- a web server with the 1.2.0 image ----
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
web_port=$(free_port) tls_port=$(free_port) rogue_port=$(free_port)
# https: the cloud PKI's server certificate (localhost, 127.0.0.1), and one another CA signed
"$top/scripts/cloud-certs.sh" "$dir/rogue-pki" --ca-name rogue-ca >/dev/null
cat >"$dir/nginx.conf" <<CONF
daemon off; master_process off; worker_processes 1; pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
events { worker_connections 64; }
http { access_log $dir/nginx-access.log; client_body_temp_path $dir; proxy_temp_path $dir;
  fastcgi_temp_path $dir; uwsgi_temp_path $dir; scgi_temp_path $dir;
  server { listen 127.0.0.1:$web_port; root $dir/site; }
  server { listen 127.0.0.1:$tls_port ssl; listen 127.0.0.2:$tls_port ssl; root $dir/site;
    ssl_certificate $pki/server.pem; ssl_certificate_key $pki/server.key; }
  server { listen 127.0.0.1:$rogue_port ssl; root $dir/site;
    ssl_certificate $dir/rogue-pki/server.pem; ssl_certificate_key $dir/rogue-pki/server.key; } }
CONF
nginx -c "$dir/nginx.conf" -p "$dir" >"$dir/nginx.out" 2>&1 &
pids+=("$!")
wait_for 10 "nginx" bash -c "exec 3<>/dev/tcp/127.0.0.1/$web_port && exec 4<>/dev/tcp/127.0.0.1/$rogue_port"

# ---- keeld with its cloud link ----
export KEEL_SOCKET=$dir/keeld/keeld.sock
mkdir -p "$dir/keeld" "$dir/keys" "$dir/packages"
# uids of our own: keeld kills every process of an app's uid when it stops it, so two keelds
# on one machine (tests run in parallel) must not hand out the same ones
base_uid=$((1200000 + ($$ % 20000) * 32))
"$bin/keel" image keygen --out "$dir/keys/dev" >/dev/null
cat >"$dir/keeld.json" <<JSON
{"state_dir": "$dir/keeld", "trusted_keys": ["$dir/keys/dev.pub"], "backoff_initial_ms": 200,
 "base_uid": $base_uid,
 "cloud": {"scheme": "plain", "host": "127.0.0.1", "port": $port, "device_id": "$device",
  "prefix": "$prefix", "ca": "$pki/ca.pem", "cert": "$pki/$device.pem",
  "key": "$pki/$device.key", "outbox": "$dir/keeld/outbox.db", "backoff_min_ms": 200,
  "backoff_max_ms": 2000}}
JSON
"$bin/keeld" --config "$dir/keeld.json" >"$dir/keeld.log" 2>&1 &
pids+=("$!")
wait_for 10 "keeld" test -S "$KEEL_SOCKET"

pkg() { # name exe manifest args-json files...: pack a signed package and install it
  local exe=$2 manifest=$3 args=$4 p=$dir/packages/$1
  shift 4
  mkdir -p "$p/bin" && cp "$app_bin/$exe" "$p/bin/" && cp "$@" "$p/"
  jq --arg exe "bin/$exe" --argjson args "$args" --arg web "127.0.0.1:$web_port" \
    --arg tls "127.0.0.1:$tls_port" --arg rogue "127.0.0.1:$rogue_port" \
    --arg other "127.0.0.2:$tls_port" \
    '. + {exec: $exe, args: $args}
     | if .kind == "app" then .capabilities.cloud.http = [$web, $tls, $rogue, $other] else . end' \
    "$manifest" >"$p/app_manifest.json"
  "$bin/keel" app pack --key "$dir/keys/dev.sec" "$p" "$p.kpkg" >/dev/null
  "$bin/keel" app install "$p.kpkg" >/dev/null
}
cat >"$dir/gateway.json" <<JSON
{"bus": {"rt_bridge": "9c1b7e22-5f4a-4d83-b0e6-2a7c3d9f8e10"}, "period_ms": 500,
 "points": [
  {"name": "roomTemperature", "unit": 1, "function": 4, "address": 0, "scale": 0.01, "signed": true},
  {"name": "roomHumidity", "unit": 1, "function": 4, "address": 1, "scale": 0.01},
  {"name": "supplyAirTemperature", "unit": 2, "function": 4, "address": 0, "scale": 0.01, "signed": true}
 ]}
JSON
pkg envmon-rt keel-sim "$top/firmware/apps/envmon/app_manifest.json" \
  "[\"--state=/data\", \"--status=/data/world.json\", \"--speed=5\", \"--temp=21\",
    \"--sensor-key=/app/sensor.pub\", \"--sensor-image=/app/fw-1.0.0.kimg\",
    \"--sensor-component=$sensor_comp\"]" \
  "$fw/sensor.pub" "$fw/fw-1.0.0.kimg"
pkg gateway keel-gateway "$top/apps/gateway/app_manifest.json" \
  "[\"--config\", \"/app/gateway.json\", \"--status\", \"/data/gateway.json\",
    \"--sensor-key\", \"/app/sensor.pub\", \"--ca\", \"/app/ca.pem\"]" \
  "$dir/gateway.json" "$fw/sensor.pub" "$fw/fw-1.1.0.kimg" "$fw/fw-forged.kimg" "$pki/ca.pem"
# the gateway first: it must wait for (and then find) the RT loader's channel
"$bin/keel" app start gateway >/dev/null
"$bin/keel" app start envmon-rt >/dev/null
world=$dir/keeld/data/envmon-rt/world.json gw=$dir/keeld/data/gateway/gateway.json
wait_for 20 "the world's status" test -s "$world"
log "keeld: envmon-rt (keel-sim) and gateway (keel-gateway) running signed"
grep -q "gateway <-> envmon-rt (rt) paired" "$dir/keeld.log" || fail "keeld did not pair the gateway with envmon-rt"

# ---- readings: the gateway's match the world's room ----
readings_match() {
  jq -e '.last.roomTemperature != null' "$gw" >/dev/null || return 1
  local g r
  g=$(jq -r '.last.roomTemperature' "$gw")
  r=$(jq -r '.room.temperature' "$world")
  jq -en --argjson g "$g" --argjson r "$r" '($g - $r) | fabs < 0.05' >/dev/null
}
wait_for 20 "gateway readings matching the world's room" readings_match
log "gateway reads the room through the RT core's line driver: $(jq -c .last "$gw")"
wait_for 20 "gateway telemetry at the broker" grep -q supplyAirTemperature "$dir/telemetry.log"
log "gateway telemetry reached the broker through keeld"

# ---- firmware: a signed image through the line driver; a forged one refused ----
call() {
  "$bin/keel" cloud call --device "$device" gateway.updateSensorFirmware "$1" --timeout 60 \
    --config "$dir/operator.json" 2>&1 || true
}
out=$(call '{"unit": 2, "image": "/app/fw-1.1.0.kimg"}')
log "updateSensorFirmware 1.1.0: $out"
{ grep -q '"version":"1.1.0"' <<<"$out" && grep -q 'running the new image' <<<"$out"; } ||
  fail "the signed update did not run"
wait_for 10 "the sensor on 1.1.0 in the world" jq -e '.modbus.sensorFirmware == "1.1.0"' "$world"
# polling went on during the push: telemetry between its first progress report and its end
wait_for 10 "the update's final progress report" grep -q '"state":"done"' "$dir/telemetry.log"
during=$(awk '/sensorUpdate/ && /"state":"pushing"/ {on=1} /"state":"done"/ {on=0}
              on && /messages\/events/ && /supplyAirTemperature/ {n++} END {print n+0}' "$dir/telemetry.log")
((during >= 1)) || fail "no telemetry while the push ran"
log "telemetry messages while the push ran: $during (progress reported as sensorUpdate)"
out=$(call "{\"unit\": 2, \"url\": \"http://127.0.0.1:$web_port/fw-1.2.0.kimg\"}")
log "updateSensorFirmware from a URL through keeld's tunnel: $out"
{ grep -q '"version":"1.2.0"' <<<"$out" && grep -q 'running the new image' <<<"$out"; } ||
  fail "the update from a URL did not run"
grep -q 'GET /fw-1.2.0.kimg' "$dir/nginx-access.log" || fail "nginx never served the image"
# https through the tunnel: libcurl in the gateway, the certificate checked against /app/ca.pem
sign 1.3.0 "$fw/sensor.sec" "$dir/site/fw-1.3.0.kimg"
out=$(call "{\"unit\": 2, \"url\": \"https://127.0.0.1:$tls_port/fw-1.3.0.kimg\"}")
log "updateSensorFirmware from an https URL through keeld's tunnel: $out"
{ grep -q '"version":"1.3.0"' <<<"$out" && grep -q 'running the new image' <<<"$out"; } ||
  fail "the update from an https URL did not run"
wait_for 10 "the sensor on 1.3.0 in the world" jq -e '.modbus.sensorFirmware == "1.3.0"' "$world"
sign 1.4.0 "$fw/sensor.sec" "$dir/site/fw-1.4.0.kimg"
for url in "https://127.0.0.1:$rogue_port/fw-1.4.0.kimg" "https://127.0.0.2:$tls_port/fw-1.4.0.kimg"; do
  out=$(call "{\"unit\": 2, \"url\": \"$url\"}")
  log "updateSensorFirmware from $url (certificate must not verify): $out"
  { grep -q '502' <<<"$out" && grep -qiE 'certificate|SSL' <<<"$out"; } ||
    fail "$url: a certificate that does not verify was not refused"
done
grep -q 'GET /fw-1.4.0.kimg' "$dir/nginx-access.log" && fail "nginx served an image over a refused TLS session"
jq -e '.modbus.sensorFirmware == "1.3.0"' "$world" >/dev/null || fail "the sensor changed after a refused fetch"
log "https: the right certificate pushes, another CA's and a wrong name are refused"
out=$(call '{"unit": 2, "image": "/app/fw-forged.kimg"}')
log "updateSensorFirmware forged: $out"
{ grep -q '422' <<<"$out" && grep -q 'not trusted' <<<"$out"; } || fail "the forged image was not refused"
out=$(call "{\"unit\": 2, \"url\": \"http://127.0.0.2:$web_port/fw-1.2.0.kimg\"}")
log "updateSensorFirmware from a host the manifest does not name: $out"
grep -q '403' <<<"$out" || fail "a tunnel to a host the manifest does not name was not refused"
# the RT loader restarted: the gateway's channel hangs up, it opens the new one through keeld
"$bin/keel" app stop envmon-rt >/dev/null
wait_for 10 "envmon-rt stopped" bash -c "'$bin/keel' app list | awk '\$1 == \"envmon-rt\" && \$3 == \"stopped\" {f=1} END {exit !f}'"
"$bin/keel" app start envmon-rt >/dev/null
reopened() { (($("$bin/keel" app logs gateway 200 | grep -c "through the bridge channel") >= 2)); }
wait_for 20 "the gateway re-opening its bridge channel" reopened
polls=$(jq .polls "$gw")
wait_for 10 "polls answered after the restart" \
  bash -c "(( \$(jq .polls '$gw') > $polls + 2 )) && jq -e '.last.errors != null and .last.roomTemperature != null' '$gw'"
log "the RT loader restarted; the gateway re-opened its channel through keeld and polls again"
jq -e '.rs485.collisions == 0 and .bridge.sent > 0' "$world" >/dev/null ||
  fail "the bus: $(jq -c '.rs485, .bridge' "$world")"
log "world: $(jq -c '{rs485, bridge, sensor: .modbus.sensorFirmware}' "$world")"
log PASS
