#!/usr/bin/env bash
# Installs whatever is missing for myguard on Debian/Ubuntu: system packages with
# apt-get, Python packages into ./.venv, and the compiled _fast extensions.
# Safe to run again: each step checks before it acts.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

DEB_PACKAGES=(mariadb-server mariadb-client slapd ldap-utils haproxy sysbench openssl
              build-essential pkg-config python3-dev python3-venv libmariadb-dev libmariadb-dev-compat
              libssl-dev zlib1g-dev mariadb-test
              chromium chromium-driver fonts-dejavu-core  # these three: console browser tests
              libmariadb-java)  # MariaDB Connector/J: tests/clients_e2e
missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node with npm and a JDK (tests/clients_e2e) are looked for as commands: a Node from
# NodeSource (its nodejs conflicts with Debian's npm) or another JDK serves as well.
{ command -v node && command -v npm; } >/dev/null || missing+=(nodejs npm)
{ command -v java && command -v javac; } >/dev/null || missing+=(default-jdk-headless)
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  # slapd asks questions unless told not to; its system instance is not used.
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.myguard-deps
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "bootstrap: installing Python packages into .venv"
  .venv/bin/pip install -q --upgrade pip "setuptools>=77" wheel
  .venv/bin/pip install -q -e ".[test]"
  touch "$stamp"
fi
# The Node clients of tests/clients_e2e, at the versions of its package-lock.json.
node_dir=.cache/clients-e2e
node_stamp=$node_dir/.myguard-deps
if [ ! -f "$node_stamp" ] || [ ! -d "$node_dir/node_modules/mysql2" ] ||
   [ tests/clients_e2e/package.json -nt "$node_stamp" ] ||
   [ tests/clients_e2e/package-lock.json -nt "$node_stamp" ]; then
  echo "bootstrap: installing Node packages into $node_dir"
  mkdir -p "$node_dir"
  cp tests/clients_e2e/package.json tests/clients_e2e/package-lock.json "$node_dir/"
  (cd "$node_dir" && npm ci --silent --no-audit --no-fund)
  touch "$node_stamp"
fi
# Rebuild the Cython extensions when any .pyx or .pxd is newer than a .so.
need_build=0
for src in src/myguard/_fast/*.pyx; do
  [ -e "$src" ] || continue
  mod=${src%.pyx}
  so=$(ls "$mod".*.so 2>/dev/null | head -n1 || true)
  if [ -z "$so" ] || [ "$src" -nt "$so" ]; then need_build=1; fi
  # a .pxd changes the modules that cimport it too
  for pxd in src/myguard/_fast/*.pxd; do
    if [ -n "$so" ] && [ "$pxd" -nt "$so" ]; then need_build=1; fi
  done
done
if [ $need_build -eq 1 ]; then
  echo "bootstrap: compiling src/myguard/_fast"
  .venv/bin/python setup.py -q build_ext --inplace >/dev/null
fi
