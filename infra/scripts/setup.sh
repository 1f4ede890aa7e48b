#!/usr/bin/env bash
# Installs what the platform and its tests need on this machine, when it is missing:
# PostgreSQL, Redis, nginx and docker-compose (for `docker-compose config`) from apt, uv from
# PyPI, then the Python workspace (`uv sync`). Safe to run again: it only installs what is absent.
set -euo pipefail

need_apt=()
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  need_apt+=(postgresql)
fi
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)
command -v docker-compose >/dev/null 2>&1 || need_apt+=(docker-compose)
command -v setpriv >/dev/null 2>&1 || need_apt+=(util-linux)
# `setup.sh --bench`: also the HTTP load generator the benchmarks use.
if [ "${1:-}" = "--bench" ]; then
  command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
fi

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing system packages: ${need_apt[*]}" >&2
    echo "install them with: sudo apt-get install -y ${need_apt[*]}" >&2
    exit 1
  fi
  echo "installing system packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Keep the distribution's own service instances from starting on install.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
  rm -f /usr/sbin/policy-rc.d
fi

if ! command -v uv >/dev/null 2>&1; then
  echo "installing uv"
  python3 -m pip install --quiet --disable-pip-version-check uv
fi

uv sync --frozen --quiet

# Swagger UI assets the gateway serves at /docs (from the npm registry, never a CDN).
docs=gateway/docs
if [ ! -f "$docs/node_modules/swagger-ui-dist/swagger-ui-bundle.js" ] \
   || [ "$docs/package-lock.json" -nt "$docs/node_modules/.package-lock.json" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm is missing (Node.js 20): install nodejs and npm to build the API docs page" >&2
    exit 1
  fi
  npm ci --prefix "$docs" --no-audit --no-fund --loglevel=error
fi
