#!/usr/bin/env bash
# Make sure a Docker engine answers. Never touches an engine that already answers.
# When none does and we are root on Debian: install docker.io (and what the base-image
# stand-ins need), start dockerd in the background, wait until it answers.
# Prints the pid of a dockerd it started to $HARNESS_STATE/dockerd.pid so its starter can stop it.
set -euo pipefail

state=${HARNESS_STATE:-/var/tmp/harness}
log="$state/dockerd.log"
mkdir -p "$state"

answers() { docker info >/dev/null 2>&1; }

need_pkgs=()
command -v mmdebstrap >/dev/null 2>&1 || need_pkgs+=(mmdebstrap)
[ -x /bin/busybox ] || need_pkgs+=(busybox-static)
[ -x /usr/bin/docker-registry ] || need_pkgs+=(docker-registry)  # loopback registry for exact compressed sizes
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)  # the HTML report's browser test
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v docker >/dev/null 2>&1 || need_pkgs+=(docker.io)

if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-engine: missing ${need_pkgs[*]}; install them (Debian: apt-get install ${need_pkgs[*]}) as root, or run this as root on Debian" >&2
    answers && exit 0 || exit 1
  fi
  echo "ensure-engine: installing ${need_pkgs[*]} from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q "${need_pkgs[@]}" >/dev/null
fi

if answers; then
  echo "ensure-engine: an engine already answers; leaving it alone" >&2
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-engine: no Docker engine answers and starting one needs root; run 'sudo make engine' or start dockerd yourself" >&2
  exit 1
fi

# A dockerd killed earlier leaves its pid file behind and a new one refuses to start.
pidfile=/var/run/docker.pid
if [ -f "$pidfile" ]; then
  old=$(cat "$pidfile" 2>/dev/null || true)
  if [ -n "$old" ] && kill -0 "$old" 2>/dev/null; then
    echo "ensure-engine: dockerd (pid $old) runs but does not answer; see its log or stop it" >&2
    exit 1
  fi
  rm -f "$pidfile"
fi

echo "ensure-engine: starting dockerd (log: $log)" >&2
nohup dockerd >"$log" 2>&1 &
pid=$!
echo "$pid" >"$state/dockerd.pid"
for _ in $(seq 1 60); do
  if answers; then
    echo "ensure-engine: dockerd $pid answers" >&2
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "ensure-engine: dockerd exited; last lines of $log:" >&2
    tail -n 5 "$log" >&2
    exit 1
  fi
  sleep 1
done
echo "ensure-engine: dockerd $pid did not answer within 60 s; see $log" >&2
exit 1
