#!/usr/bin/env bash
# Make sure a Docker engine answers. Never touches an engine that already answers.
# When none does and we are root on Debian: install what the base-image stand-ins need and
# start the default engine, Docker 26 (Debian trixie's, from a private prefix; bookworm's
# dockerd stays the one on PATH) with the containerd image store, through scripts/engines.sh:
# `engines.sh start --default docker26-containerd`. It listens on its own socket under
# $HARNESS_STATE/engines/docker26-containerd/ and on /var/run/docker.sock, keeps iptables (NAT
# for its own bridge), and is stopped, by pid, with `scripts/engines.sh stop`.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
default_engine=docker26-containerd

answers() { docker info >/dev/null 2>&1; }

need_pkgs=()
command -v mmdebstrap >/dev/null 2>&1 || need_pkgs+=(mmdebstrap)
[ -x /bin/busybox ] || need_pkgs+=(busybox-static)
[ -x /usr/bin/docker-registry ] || need_pkgs+=(docker-registry)  # loopback registry for exact compressed sizes
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)  # bookworm's: the private engine's, and runc
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

if [ -n "${DOCKER_HOST:-}" ] && [ "$DOCKER_HOST" != unix:///var/run/docker.sock ]; then
  echo "ensure-engine: no engine answers at DOCKER_HOST=$DOCKER_HOST, and the engine started here would listen on unix:///var/run/docker.sock; unset DOCKER_HOST or start that engine" >&2
  exit 1
fi

echo "ensure-engine: starting $default_engine as the default engine (scripts/engines.sh)" >&2
bash "$here/engines.sh" install "$default_engine"
bash "$here/engines.sh" start --default "$default_engine"
if ! answers; then
  echo "ensure-engine: $default_engine started but 'docker info' gets no answer; see ${HARNESS_STATE:-/var/tmp/harness}/engines/$default_engine/log" >&2
  exit 1
fi
