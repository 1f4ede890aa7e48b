#!/usr/bin/env bash
# Checks the README's promise on a fresh Debian 12 (bookworm): that `make run` installs what it
# needs on a machine that has nothing but Debian, make and a copy of the repository.
#
#   infra/scripts/fresh-debian-check.sh [--clean]      (or: make fresh-debian-check)
#
# 1. builds a minimal bookworm root with debootstrap (variant minbase, plus make, the one
#    documented prerequisite) from the Debian mirror this machine's apt already uses; the
#    root is built once under var/fresh-debian/base and reused; every run starts from a fresh
#    copy of it (var/fresh-debian/root);
# 2. copies the repository in (`git archive HEAD`: committed files only, no var/ or .venv);
# 3. in a chroot, as root: `make setup`, then `make run` in the background on free ports, waits
#    for the gateway, checks that /health/<template|task|qc|notify> and /docs/ answer 200
#    through it, stops it with SIGTERM and checks that every process is gone.
# It prints a PASS/FAIL summary and exits non-zero on failure. Logs: var/fresh-debian/logs/.
# Downloads (apt's .debs, pip's, uv's and npm's caches) are kept in var/fresh-debian/cache
# between runs; `--clean` deletes the root, the caches and the logs first.
#
# Needs root (debootstrap, chroot, mounts) and the network to Debian's mirror, PyPI and npm.
# Slow (the first run downloads about 300 MB for the root, then the packages): not part of
# `make test`.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd -P)

suite=bookworm
work=$repo/var/fresh-debian   # $repo is a physical path: no symlinks in what follows
base=$work/base
root=$work/root
cache=$work/cache
logs=$work/logs
src=/srv/blueprint            # the repository inside the root
gateway_timeout=900           # seconds for `make run` to get the gateway up (first start migrates)
stop_timeout=90               # seconds for everything to stop after SIGTERM

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; }
clean=0
for arg in "$@"; do
  case "$arg" in
    --clean) clean=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; usage >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "fresh-debian-check needs root (debootstrap, chroot, mounts): sudo make fresh-debian-check" >&2
  exit 2
fi

# --- reporting --------------------------------------------------------------------------------

started=$(date +%s)
results=()
failed=0
current="starting"
say() { printf '[fresh-debian] %s\n' "$*"; }
pass() { results+=("PASS  $*"); say "PASS  $*"; }
fail() { results+=("FAIL  $*"); failed=1; say "FAIL  $*"; }
elapsed() { local s=$(( $(date +%s) - $1 )); printf '%dm%02ds' $((s / 60)) $((s % 60)); }
show_log() {  # the end of a log, indented
  [ -f "$1" ] && tail -n "${2:-25}" "$1" | sed 's/^/    | /'
  return 0
}

# --- the root's processes and mounts, always cleaned up -----------------------------------------

mounts=()
root_pids() {  # processes whose root directory is the fresh root
  local p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    [ "$r" = "$root" ] && echo "${p#/proc/}"
  done
  return 0
}
stop_root_processes() {
  local pids i
  pids=$(root_pids)
  [ -z "$pids" ] && return 0
  say "stopping processes left in the root: $(echo $pids)"
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  for i in $(seq 20); do
    pids=$(root_pids)
    [ -z "$pids" ] && return 0
    sleep 0.5
  done
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  sleep 1
}
unmount_all() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    umount -R "${mounts[i]}" 2>/dev/null || umount -R -l "${mounts[i]}" \
      || say "could not unmount ${mounts[i]}"
  done
  mounts=()
}
finish() {
  local rc=$?
  trap - EXIT INT TERM
  stop_root_processes
  unmount_all
  if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
    fail "$current (aborted, exit $rc)"
  fi
  echo
  echo "== fresh Debian 12 check: summary"
  printf '  %s\n' "${results[@]}"
  echo "  logs: $logs"
  echo "  took $(elapsed "$started")"
  if [ "$failed" -eq 0 ]; then
    echo "RESULT: PASS"
    exit 0
  fi
  echo "RESULT: FAIL"
  exit 1
}
trap finish EXIT
trap 'exit 130' INT TERM

# --- this machine's Debian mirror ---------------------------------------------------------------

apt_sources() {  # "URI SUITE" for every enabled `deb` source of this machine's apt, in order
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && NF >= 3 { print $2, $3 }'
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # deb822 stanzas: Types, URIs, Suites, Enabled; continuation lines start with blanks.
    awk '
      function flush(   n, m, i, j, u, s) {
        if ((" " v["types"] " ") ~ / deb / && v["enabled"] != "no") {
          n = split(v["uris"], u, " "); m = split(v["suites"], s, " ")
          for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) print u[i], s[j]
        }
        delete v; key = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      /^[ \t]/ { if (key != "") v[key] = v[key] " " $0; next }
      {
        key = tolower(substr($0, 1, index($0, ":") - 1))
        v[key] = substr($0, index($0, ":") + 1)
        if (key == "enabled") { v[key] = tolower(v[key]); gsub(/[ \t]/, "", v[key]) }
      }
      END { flush() }' "$f"
  done
}
serving_mirror() {  # $1: a dists/ name; $2: a regex on the suite; the first source that has it
  local want=$1 pattern=$2 uri suite
  while read -r uri suite; do
    [[ $suite =~ $pattern ]] || continue
    uri=${uri%/}
    if wget -q --spider --timeout=20 --tries=2 "$uri/dists/$want/Release" 2>/dev/null; then
      echo "$uri"
      return 0
    fi
  done
  return 1
}

# --- 1. the Debian root -------------------------------------------------------------------------

current="prepare the Debian $suite root"
mounts_under() {  # mount points under $1 (left by an interrupted run or debootstrap)
  awk -v top="$1/" 'index($2, top) == 1 { print $2 }' /proc/self/mounts
}
unmount_leftovers() {  # never delete a tree that still has the host's /dev or /proc in it
  local m
  for m in $(mounts_under "$work" | sort -r); do
    umount -R "$m" 2>/dev/null || umount -R -l "$m" 2>/dev/null || true
  done
  if [ -n "$(mounts_under "$work")" ]; then
    fail "still mounted under $work: $(echo $(mounts_under "$work"))"
    exit 1
  fi
}
unmount_leftovers
if [ "$clean" = 1 ]; then
  say "--clean: deleting $work"
  rm -rf --one-file-system "$work"
fi
mkdir -p "$work" "$cache/apt/partial" "$cache/home" "$logs"
rm -f "$logs"/*.log

if ! command -v debootstrap >/dev/null 2>&1; then
  say "installing debootstrap (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap wget \
    > "$logs/host-apt.log" 2>&1 || { show_log "$logs/host-apt.log"; exit 1; }
fi

mirror=$(apt_sources | awk '!seen[$0]++' | serving_mirror "$suite" '^[a-z]+$') || {
  fail "no Debian mirror serving $suite found in this machine's apt sources"
  exit 1
}
security=$(apt_sources | awk '!seen[$0]++' | serving_mirror "$suite-security" '-security$') \
  || security=""
say "Debian mirror: $mirror${security:+ (security: $security)}"

if [ ! -f "$work/base.ok" ]; then
  t=$(date +%s)
  rm -rf --one-file-system "$base" "$base.partial"
  include=make
  [[ $mirror == https:* ]] && include=$include,ca-certificates
  say "debootstrap $suite (minbase + $include) into $base"
  if ! debootstrap --variant=minbase --include="$include" "$suite" "$base.partial" "$mirror" \
      > "$logs/debootstrap.log" 2>&1; then
    show_log "$logs/debootstrap.log"
    fail "debootstrap $suite from $mirror"
    exit 1
  fi
  # What an installed Debian has beyond debootstrap's root: its suite's updates and security
  # sources, and an /etc/hosts.
  {
    echo "deb $mirror $suite main"
    echo "deb $mirror $suite-updates main"
    [ -n "$security" ] && echo "deb $security $suite-security main"
  } > "$base.partial/etc/apt/sources.list"
  printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' \
    > "$base.partial/etc/hosts"
  mv "$base.partial" "$base"
  touch "$work/base.ok"
  pass "debootstrap $suite minbase + make ($(elapsed "$t"))"
else
  say "reusing the Debian root in $base (--clean to rebuild it)"
fi

if [ -d "$root" ]; then
  say "removing the previous run's root"
  rm -rf --one-file-system "$root"
fi
t=$(date +%s)
cp -a "$base" "$root"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
# A machine whose network inspects TLS trusts that proxy's CA, added locally, and points pip, uv
# and npm (which carry their own CA lists) at its CA bundle. The root gets the same trust, or
# nothing could be downloaded from PyPI or npm in it.
ca_env=()
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates" "$root/usr/local/share/fresh-debian-check"
  cp -L /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  cp -L "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" \
    "$root/usr/local/share/fresh-debian-check/ca-bundle.pem"
  bundle=/usr/local/share/fresh-debian-check/ca-bundle.pem
  ca_env=(SSL_CERT_FILE=$bundle PIP_CERT=$bundle NODE_EXTRA_CA_CERTS=$bundle)
  say "this machine trusts local CAs: the root does too (${ca_env[*]})"
fi

# --- 2. the repository --------------------------------------------------------------------------

current="copy the repository in"
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  say "note: uncommitted changes are not part of the check (it copies HEAD)"
fi
mkdir -p "$root$src"
git -C "$repo" archive --format=tar HEAD | tar -x -C "$root$src"
pass "fresh root from $(basename "$base"), repository at $(git -C "$repo" rev-parse --short HEAD) copied in ($(elapsed "$t"))"

# --- mounts -------------------------------------------------------------------------------------

current="mount /proc, /sys, /dev in the root"
mount -t proc proc "$root/proc"; mounts+=("$root/proc")
mount --rbind /sys "$root/sys"; mounts+=("$root/sys"); mount --make-rslave "$root/sys"
mount --bind /dev "$root/dev"; mounts+=("$root/dev"); mount --make-rslave "$root/dev"
mount --bind /dev/pts "$root/dev/pts"; mounts+=("$root/dev/pts")
# PostgreSQL's POSIX shared memory: a tmpfs of the root's own, not the host's /dev/shm.
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$root/dev/shm"; mounts+=("$root/dev/shm")
# Download caches only: what is installed still starts from nothing on every run.
mount --bind "$cache/apt" "$root/var/cache/apt/archives"; mounts+=("$root/var/cache/apt/archives")
mkdir -p "$root/root/.cache"
mount --bind "$cache/home" "$root/root/.cache"; mounts+=("$root/root/.cache")

# A command line run by bash in the root's repository, as root, with a clean environment:
# in_root 'command line' [VAR=value ...]
root_env=(chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  npm_config_cache=/root/.cache/npm "${ca_env[@]}")
in_root() {
  local cmd=$1
  shift
  "${root_env[@]}" "$@" /bin/bash -c "cd $src && $cmd"
}

# --- 3. make setup ------------------------------------------------------------------------------

current="make setup"
t=$(date +%s)
say "make setup (log: $logs/setup.log)"
if in_root "make setup" > "$logs/setup.log" 2>&1; then
  pass "make setup ($(elapsed "$t"))"
else
  show_log "$logs/setup.log" 40
  fail "make setup ($(elapsed "$t")): see $logs/setup.log"
  exit 1
fi
in_root 'echo "python3 $(python3 -V 2>&1 | cut -d" " -f2), $(uv --version 2>/dev/null || var/tools/bin/uv --version), node $(node --version), npm $(npm --version), $(nginx -v 2>&1 | cut -d" " -f3), redis $(redis-server --version | cut -d" " -f3 | cut -d= -f2), postgres $(ls /usr/lib/postgresql), compose: $(command -v docker-compose || echo none)"' \
  > "$logs/versions.log" 2>&1 || true
say "installed: $(cat "$logs/versions.log")"

# --- 4. make run --------------------------------------------------------------------------------

current="make run"
# Free ports, not the defaults, so the check can run beside a developer's stack (the root
# shares this machine's network).
read -r gw pg rd p1 p2 p3 p4 e1 e2 e3 e4 < <(in_root 'python3 -c "
import socket
socks = [socket.socket() for _ in range(11)]
for s in socks:
    s.bind((\"127.0.0.1\", 0))
print(*(s.getsockname()[1] for s in socks))
"')
say "make run with the gateway on :$gw (PostgreSQL :$pg, Redis :$rd, services :$p1 :$p2 :$p3 :$p4)"
t=$(date +%s)
# chroot, env and bash each exec the next: the background job's pid is make's own, the process
# a user's SIGTERM would reach.
"${root_env[@]}" \
  BLUEPRINT_GATEWAY_PORT="$gw" BLUEPRINT_POSTGRES_PORT="$pg" BLUEPRINT_REDIS_PORT="$rd" \
  BLUEPRINT_TEMPLATE_SVC_PORT="$p1" BLUEPRINT_TASK_SVC_PORT="$p2" \
  BLUEPRINT_QC_SVC_PORT="$p3" BLUEPRINT_NOTIFY_SVC_PORT="$p4" \
  BLUEPRINT_TEMPLATE_SVC_EVENTS_PORT="$e1" BLUEPRINT_TASK_SVC_EVENTS_PORT="$e2" \
  BLUEPRINT_QC_SVC_EVENTS_PORT="$e3" BLUEPRINT_NOTIFY_SVC_EVENTS_PORT="$e4" \
  /bin/bash -c "cd $src && exec make run" > "$logs/run.log" 2>&1 &
run_pid=$!
sleep 1
say "make run started (pid $run_pid: $(cat "/proc/$run_pid/comm" 2>/dev/null || echo gone))"

http_status() {  # the HTTP status of GET $1 on the gateway (000 when there is no answer)
  in_root "python3 -c '
import sys, urllib.error, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=10).status)
except urllib.error.HTTPError as exc:
    print(exc.code)
except Exception:
    print(\"000\")
' http://localhost:$gw$1" 2>/dev/null || echo 000
}

up=0
deadline=$(( $(date +%s) + gateway_timeout ))
while [ "$(date +%s)" -lt "$deadline" ]; do
  if ! kill -0 "$run_pid" 2>/dev/null; then
    break
  fi
  if [ "$(http_status /health)" = 200 ]; then
    up=1
    break
  fi
  sleep 3
done
if [ "$up" = 1 ]; then
  pass "make run: gateway up at http://localhost:$gw ($(elapsed "$t"))"
else
  show_log "$logs/run.log" 40
  if kill -0 "$run_pid" 2>/dev/null; then
    fail "make run: no gateway at http://localhost:$gw/health after ${gateway_timeout}s"
  else
    wait "$run_pid" && code=0 || code=$?
    fail "make run exited (code $code) before the gateway answered: see $logs/run.log"
  fi
  exit 1
fi

for path in /health/template /health/task /health/qc /health/notify /docs/; do
  status=$(http_status "$path")
  if [ "$status" = 200 ]; then
    pass "GET $path through the gateway: 200"
  else
    fail "GET $path through the gateway: $status"
  fi
done

# --- 5. SIGTERM ---------------------------------------------------------------------------------

current="stop make run with SIGTERM"
t=$(date +%s)
say "SIGTERM to make run (pid $run_pid)"
kill -TERM "$run_pid"
stopped=0
deadline=$(( $(date +%s) + stop_timeout ))
while [ "$(date +%s)" -lt "$deadline" ]; do
  if ! kill -0 "$run_pid" 2>/dev/null && [ -z "$(root_pids)" ]; then
    stopped=1
    break
  fi
  sleep 1
done
wait "$run_pid" && code=0 || code=$?
if [ "$stopped" = 1 ] && [ "$(http_status /health)" = 000 ]; then
  pass "SIGTERM: make run exited (code $code), no process left, gateway closed ($(elapsed "$t"))"
else
  show_log "$logs/run.log" 30
  fail "SIGTERM: still running after ${stop_timeout}s: $(echo $(root_pids))"
fi
if grep -q "stopped" "$logs/run.log"; then
  pass "the runner reported stopping everything it started"
else
  fail "the runner's log has no \"stopped\": see $logs/run.log"
fi
current="done"
