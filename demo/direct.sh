# shellcheck shell=bash disable=SC2154 # variables come from scripts/demo.sh, which sources this
# Part of scripts/demo.sh (sourced, DEMO_DIRECT=1): the device's programs started directly,
# without keeld. keel-sim pairs the two manifests' channel itself and hands the app its end over
# a socket; keel-envmon runs its own cloud link; keel-gateway polls the MODBUS sensors on
# keel-sim's RS485 bus (RTU over a TCP socket) with its own cloud identity. Nothing is
# sandboxed, so no root is needed; crash recovery and deployments are keeld's and are not here
# (docs/quickstart.md, 3b).

# ---- the world: the RT core (envmon firmware on the RTOS sim port), sensor, HVAC, room ----
rm -f "$dir/world.json" "$dir/envmon.json"
# The bus gets a fixed port for this run, so a restarted world (demo/ctl.sh world-restart)
# is found where the gateway expects it.
bus_port=$(free_port)
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

if ((unattended)); then
  reported=$prefix/$device/twin/PATCH/properties/reported/
  watch_broker "$dir/broker-watch.log" "$reported#" "$prefix/$device/messages/events/#" \
    "$prefix/gateway-1/messages/events/#"
  deadline=$((SECONDS + seconds))
  have_telemetry=0 asked=0 acked=0 settled=0 gw=0 sensor=0 cycled=0 survived=0
  while ((SECONDS < deadline)); do
    if ((!gw)) && seen "$prefix/gateway-1/messages/events/" '"supplyAirTemperature"'; then
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
    seen "$prefix/$device/messages/events/" '"temperature"' && have_telemetry=1
    if ((have_telemetry && !asked)); then
      "$top/demo/ctl.sh" set "$target" >/dev/null && asked=1
      log "telemetry reached the broker; asked for targetTemperature=$target"
    fi
    if ((asked)) && seen "$reported" "\"targetTemperature\":{\"value\":$target,\"ac\":200"; then
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
  # which side lost the ack: the device never sent it, or the watcher never saw it
  grep -h 'desired v' <(cat "$dir/envmon.log") 2>/dev/null | tail -2 | sed 's/^/  device sent | /' || true
  grep -h "^$reported.*targetTemperature" "$dir/broker-watch.log" 2>/dev/null | tail -2 | sed 's/^/  broker saw  | /' || true
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
  echo "  (sudo make demo: the device under keeld, with keel cloud deploy; docs/quickstart.md)"
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
