#!/usr/bin/env bash
# Runs a local mosquitto the way Keel's cloud link expects a broker: TLS only, client
# certificates required (CN = MQTT user name), an ACL confining each device to
# "{prefix}/{device}/#" and the user "operator" to "{prefix}/#", persistent sessions.
# For demos and manual testing; tests use tests/fixture/broker.h, which writes the same setup.
#
#   scripts/cloud-broker.sh DIR PORT [DEVICE...]
#
# DIR gets the PKI (scripts/cloud-certs.sh), mosquitto.conf, acl, a device config
# <device>.json per device (for keel-cloudlink / keeld) and operator.json (for
# `keel cloud --config`). mosquitto then runs in the foreground (exec): stop it with SIGTERM.
# Environment: PREFIX (default keel).
set -euo pipefail
dir=${1:?usage: cloud-broker.sh DIR PORT [DEVICE...]}
port=${2:?usage: cloud-broker.sh DIR PORT [DEVICE...]}
shift 2
prefix=${PREFIX:-keel}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
"$here/cloud-certs.sh" "$dir" operator "$@"
cat > "$dir/acl" <<ACL
user operator
topic readwrite $prefix/#

pattern readwrite $prefix/%u/#
ACL
user_line=""
[ "$(id -u)" = 0 ] && user_line="user root"
cat > "$dir/mosquitto.conf" <<CONF
per_listener_settings false
allow_anonymous false
listener $port 127.0.0.1
cafile $dir/ca.pem
certfile $dir/server.pem
keyfile $dir/server.key
require_certificate true
use_identity_as_username true
tls_version tlsv1.2
acl_file $dir/acl
persistence true
persistence_location $dir/
max_queued_messages 100000
log_dest stdout
$user_line
CONF
for d in "$@"; do
  cat > "$dir/$d.json" <<JSON
{"cloud": {"scheme": "plain", "host": "127.0.0.1", "port": $port, "device_id": "$d",
  "prefix": "$prefix", "ca": "$dir/ca.pem", "cert": "$dir/$d.pem", "key": "$dir/$d.key",
  "outbox": "$dir/$d.db"}}
JSON
done
cat > "$dir/operator.json" <<JSON
{"host": "127.0.0.1", "port": $port, "prefix": "$prefix", "ca": "$dir/ca.pem",
 "cert": "$dir/operator.pem", "key": "$dir/operator.key"}
JSON
mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
echo "cloud-broker: mosquitto on 127.0.0.1:$port (TLS), files in $dir" >&2
exec "$mosq" -c "$dir/mosquitto.conf"
