#!/usr/bin/env bash
# Installs, from Debian's packages, everything Keel needs to build, test and run.
# Idempotent: installs only what is missing. Safe to run on every `make check`.
set -euo pipefail

# Packages every build and test needs. The cross toolchain and QEMU go in a
# second list installed with --no-install-recommends (otherwise ~3 GB).
base=(
  cmake ninja-build pkg-config make gcc g++ clang clang-tidy cppcheck
  libclang-rt-14-dev
  libcmocka-dev libcjson-dev libsodium-dev libsqlite3-dev libcurl4-openssl-dev
  libmosquitto-dev mosquitto mosquitto-clients openssl ca-certificates
  libmodbus-dev mbpoll socat python3 python3-pymodbus python3-serial
  nginx-light libseccomp-dev iproute2 procps util-linux psmisc
  jq # demo: the live view and the unattended checks read the apps' JSON status
)
norec=(gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)

missing() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || printf '%s\n' "$p"
  done
}

mapfile -t need_base < <(missing "${base[@]}")
mapfile -t need_norec < <(missing "${norec[@]}")
if [ ${#need_base[@]} -eq 0 ] && [ ${#need_norec[@]} -eq 0 ]; then
  echo "deps: everything is installed"
  exit 0
fi

echo "deps: missing: ${need_base[*]} ${need_norec[*]}"
sudo=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "deps: run as root: sudo $0" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
[ ${#need_base[@]} -eq 0 ] || "${sudo[@]}" apt-get install -y -q "${need_base[@]}"
[ ${#need_norec[@]} -eq 0 ] || "${sudo[@]}" apt-get install -y -q --no-install-recommends "${need_norec[@]}"
# Debian starts services it installs; Keel's tests start their own on ephemeral ports.
for svc in mosquitto nginx; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q "$svc" 2>/dev/null; then
    "${sudo[@]}" systemctl stop "$svc" || true
  fi
done
echo "deps: done"
