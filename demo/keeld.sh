# shellcheck shell=bash disable=SC2154 # variables come from scripts/demo.sh, which sources this
# Part of scripts/demo.sh (sourced; the default mode): the device under keeld.
#
# keeld runs two signed packages in its sandbox: envmon-rt (kind "rt": keel-sim, the RT core
# with the room) and envmon (keel-envmon). keeld pairs their intercore channel, carries the
# app's telemetry and properties over its own cloud link to the demo's mosquitto, restarts a
# crashed app, and applies `keel cloud deploy`: the demo signs envmon 1.1.0 and a broken 1.2.0
# with the key keeld trusts, and nginx serves the releases `demo/ctl.sh deploy` makes.
#
# The MODBUS gateway is not part of this mode yet: its RS485 bus is a TCP socket into keel-sim,
# and a sandboxed keel-sim has no network (docs/quickstart.md, "Gaps"). When the bus moves
# behind the RT core's line driver, the gateway becomes a third package here (gateway_pkg).
# Until then DEMO_DIRECT=1 (demo/direct.sh) runs it, with its checks.

export KEEL_SOCKET=$dir/keeld/keeld.sock
keys=$dir/keys
hardware=keel-demo
# A fresh device every run: keeld's store, trials, floors and the last deployment it applied
# start clean (the room starts again from its initial state).
rm -rf "$dir/keeld" "$dir/packages" "$dir/site" "$dir/web"
mkdir -p "$keys" "$dir/keeld" "$dir/packages" "$dir/site" "$dir/web"
# One key signs packages and release manifests; keeld trusts its public half.
[[ -f $keys/dev.pub ]] || "$bin/keel" image keygen --out "$keys/dev" >/dev/null
jq -n --arg st "$dir/keeld" --arg key "$keys/dev.pub" --arg hw "$hardware" \
  --slurpfile dev "$dir/device.json" \
  '{state_dir: $st, trusted_keys: [$key], hardware: $hw, backoff_initial_ms: 200,
    cloud: ($dev[0].cloud + {outbox: ($st + "/outbox.db")})}' >"$dir/keeld.json"
"$bin/keeld" --config "$dir/keeld.json" >"$dir/keeld.log" 2>&1 &
keeld_pid=$!
pids+=("$keeld_pid")
echo "$keeld_pid" >"$dir/keeld.pid"
wait_for 10 "keeld" test -S "$KEEL_SOCKET"

# ---- packages: signed images of a directory with the program and its manifest ----
pack() { # name version program exec-name manifest args-json -> packages/<name>-<version>.kpkg
  local p=$dir/packages/$1-$2
  rm -rf "$p" && mkdir -p "$p/bin" && cp "$appbin/$3" "$p/bin/$4"
  jq --arg v "$2" --arg exe "bin/$4" --argjson args "$6" \
    '. + {version: $v, exec: $exe, args: $args}' "$5" >"$p/app_manifest.json"
  "$bin/keel" app pack --key "$keys/dev.sec" "$p" "$p.kpkg" >/dev/null
}
rt_manifest=$top/firmware/apps/envmon/app_manifest.json
app_manifest=$top/apps/envmon/app_manifest.json
app_args="[\"--status\", \"/data/envmon.json\", \"--period-ms\", \"$period\"]"
pack envmon-rt 1.0.0 keel-sim keel-sim "$rt_manifest" \
  "[\"--state\", \"/data\", \"--status\", \"/data/world.json\", \"--speed\", \"$speed\"]"
pack envmon 1.0.0 keel-envmon keel-envmon "$app_manifest" "$app_args"
# what `demo/ctl.sh deploy` releases: the next version, and one with a defect compiled in
pack envmon 1.1.0 keel-envmon keel-envmon "$app_manifest" "$app_args"
pack envmon 1.2.0 keel-envmon-broken keel-envmon "$app_manifest" "$app_args"
"$bin/keel" app install "$dir/packages/envmon-rt-1.0.0.kpkg" >/dev/null 2>&1
"$bin/keel" app install "$dir/packages/envmon-1.0.0.kpkg" >/dev/null 2>&1
ln -sfn "$dir/keeld/data/envmon-rt/world.json" "$dir/world.json"
ln -sfn "$dir/keeld/data/envmon/envmon.json" "$dir/envmon.json"
"$bin/keel" app start envmon-rt >/dev/null
"$bin/keel" app start envmon >/dev/null
wait_for 10 "the world's status" test -s "$dir/world.json"
wait_for 10 "keel-envmon" test -s "$dir/envmon.json"
log "keeld: envmon-rt 1.0.0 (keel-sim, the RT core at ${speed}x) and envmon 1.0.0 installed signed; keeld paired their channel (log $dir/keeld.log)"

# ---- the release server: nginx serving what `keel release make` lays out ----
web_port=$(free_port)
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
  server { listen 127.0.0.1:$web_port; root $dir/site; }
}
CONF
nginx=$(command -v nginx || echo /usr/sbin/nginx)
"$nginx" -c "$dir/web/nginx.conf" -p "$dir/web" -e stderr >"$dir/web/nginx.out" 2>&1 &
pids+=("$!")
echo "$!" >"$dir/web/pid"
wait_for 10 "nginx on port $web_port" bash -c "exec 3<>/dev/tcp/127.0.0.1/$web_port"
printf 'web_port=%s\nhardware=%s\nkeys=%s\n' "$web_port" "$hardware" "$keys" >>"$dir/env"
log "releases: nginx on http://127.0.0.1:$web_port/ serving $dir/site"

applog() { "$bin/keel" app logs envmon 400 2>/dev/null || true; }
running() { "$bin/keel" app list 2>/dev/null | awk -v n="$1" -v v="$2" '$1 == n && $2 == v && $3 == "running" {f=1} END {exit !f}'; }

# ---- unattended: the checks ----
if ((unattended)); then
  sub "$prefix/$device/messages/events/#" "$dir/telemetry.log"
  sub "$prefix/$device/twin/PATCH/properties/reported/#" "$dir/reported.log"
  deadline=$((SECONDS + seconds))
  have_telemetry=0 asked=0 acked=0 settled=0 crashed=0 recovered=0 room=0
  deployed=0 confirmed=0 broke=0 reverted=0
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
    if ((recovered && !deployed)) && "$top/demo/ctl.sh" deploy 1.1.0 >"$dir/deploy-1.1.0.out" 2>&1; then
      deployed=1
      log "keel cloud deploy: envmon 1.1.0"
    fi
    if ((deployed && !confirmed)) && running envmon 1.1.0 && applog | grep -q 'trial passed: health confirmed'; then
      confirmed=1
      log "envmon 1.1.0 runs; its trial passed (health confirmed)"
    fi
    if ((confirmed && !broke)) && "$top/demo/ctl.sh" deploy broken >"$dir/deploy-broken.out" 2>&1; then
      broke=1
      log "keel cloud deploy: envmon 1.2.0 (a build that crashes)"
    fi
    if ((broke && !reverted)) && applog | grep -q 'trial of 1.2.0 failed (crashed during its trial): reverted to 1.1.0' &&
      running envmon 1.1.0; then
      reverted=1
      log "1.2.0 crashed on trial; keeld reverted to 1.1.0, running again"
    fi
    room=$(jq -r '.room.temperature' "$dir/world.json" 2>/dev/null || echo 0)
    if ((acked)) && jq -en --argjson r "$room" --argjson t "$target" '($r - $t) | fabs <= 0.5' >/dev/null 2>&1; then
      settled=$((settled + 1))
    else
      settled=0
    fi
    # settled: inside the band for 10 checks in a row (5 s of wall time, minutes of room time)
    if ((settled >= 10 && recovered && confirmed && reverted)); then
      log "room settled at $room C (target $target); world $(jq -r .time_s "$dir/world.json") s"
      log "PASS"
      exit 0
    fi
    sleep 0.5
  done
  log "FAIL after ${seconds}s: telemetry=$have_telemetry asked=$asked acked=$acked crash_recovered=$recovered deployed=$deployed confirmed=$confirmed broken_deployed=$broke reverted=$reverted room=$room target=$target"
  applog | tail -8 | sed 's/^/  envmon | /'
  tail -8 "$dir/keeld.log" | sed 's/^/  keeld  | /'
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
  # (a grep that finds nothing is no error here: set -e and pipefail are on)
  line=$(grep 'cloud: \(connected\|disconnected\)' "$dir/keeld.log" 2>/dev/null | tail -1 | sed 's/.*cloud: //; s/^connected (connected)$/connected/' || true)
  echo "cloud link (keeld) ${line:-connecting}"
  echo "apps (keel app list):"
  "$bin/keel" app list 2>/dev/null | sed 's/^/  /' || true
  echo "deployments (keeld: fetched and verified, on trial, confirmed or reverted):"
  line=$(grep -E 'keeld: (deploy: |envmon: (version .* confirmed|trial))' "$dir/keeld.log" 2>/dev/null |
    tail -3 | sed -e 's|keeld: deploy: http://[^ ]*/\([^/]*\)/manifest.kman: |\1: |' \
      -e 's/keeld: //' -e 's/^/  /' || true)
  echo "${line:-  none yet (demo/ctl.sh deploy)}"
  echo "---------------------------------------------------------------------------------------"
  echo "Try, from a second terminal in $top (ctl.sh prints each keel command it runs):"
  echo "  demo/ctl.sh set 23.5        set the desired targetTemperature (watch the ack and HVAC)"
  echo "  demo/ctl.sh watch           watch telemetry and reported properties at the broker"
  echo "  demo/ctl.sh crash           SIGSEGV keel-envmon: keeld reports it and restarts it"
  echo "  demo/ctl.sh deploy          keel cloud deploy envmon 1.1.0: verified, on trial, confirmed"
  echo "  demo/ctl.sh deploy broken   deploy 1.2.0, which crashes: keeld reverts it"
  echo "  demo/ctl.sh broker-stop     stop the broker: telemetry queues in keeld's outbox"
  echo "  demo/ctl.sh broker-start    start it again and see the queue drain"
  echo "  demo/ctl.sh world-restart   power-cycle the RT core (keel app stop/start envmon-rt)"
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
