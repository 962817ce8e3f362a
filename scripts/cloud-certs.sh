#!/usr/bin/env bash
# Makes a test PKI for the cloud link: a CA, a server certificate for localhost/127.0.0.1, and
# one client certificate per name given (CN = the name, which mosquitto's
# use_identity_as_username turns into the MQTT user name the ACL confines).
#
#   scripts/cloud-certs.sh DIR [--ca-name NAME] [CLIENT...]
#
# DIR gets ca.pem/ca.key (kept if present, so clients can be added later), server.pem/.key and
# <client>.pem/.key. EC P-256 keys: fast to make, as IoT Hub accepts. For tests and demos only:
# the keys are not protected.
set -euo pipefail
dir=${1:?usage: cloud-certs.sh DIR [--ca-name NAME] [CLIENT...]}
shift
ca_name=keel-test-ca
if [[ ${1:-} == --ca-name ]]; then
  ca_name=$2
  shift 2
fi
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
if [[ ! -f ca.pem ]]; then
  key ca.key
  openssl req -x509 -new -key ca.key -out ca.pem -days 30 -subj "/CN=$ca_name" 2>/dev/null
fi
sign() { # name cn ext
  key "$1.key"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" \
    -days 30 -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
if [[ ! -f server.pem ]]; then
  sign server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1"
fi
for c in "$@"; do
  sign "$c" "$c" "extendedKeyUsage=clientAuth"
done
