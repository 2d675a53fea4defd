#!/usr/bin/env bash
# One command for the whole bench: installs the peers from Debian packages when they are missing, raises the
# open-file limit, and runs bench.py, which starts nginx, uWSGI, gunicorn+Flask and azmlinfsrv side by side on
# free 127.0.0.1 ports and prints the tables and the ratios. See bench/README.md.
#
#   bash bench/run.sh                 # 10 s per case
#   BENCH_QUICK=1 bash bench/run.sh   # 2 s per case, one start-up trial: for development
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
command -v uwsgi >/dev/null || need+=(uwsgi-core)
[ -e /usr/lib/uwsgi/plugins/python3_plugin.so ] || need+=(uwsgi-plugin-python3)
command -v gunicorn >/dev/null || need+=(gunicorn)
/usr/bin/python3 -c 'import flask' 2>/dev/null || need+=(python3-flask)
/usr/bin/python3 -c 'import sklearn' 2>/dev/null || need+=(python3-sklearn)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps the nginx package from starting the system's nginx service
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.bench && chmod +x /usr/sbin/policy-rc.d.bench
  if [ ! -e /usr/sbin/policy-rc.d ]; then cp /usr/sbin/policy-rc.d.bench /usr/sbin/policy-rc.d; placed=1; fi
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  [ "${placed:-0}" = 1 ] && rm -f /usr/sbin/policy-rc.d
  rm -f /usr/sbin/policy-rc.d.bench
fi

# 10,000 idle connections need as many descriptors in the server and in the helper
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $(( ${BENCH_IDLE_CONNS:-10000} + 2000 )) ]; then
  echo "bench: ulimit -n is $(ulimit -n); the idle case needs more than ${BENCH_IDLE_CONNS:-10000}" >&2
fi

tmpdir="$(mktemp -d /tmp/azmlinfsrv-bench.XXXXXX)"
pidfile="$tmpdir/pids"
: > "$pidfile"
driver=""
cleanup() {
  trap - EXIT INT TERM HUP
  if [ -n "$driver" ] && kill -0 "$driver" 2>/dev/null; then
    kill -TERM "$driver" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$driver" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$driver" 2>/dev/null || true
  fi
  # process groups bench.py started and had not stopped yet
  while read -r pgid; do
    [ -n "$pgid" ] || continue
    kill -TERM -- "-$pgid" 2>/dev/null || true
    sleep 0.5
    kill -KILL -- "-$pgid" 2>/dev/null || true
  done < "$pidfile"
  rm -f "$pidfile"
  if [ -n "${BENCH_KEEP:-}" ] && [ "${BENCH_KEEP}" != 0 ]; then
    echo "bench: logs and files kept in $tmpdir" >&2
  else
    rm -rf "$tmpdir"
  fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM HUP

BENCH_PIDFILE="$pidfile" BENCH_TMPDIR="$tmpdir" /usr/bin/python3 "$here/bench.py" &
driver=$!
set +e
wait "$driver"
rc=$?
set -e
exit "$rc"
