# shellcheck shell=bash disable=SC2154 # variables come from scripts/demo.sh, which sources this
# Part of scripts/demo.sh (sourced; the default mode): the device under keeld.
#
# keeld runs three signed packages in its sandbox: envmon-rt (kind "rt": keel-sim, the RT core
# with the room and the RS485 bus with two MODBUS sensors behind the core's line driver),
# envmon (keel-envmon) and gateway (keel-gateway). keeld pairs each app's intercore channel
# with the RT core, carries the apps' telemetry, properties and methods over its own cloud link
# to the demo's mosquitto, restarts a crashed app, and applies `keel cloud deploy`: the demo
# signs envmon 1.1.0 and a broken 1.2.0 with the key keeld trusts, and nginx serves the
# releases `demo/ctl.sh deploy` makes. No package has any network: the gateway reaches the bus
# through the RT core (keel-sim's bridge), the apps reach the cloud through keeld.

export KEEL_SOCKET=$dir/keeld/keeld.sock
keys=$dir/keys
hardware=keel-demo
# A fresh device every run: keeld's store, trials, floors and the last deployment it applied
# start clean (the room starts again from its initial state).
rm -rf "$dir/keeld" "$dir/packages" "$dir/site" "$dir/web"
mkdir -p "$keys" "$dir/keeld" "$dir/packages" "$dir/site/sensor" "$dir/web"
# The release server's port, known now: the gateway's manifest names it as the one host its
# HTTP requests may reach through keeld (sensor firmware by URL).
web_port=$(free_port)
cp "$fw"/supply-air-*.kimg "$dir/site/sensor/"
# One key signs packages and release manifests; keeld trusts its public half.
[[ -f $keys/dev.pub ]] || "$bin/keel" image keygen --out "$keys/dev" >/dev/null
# Apps get uids from base_uid up, and keeld sweeps an exited app's uid with kill(-1) as that
# uid: a keeld elsewhere on this machine (another demo, the supervisor tests) using the same
# uids would have its apps killed. This run's own range: from this shell's pid, well above the
# supervisor tests' (300000 + 40 per test pid, below 1100000).
base_uid=$((2000000 + ($$ % 100000) * 32))
# The release server is https with the demo's CA (release_ca): the same CA as the broker's.
jq -n --arg st "$dir/keeld" --arg key "$keys/dev.pub" --arg hw "$hardware" \
  --argjson uid "$base_uid" --slurpfile dev "$dir/device.json" --arg ca "$pki/ca.pem" \
  '{state_dir: $st, trusted_keys: [$key], hardware: $hw, backoff_initial_ms: 200, base_uid: $uid,
    method_timeout_ms: 60000, release_ca: $ca,
    cloud: ($dev[0].cloud + {outbox: ($st + "/outbox.db")})}' >"$dir/keeld.json"
"$bin/keeld" --config "$dir/keeld.json" >"$dir/keeld.log" 2>&1 &
keeld_pid=$!
pids+=("$keeld_pid")
echo "$keeld_pid" >"$dir/keeld.pid"
wait_for 10 "keeld" test -S "$KEEL_SOCKET"

# ---- packages: signed images of a directory with the program, its manifest, its files ----
pack() { # name version program exec-name manifest args-json [file...] -> packages/<name>-<version>.kpkg
  local p=$dir/packages/$1-$2 version=$2 prog=$3 exe=$4 manifest=$5 args=$6
  shift 6
  rm -rf "$p" && mkdir -p "$p/bin" && cp "$appbin/$prog" "$p/bin/$exe"
  (($# == 0)) || cp "$@" "$p/"
  jq --arg v "$version" --arg exe "bin/$exe" --argjson args "$args" \
    '. + {version: $v, exec: $exe, args: $args}' "$manifest" >"$p/app_manifest.json"
  "$bin/keel" app pack --key "$keys/dev.sec" "$p" "$p.kpkg" >/dev/null
}
rt_id=$(jq -r .id "$top/firmware/apps/envmon/app_manifest.json")
# envmon-rt: the world; the supply-air sensor (bus unit 2) provisioned with firmware 1.0.0
pack envmon-rt 1.0.0 keel-sim keel-sim "$top/firmware/apps/envmon/app_manifest.json" \
  "[\"--state=/data\", \"--status=/data/world.json\", \"--speed=$speed\",
    \"--sensor-key=/app/sensor.pub\", \"--sensor-image=/app/supply-air-1.0.0.kimg\",
    \"--sensor-component=$sensor_comp\"]" \
  "$fw/sensor.pub" "$fw/supply-air-1.0.0.kimg"
app_manifest=$top/apps/envmon/app_manifest.json
app_args="[\"--status\", \"/data/envmon.json\", \"--period-ms\", \"$period\"]"
pack envmon 1.0.0 keel-envmon keel-envmon "$app_manifest" "$app_args"
# what `demo/ctl.sh deploy` releases: the next version, and one with a defect compiled in
pack envmon 1.1.0 keel-envmon keel-envmon "$app_manifest" "$app_args"
pack envmon 1.2.0 keel-envmon-broken keel-envmon "$app_manifest" "$app_args"
# gateway: its poll map on the RT core's bridge, the key sensor firmware must be signed with and
# the CA of the release server (the images themselves come from there, by https URL)
gw_period=$((unattended ? 500 : 2000))
jq -n --arg rt "$rt_id" --argjson period "$gw_period" '{bus: {rt_bridge: $rt}, period_ms: $period,
  points: [
   {name: "roomTemperature", unit: 1, function: 4, address: 0, scale: 0.01, signed: true},
   {name: "roomHumidity", unit: 1, function: 4, address: 1, scale: 0.01},
   {name: "roomPressure", unit: 1, function: 4, address: 2, scale: 0.1},
   {name: "supplyAirTemperature", unit: 2, function: 4, address: 0, scale: 0.01, signed: true}
  ]}' >"$dir/gateway.conf.json"
cp "$dir/gateway.conf.json" "$dir/packages/gateway.json"
# keeld answers a method after method_timeout_ms at most (above: a push paced to the wall clock
# takes seconds); the manifest lets the gateway's HTTP reach the release server
jq --arg host "127.0.0.1:$web_port" '.capabilities.cloud.http = [$host]' \
  "$top/apps/gateway/app_manifest.json" >"$dir/packages/gateway-manifest.json"
pack gateway 1.0.0 keel-gateway keel-gateway "$dir/packages/gateway-manifest.json" \
  '["--config", "/app/gateway.json", "--status", "/data/gateway.json", "--sensor-key", "/app/sensor.pub",
    "--ca", "/app/ca.pem"]' \
  "$dir/packages/gateway.json" "$fw/sensor.pub" "$pki/ca.pem"
for p in envmon-rt-1.0.0 envmon-1.0.0 gateway-1.0.0; do
  "$bin/keel" app install "$dir/packages/$p.kpkg" >/dev/null 2>&1
done
ln -sfn "$dir/keeld/data/envmon-rt/world.json" "$dir/world.json"
ln -sfn "$dir/keeld/data/envmon/envmon.json" "$dir/envmon.json"
ln -sfn "$dir/keeld/data/gateway/gateway.json" "$dir/gateway.json"
for a in envmon-rt envmon gateway; do "$bin/keel" app start "$a" >/dev/null; done
wait_for 10 "the world's status" test -s "$dir/world.json"
wait_for 10 "keel-envmon" test -s "$dir/envmon.json"
wait_for 10 "keel-gateway" test -s "$dir/gateway.json"
log "keeld: envmon-rt (keel-sim: the RT core at ${speed}x, the room, the RS485 bus), envmon and gateway installed signed and paired (log $dir/keeld.log)"

# ---- the release server: nginx serving what `keel release make` lays out, and sensor images ----
cat >"$dir/web/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $dir/web/nginx.pid;
error_log $dir/web/error.log;
events { worker_connections 64; }
http {
  access_log $dir/web/access.log;
  client_body_temp_path $dir/web; proxy_temp_path $dir/web; fastcgi_temp_path $dir/web;
  uwsgi_temp_path $dir/web; scgi_temp_path $dir/web;
  server {
    listen 127.0.0.1:$web_port ssl; root $dir/site;
    ssl_certificate $pki/server.pem; ssl_certificate_key $pki/server.key;
  }
}
CONF
nginx=$(command -v nginx || echo /usr/sbin/nginx)
"$nginx" -c "$dir/web/nginx.conf" -p "$dir/web" -e stderr >"$dir/web/nginx.out" 2>&1 &
pids+=("$!")
echo "$!" >"$dir/web/pid"
wait_for 10 "nginx on port $web_port" bash -c "exec 3<>/dev/tcp/127.0.0.1/$web_port"
printf 'web_port=%s\nhardware=%s\nkeys=%s\n' "$web_port" "$hardware" "$keys" >>"$dir/env"
log "releases: nginx on https://127.0.0.1:$web_port/ serving $dir/site"

applog() { "$bin/keel" app logs envmon 400 2>/dev/null || true; }
running() { "$bin/keel" app list 2>/dev/null | awk -v n="$1" -v v="$2" '$1 == n && $2 == v && $3 == "running" {f=1} END {exit !f}'; }

# ---- unattended: the checks ----
# One step after another (each waits for the previous one's outcome), while the room is watched
# throughout: it must end inside the band around the setpoint for ten checks in a row.
rt_connects() { applog | grep -c 'rt: connected' || true; }
sensor_fw() { jq -r '.modbus.sensorFirmware' "$dir/world.json" 2>/dev/null || true; }
# the gateway's readings that reached the broker (its "errors" count is cumulative)
gw_readings() { grep -c '"supplyAirTemperature":[-0-9]' "$dir/broker-watch.log" 2>/dev/null || true; }
if ((unattended)); then
  reported=$prefix/$device/twin/PATCH/properties/reported/
  events=$prefix/$device/messages/events/
  watch_broker "$dir/broker-watch.log" "$reported#" "$events#"
  deadline=$((SECONDS + seconds))
  step=telemetry settled=0 room=0 acked=0 connects=0 readings=0 want=1.1.0
  while ((SECONDS < deadline)); do
    case $step in
    telemetry) # envmon's telemetry through keeld; this also proves the watcher is subscribed
      if seen "$events" '"temperature"'; then
        "$top/demo/ctl.sh" set "$target" >/dev/null &&
          log "envmon's telemetry reached the broker through keeld; asked for targetTemperature=$target" &&
          step=ack
      fi ;;
    ack)
      if seen "$reported" "\"targetTemperature\":{\"value\":$target,\"ac\":200"; then
        log "the device acknowledged targetTemperature=$target (ac 200)"
        acked=1 step=gateway
      fi ;;
    gateway) # the gateway's readings, polled through the RT core's line driver
      if seen "$events" '"supplyAirTemperature"'; then
        log "the gateway's MODBUS readings reached the broker through keeld"
        if "$top/demo/ctl.sh" sensor-update "$want" >"$dir/sensor-update.out" 2>&1 &&
          grep -q "running the new image" "$dir/sensor-update.out"; then
          log "the supply-air sensor runs firmware $want, pushed by gateway.updateSensorFirmware"
          step=sensor
        else
          log "FAIL: the sensor firmware update: $(tail -1 "$dir/sensor-update.out")"
          break
        fi
      fi ;;
    sensor)
      if [[ $(sensor_fw) == "$want" ]]; then
        connects=$(rt_connects) readings=$(gw_readings)
        "$top/demo/ctl.sh" world-restart >/dev/null
        log "the world runs sensor firmware $want; RT core power-cycled (keel app stop/start envmon-rt)"
        step=cycled
      fi ;;
    cycled) # both apps back on the rebooted RT core, the sensor still on its new firmware
      if (($(rt_connects) > connects)) && (($(gw_readings) > readings + 2)) && [[ $(sensor_fw) == "$want" ]]; then
        log "after the power cycle: envmon reconnected, the gateway polls again, the sensor kept $want"
        connects=$(rt_connects)
        "$top/demo/ctl.sh" crash >/dev/null && log "keel-envmon crashed (SIGSEGV)" && step=crashed
      fi ;;
    crashed)
      if "$bin/keel" app crashes envmon 1 2>/dev/null | grep -q SIGSEGV && (($(rt_connects) > connects)); then
        log "keeld wrote a crash report and restarted it; it re-opened its channel to the RT core"
        "$top/demo/ctl.sh" deploy 1.1.0 >"$dir/deploy-1.1.0.out" 2>&1 &&
          log "keel cloud deploy: envmon 1.1.0" && step=deployed
      fi ;;
    deployed)
      if running envmon 1.1.0 && applog | grep -q 'trial passed: health confirmed' &&
        seen "$reported" '"update":{.*envmon-1.1.0-.*"state":"installed"'; then
        log "envmon 1.1.0 runs and its trial passed (health confirmed); keeld reported the update installed"
        "$top/demo/ctl.sh" deploy broken >"$dir/deploy-broken.out" 2>&1 &&
          log "keel cloud deploy: envmon 1.2.0 (a build that crashes)" && step=broken
      fi ;;
    broken)
      if applog | grep -q 'trial of 1.2.0 failed (crashed during its trial): reverted to 1.1.0' &&
        running envmon 1.1.0; then
        log "1.2.0 crashed on trial; keeld reverted to 1.1.0, running again"
        "$top/demo/ctl.sh" deploy forged >"$dir/deploy-forged.out" 2>&1 &&
          log "keel cloud deploy: a release signed by an untrusted key" && step=forged
      fi ;;
    forged)
      if seen "$reported" '"update":{.*-forged-.*"state":"refused"' && running envmon 1.1.0; then
        log "keeld refused it ($(grep -o 'deploy: .*-forged-.*refused: .*' "$dir/keeld.log" | sed 's/.*refused: //' | head -1)); 1.1.0 runs on"
        step=finished
      fi ;;
    esac
    room=$(jq -r '.room.temperature' "$dir/world.json" 2>/dev/null || echo 0)
    if ((acked)) && jq -en --argjson r "$room" --argjson t "$target" '($r - $t) | fabs <= 0.5' >/dev/null 2>&1; then
      settled=$((settled + 1))
    else
      settled=0
    fi
    # settled: inside the band for 10 checks in a row (5 s of wall time, minutes of room time)
    if [[ $step == finished ]] && ((settled >= 10)); then
      log "room settled at $room C (target $target); world $(jq -r .time_s "$dir/world.json") s"
      log "PASS"
      exit 0
    fi
    sleep 0.5
  done
  log "FAIL after $((SECONDS - deadline + seconds))s: stuck at step '$step' (telemetry, ack, gateway, sensor, cycled, crashed, deployed, broken, forged, finished); room=$room target=$target"
  # which side lost the ack: the device never sent it, or the watcher never saw it
  grep -h 'desired v' <(applog) 2>/dev/null | tail -2 | sed 's/^/  device sent | /' || true
  grep -h "^$reported.*targetTemperature" "$dir/broker-watch.log" 2>/dev/null | tail -2 | sed 's/^/  broker saw  | /' || true
  applog | tail -8 | sed 's/^/  envmon  | /'
  "$bin/keel" app logs gateway 5 2>/dev/null | sed 's/^/  gateway | /' || true
  tail -8 "$dir/keeld.log" | sed 's/^/  keeld   | /'
  exit 1
fi

# ---- interactive: the live view ----
view() {
  local w e line
  w=$(cat "$dir/world.json" 2>/dev/null || echo '{}')
  e=$(cat "$dir/envmon.json" 2>/dev/null || echo '{}')
  printf '\033[H\033[2J'
  echo "Keel demo: environment monitor with HVAC control, under keeld    (Ctrl-C stops everything)"
  [[ $speed == 1 ]] && echo "(the room moves ~0.3 C a minute; DEMO_SPEED=20 make demo runs the world 20x faster)"
  echo "---------------------------------------------------------------------------------------"
  jq -r '"world (envmon-rt)  t=\(.time_s|floor) s   room \(.room.temperature*100|round/100) C  \(.room.humidity|round) %RH  \(.room.pressure*10|round/10) hPa\n                   HVAC actuator: \(.hvac)   (changes: \(.hvac_changes))\nRT core (firmware) samples \(.rt.samples)   last \(.rt.temperature*100|round/100) C   requests \(.rt.requests)   channel \(.rt.channel)"' <<<"$w" 2>/dev/null || echo "world: starting"
  jq -r '"HL app (envmon)    rt \(.rt)   reading \(.temperature*100|round/100) C   setpoint \(.targetTemperature // "none")   HVAC \(.hvacMode)\nlast property ack  \(.lastAck)"' <<<"$e" 2>/dev/null || echo "app: starting"
  jq -r '"RS485 bus          \(.rs485.chars) chars through the RT line driver   replies: room \(.rs485.roomReplies), supply air \(.rs485.supplyReplies)   collisions \(.rs485.collisions)\n                   supply-air sensor firmware \(.modbus.sensorFirmware)"' <<<"$w" 2>/dev/null || true
  jq -r '"MODBUS gateway     bus \(.bus)   polls \(.polls)   sent \(.sent)   room \(.last.roomTemperature) C  \(.last.roomHumidity) %RH  \(.last.roomPressure) hPa  supply air \(.last.supplyAirTemperature) C\n                   last sensor update: \(.lastSensorUpdate)"' "$dir/gateway.json" 2>/dev/null || echo "gateway: starting"
  # (a grep that finds nothing is no error here: set -e and pipefail are on)
  line=$(grep 'cloud: \(connected\|disconnected\)' "$dir/keeld.log" 2>/dev/null | tail -1 | sed 's/.*cloud: //; s/^connected (connected)$/connected/' || true)
  echo "cloud link (keeld) ${line:-connecting}"
  echo "apps (keel app list):"
  "$bin/keel" app list 2>/dev/null | sed 's/^/  /' || true
  echo "deployments (keeld: fetched and verified, on trial, confirmed or reverted):"
  line=$(grep -E 'keeld: (deploy: |envmon: (version .* confirmed|trial))' "$dir/keeld.log" 2>/dev/null |
    tail -3 | sed -e 's|keeld: deploy: https\?://[^ ]*/\([^/]*\)/manifest.kman: |\1: |' \
      -e 's/keeld: //' -e 's/^/  /' || true)
  echo "${line:-  none yet (demo/ctl.sh deploy)}"
  echo "---------------------------------------------------------------------------------------"
  echo "Try, from a second terminal in $top (ctl.sh prints each keel command it runs):"
  echo "  demo/ctl.sh set 23.5        set the desired targetTemperature (watch the ack and HVAC)"
  echo "  demo/ctl.sh watch           watch telemetry and reported properties at the broker"
  echo "  demo/ctl.sh crash           SIGSEGV keel-envmon: keeld reports it and restarts it"
  echo "  demo/ctl.sh deploy          keel cloud deploy envmon 1.1.0: verified, on trial, confirmed"
  echo "  demo/ctl.sh deploy broken   deploy 1.2.0, which crashes: keeld reverts it"
  echo "  demo/ctl.sh deploy forged   a release signed by an untrusted key: keeld refuses it"
  echo "  demo/ctl.sh broker-stop     stop the broker: telemetry queues in keeld's outbox"
  echo "  demo/ctl.sh broker-start    start it again and see the queue drain"
  echo "  demo/ctl.sh world-restart   power-cycle the RT core (keel app stop/start envmon-rt)"
  echo "  demo/ctl.sh sensor-update [1.1.0|broken|forged]   sensor firmware through the gateway's method"
  echo "  demo/ctl.sh modbus          the bus as the gateway and the world see it"
  echo "  (keel app list|logs|crashes with KEEL_SOCKET=$KEEL_SOCKET)"
  echo "Recent app events (keel app logs envmon):"
  applog | tail -5 | sed 's/^/  /'
}
while :; do
  view
  # demo/ctl.sh may have restarted the broker: adopt its pid so Ctrl-C stops it
  bp=$(cat "$dir/broker/pid" 2>/dev/null || true)
  [[ -z $bp || " ${pids[*]} " == *" $bp "* ]] || pids+=("$bp")
  kill -0 "$keeld_pid" 2>/dev/null || { log "keeld exited: see $dir/keeld.log"; exit 1; }
  sleep 1
done
