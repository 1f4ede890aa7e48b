#!/usr/bin/env bash
# Installs what the platform and its tests need on this machine, when it is missing:
# - from apt: Python 3 (and python3-venv when uv has to be installed), PostgreSQL, Redis,
#   nginx, npm (Node.js) for the API docs assets and the API linters, chromium (the browser the
#   docs tests drive through Playwright; never a browser download), and docker-compose when no
#   Compose is present (the tests validate docker-compose.yml with it); with --obs, Prometheus,
#   Alertmanager and the nginx exporter (make run OBS=1, make test);
# - uv from PyPI when it is not on PATH: into its own virtualenv under var/tools (never into the
#   system Python, which Debian marks as externally managed); the Makefile puts var/tools/bin
#   on PATH when uv is not found elsewhere;
# - the Python workspace (`uv sync`) and the Swagger UI assets (`npm ci`).
# Safe to run again: it only installs what is absent, and does nothing slow when all is present.
set -euo pipefail
cd "$(dirname "$0")/../.."

# The uv release installed when uv is missing (any recent uv reads the lockfile).
UV_VERSION=0.13.9
tools=var/tools

uv_bin=""
if command -v uv >/dev/null 2>&1; then
  uv_bin=uv
elif [ -x "$tools/bin/uv" ]; then
  uv_bin=$tools/bin/uv
fi

docs=gateway/docs
docs_stale=0
# The API tools (Spectral, Newman), pinned in the root package.json.
tools_stale=0
if [ ! -x node_modules/.bin/spectral ] || [ ! -x node_modules/.bin/newman ] \
   || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  tools_stale=1
fi
if [ ! -f "$docs/node_modules/swagger-ui-dist/swagger-ui-bundle.js" ] \
   || [ "$docs/package-lock.json" -nt "$docs/node_modules/.package-lock.json" ]; then
  docs_stale=1
fi

need_apt=()
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# Debian's python3 can only create a virtualenv with pip in it when python3-venv is installed.
if [ -z "$uv_bin" ] && ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  need_apt+=(python3-venv)
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  need_apt+=(postgresql)
fi
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)
# Compose: `docker compose` (v2) when the Docker CLI has it, else `docker-compose`. Debian 12
# only packages docker-compose 1.29 (v2 comes from Docker's own repository), so that is what
# gets installed when neither is present.
if ! command -v docker-compose >/dev/null 2>&1 \
   && ! { command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; }; then
  need_apt+=(docker-compose)
fi
command -v setpriv >/dev/null 2>&1 || need_apt+=(util-linux)
if { [ "$docs_stale" = 1 ] || [ "$tools_stale" = 1 ]; } && ! command -v npm >/dev/null 2>&1; then
  need_apt+=(npm)
fi
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# `setup.sh --bench`: also the HTTP load generator the benchmarks use.
if [ "${1:-}" = "--bench" ]; then
  command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
fi
# `setup.sh --obs` (make run OBS=1, make test): Prometheus, Alertmanager and the nginx exporter.
if [ "${1:-}" = "--obs" ]; then
  for pkg in prometheus prometheus-alertmanager prometheus-nginx-exporter; do
    command -v "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
  done
fi

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing system packages: ${need_apt[*]}" >&2
    echo "install them with: sudo apt-get update && sudo apt-get install -y ${need_apt[*]}" >&2
    exit 1
  fi
  echo "installing system packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Another apt run (an unattended upgrade, a second setup) may hold apt's locks: wait for it
  # rather than fail, up to 10 minutes, and fail at once for any other reason.
  apt_get() {
    local tries=0 err
    err=$(mktemp)
    until apt-get -o DPkg::Lock::Timeout=60 "$@" 2>"$err"; do
      if grep -q "Could not get lock" "$err" && [ "$tries" -lt 60 ]; then
        tries=$((tries + 1))
        sleep 10
        continue
      fi
      cat "$err" >&2
      rm -f "$err"
      return 1
    done
    cat "$err" >&2
    rm -f "$err"
  }
  apt_get update -qq
  # Keep the distribution's own service instances from starting on install.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  apt_get install -y -qq --no-install-recommends "${need_apt[@]}"
  rm -f /usr/sbin/policy-rc.d
  trap - EXIT
fi

if [ -z "$uv_bin" ]; then
  echo "installing uv $UV_VERSION from PyPI into $tools/uv"
  rm -rf "$tools/uv" "$tools/bin"
  python3 -m venv "$tools/uv"
  "$tools/uv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
  # Only uv itself goes on PATH, never the virtualenv's python.
  mkdir -p "$tools/bin"
  ln -s ../uv/bin/uv "$tools/bin/uv"
  uv_bin=$tools/bin/uv
fi

# Python comes from this machine (Debian 12: 3.11); uv never downloads one.
# Bytecode is compiled here, once: a process started with PYTHONDONTWRITEBYTECODE set (as some
# machines and CI images do) would otherwise compile every module it imports from source, on every
# start of every service, worker and test process (a stack start is ~20 of them). Python still
# reads .pyc files under that setting; one older than its source is ignored, never used.
UV_PYTHON_DOWNLOADS="${UV_PYTHON_DOWNLOADS:-never}" "$uv_bin" sync --frozen --quiet --compile-bytecode
.venv/bin/python -m compileall -q -j 0 libs/*/src ./*-svc/src clients/cli/src infra/src >/dev/null

# Swagger UI assets the gateway serves at /docs (from the npm registry, never a CDN).
if [ "$docs_stale" = 1 ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm is missing: install it (sudo apt-get install -y npm) to build the API docs page" >&2
    exit 1
  fi
  npm ci --prefix "$docs" --no-audit --no-fund --loglevel=error
fi

# Spectral and Newman for `make test` (the API lint and the Postman collection).
if [ "$tools_stale" = 1 ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm is missing: install it (sudo apt-get install -y npm) for the API tools" >&2
    exit 1
  fi
  npm ci --no-audit --no-fund --loglevel=error
fi
