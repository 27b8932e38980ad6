#!/usr/bin/env bash
# Several container engines side by side, each on a socket, data root, exec root, bridge and
# config file of its own, so the same image can be measured on each:
#
#   docker20             Debian bookworm's dockerd 20.10 (/usr/sbin/dockerd), overlay2
#   docker26             Debian trixie's dockerd 26.1 from a private prefix, overlay2
#   docker26-containerd  the same dockerd with the containerd image store
#   podman               bookworm's podman 4.3, `podman system service` (Docker API 1.41)
#
# Usage (as root):
#   engines.sh install [NAME...]          binaries, idempotently (apt-get; trixie's Docker
#                                         unpacked into $HARNESS_CACHE/docker26)
#   engines.sh start [--default] [NAME...]  start the engines not running yet, wait until each
#                                         answers; --default (one NAME) also listens on
#                                         /var/run/docker.sock and keeps iptables/NAT on
#   engines.sh stop [NAME...]             stop what this script started, by pid
#   engines.sh status [NAME...]           one line per engine: name, host, answers or not
#   engines.sh names                      the engine names
#
# No NAME means all. State: $HARNESS_STATE/engines/NAME/ (HARNESS_STATE defaults to
# /var/tmp/harness) holds `sock`, `pid`, `log`, the config, `data/` (data root), `run/` (exec
# root), `bridge`, and, while the engine answers, `host` (its DOCKER_HOST URL): list
# $HARNESS_STATE/engines/*/host to find the started engines.
#
# Only the default engine manages iptables (NAT for its bridge, so a RUN step reaches the
# package registries); the others get --iptables=false --ip-masq=false: their containers have
# no outbound network. Podman's netavark keeps chains of its own (NETAVARK_*), apart from
# Docker's. trixie's Docker is never installed over the system's packages and never put on
# the system's PATH: `dockerd` on PATH stays bookworm's.
set -euo pipefail

ENGINES=(docker20 docker26 docker26-containerd podman)
STATE=${HARNESS_STATE:-/var/tmp/harness}
ROOT=$STATE/engines
CACHE=${HARNESS_CACHE:-/var/cache/harness}
PREFIX=$CACHE/docker26
DEFAULT_SOCK=/var/run/docker.sock
START_TIMEOUT=${ENGINES_START_TIMEOUT:-120}
STOP_TIMEOUT=${ENGINES_STOP_TIMEOUT:-40}
TRIXIE_PKGS=(docker.io docker-cli docker-buildx containerd)  # not runc: it needs GLIBC_2.38

say() { echo "engines: $*" >&2; }
die() { say "$*"; exit 1; }
known() { local e; for e in "${ENGINES[@]}"; do [ "$e" = "$1" ] && return 0; done; return 1; }

# Per engine: the short name in its bridge and the last digit of its subnet's third octet.
short() { case $1 in docker20) echo d20 ;; docker26) echo d26 ;; docker26-containerd) echo d26c ;; podman) echo pod ;; esac; }
slot_digit() { case $1 in docker20) echo 1 ;; docker26) echo 2 ;; docker26-containerd) echo 3 ;; podman) echo 4 ;; esac; }

# --- processes ---------------------------------------------------------------------------

alive() {  # a live process (a zombie has exited)
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

cmdline() { { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null || true; }

ours() {  # pid $1 is alive and one of its arguments names a path under engine dir $2
  alive "$1" && [[ " $(cmdline "$1")" == *"$2/"* ]]
}

read_pid() { local p; p=$(cat "$1" 2>/dev/null || true); [[ $p =~ ^[0-9]+$ ]] && echo "$p"; return 0; }

ppid_of() {  # the field after the state, after "pid (comm) "
  local stat fields
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  read -ra fields <<<"${stat##*) }"
  echo "${fields[1]:-}"
}

# What an engine runs: its daemon, containerd and shims, podman's conmon and helpers.
ENGINE_BINARIES=" dockerd containerd containerd-shim containerd-shim-runc-v1 containerd-shim-runc-v2 runc docker-proxy docker-init podman conmon netavark aardvark-dns slirp4netns catatonit "

# Live processes of an engine's binaries whose command line names a path under $1, and all
# their descendants (the processes in that engine's containers).
procs_under() {
  local dir=$1 p seeds=() all=() kids argv
  declare -A parent=()
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$p" = "$$" ] || [ "$p" = "$BASHPID" ] && continue
    all+=("$p")
    parent[$p]=$(ppid_of "$p")
    argv=$(cmdline "$p")
    [[ " $argv" == *"$dir/"* ]] || continue
    argv=${argv%% *}
    [[ $ENGINE_BINARIES == *" ${argv##*/} "* ]] && alive "$p" && seeds+=("$p")
  done
  declare -A seen=()
  while [ ${#seeds[@]} -gt 0 ]; do
    p=${seeds[-1]}; unset 'seeds[-1]'
    [ -n "${seen[$p]:-}" ] && continue
    seen[$p]=1
    for kids in "${all[@]}"; do [ "${parent[$kids]:-}" = "$p" ] && seeds+=("$kids"); done
  done
  echo "${!seen[@]}"
}

wait_gone() {  # wait up to $1 s until none of the pids after it is alive
  local limit=$1 p left; shift
  for _ in $(seq 1 $((limit * 10))); do
    left=0
    for p in "$@"; do alive "$p" && left=1; done
    [ $left = 0 ] && return 0
    sleep 0.1
  done
  return 1
}

term_then_kill() {  # SIGTERM pid $1 (checked to be ours: under dir $2), wait $3 s, then SIGKILL
  local pid=$1 dir=$2 limit=$3
  ours "$pid" "$dir" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$limit" "$pid"; then
    say "$(basename "$dir"): pid $pid did not stop within $limit s; killing it"
    ours "$pid" "$dir" && kill -KILL "$pid" 2>/dev/null || true
    wait_gone 10 "$pid" || true
  fi
}

# --- sockets, mounts, bridges -----------------------------------------------------------

answers() {  # the engine on unix socket $1 answers its API
  [ -S "$1" ] && [ "$(curl -s --max-time 5 --unix-socket "$1" http://engine/_ping 2>/dev/null)" = OK ]
}

mounts_under() {  # mount points under $1, deepest first
  awk -v d="$1/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo \
    | sed 's/\\040/ /g' | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-
}

unmount_under() {
  local m
  while IFS= read -r m; do
    [ -n "$m" ] || continue
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "could not unmount $m"
  done < <(mounts_under "$1")
}

link_exists() { ip link show "$1" >/dev/null 2>&1; }
subnet_used() { [ -n "$(ip -4 route show "$1" 2>/dev/null)" ] || ip -4 -o addr show | grep -q " inet ${1%.0/24}\."; }

# The bridge of engine $1: the one it had (kept when still there with its address), or the
# first free slot: bridge he<S>-<short>, subnet 10.213.<S><digit>.0/24, S = 1..6 (so several
# state directories can run engines side by side; 10.213.77.0/24 is the private engine's).
# Prints "NAME GATEWAY/24" and writes it to the engine's `bridge` file.
choose_bridge() {
  local name=$1 dir=$ROOT/$1 br cidr s net
  if [ -f "$dir/bridge" ]; then
    read -r br cidr <"$dir/bridge" || true
    if [ -n "${br:-}" ] && link_exists "$br" && ip -4 -o addr show dev "$br" | grep -q " inet $cidr "; then
      echo "$br $cidr"; return 0
    fi
  fi
  for s in 1 2 3 4 5 6; do
    br="he$s-$(short "$name")"
    net="10.213.$s$(slot_digit "$name").0/24"
    if ! link_exists "$br" && ! subnet_used "$net"; then
      cidr="${net%.0/24}.1/24"
      echo "$br $cidr" >"$dir/bridge"
      echo "$br $cidr"; return 0
    fi
  done
  return 1
}

make_bridge() {  # create bridge $1 with address $2, up (kept when there already)
  link_exists "$1" && return 0
  ip link add "$1" type bridge && ip addr add "$2" dev "$1" && ip link set "$1" up
}

hold_bridge() {  # a port of ours on bridge $1 (one end of a veth pair), so netavark never deletes it
  link_exists "${1}h" || ip link add "${1}h" type veth peer name "${1}p" || return 1
  ip link set "${1}h" master "$1" && ip link set "${1}h" up && ip link set "${1}p" up
}

# --- install -----------------------------------------------------------------------------

need_root() { [ "$(id -u)" -eq 0 ] || die "$1 needs root"; }

apt_install() {  # bookworm packages, from the system's own sources
  [ $# -gt 0 ] || return 0
  command -v apt-get >/dev/null 2>&1 || die "missing $*; install them (Debian: apt-get install $*)"
  say "installing $* from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q "$@" >/dev/null
}

# The system's Debian mirror (first URI of its sources that is not the security archive) and
# the keyring its sources are signed with.
mirror() {
  local f=/etc/apt/sources.list.d/debian.sources uri="" keys=""
  if [ -f "$f" ]; then
    uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f")
    keys=$(awk '/^Signed-By:/ && NF == 2 { print $2; exit }' "$f")
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /:\/\// && $i !~ /security/) { print $i; exit } }' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || die "no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
  [ -n "$keys" ] && [ -f "$keys" ] || keys=/usr/share/keyrings/debian-archive-keyring.gpg
  echo "$uri $keys"
}

install_docker26() {
  local stamp=$PREFIX/.installed
  if [ -f "$stamp" ] && "$PREFIX/usr/sbin/dockerd" --version >/dev/null 2>&1; then
    say "docker26: installed in $PREFIX ($(paste -sd' ' "$stamp"))"
    return 0
  fi
  need_root "installing trixie's Docker"
  command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 || die "docker26 needs apt-get and dpkg"
  local uri keys apt=$CACHE/docker26-apt new=$PREFIX.new deb
  read -r uri keys < <(mirror)
  [ -f "$keys" ] || die "docker26: no Debian archive keyring ($keys); apt-get install debian-archive-keyring"
  rm -rf "$apt/debs" "$new"
  mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/cache" "$apt/debs" "$new"
  : >"$apt/status"
  echo "deb [signed-by=$keys] $uri trixie main" >"$apt/sources.list"
  # Everything apt reads or writes is under $apt: the system's sources, lists, package cache
  # and dpkg status are not touched.
  local opts=(-q -o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o "Dir::State::Lists=$apt/lists" -o "Dir::State::status=$apt/status"
              -o "Dir::Cache=$apt/cache" -o "Dir::Cache::Archives=$apt/archives")
  id _apt >/dev/null 2>&1 && chown _apt "$apt/debs"  # apt downloads as _apt
  say "docker26: downloading ${TRIXIE_PKGS[*]} from trixie ($uri)"
  apt-get "${opts[@]}" update >"$apt/update.log" 2>&1 || { tail -n 5 "$apt/update.log" >&2; die "docker26: apt-get update (trixie) failed"; }
  (cd "$apt/debs" && apt-get "${opts[@]}" download "${TRIXIE_PKGS[@]}") >"$apt/download.log" 2>&1 \
    || { tail -n 5 "$apt/download.log" >&2; die "docker26: apt-get download failed"; }
  for deb in "$apt"/debs/*.deb; do
    dpkg -x "$deb" "$new"
    dpkg-deb --show --showformat='${Package}=${Version}\n' "$deb" >>"$new/.installed"
  done
  "$new/usr/sbin/dockerd" --version >/dev/null && "$new/usr/bin/containerd" --version >/dev/null \
    && "$new/usr/libexec/docker/cli-plugins/docker-buildx" version >/dev/null \
    || die "docker26: trixie's binaries do not run here"
  rm -rf "$PREFIX" "$apt/debs"
  mv "$new" "$PREFIX"
  say "docker26: $("$PREFIX/usr/sbin/dockerd" --version), $("$PREFIX/usr/libexec/docker/cli-plugins/docker-buildx" version) in $PREFIX"
}

cmd_install() {
  local names=("$@") want_docker=0 want_d26=0 want_podman=0 n pkgs=()
  for n in "${names[@]}"; do
    case $n in
      docker20) want_docker=1 ;;
      docker26|docker26-containerd) want_docker=1; want_d26=1 ;;  # bookworm's runc serves them
      podman) want_podman=1 ;;
    esac
  done
  [ $want_docker = 1 ] && { [ -x /usr/sbin/dockerd ] && command -v runc >/dev/null 2>&1 || pkgs+=(docker.io); }
  [ $want_podman = 1 ] && { command -v podman >/dev/null 2>&1 || pkgs+=(podman); }
  command -v ip >/dev/null 2>&1 || pkgs+=(iproute2)
  command -v curl >/dev/null 2>&1 || pkgs+=(curl)
  if [ ${#pkgs[@]} -gt 0 ]; then need_root "installing ${pkgs[*]}"; apt_install "${pkgs[@]}"; fi
  [ $want_d26 = 1 ] && install_docker26
  for n in "${names[@]}"; do
    case $n in
      docker20) say "docker20: $(/usr/sbin/dockerd --version)" ;;
      docker26|docker26-containerd) say "$n: runc from bookworm ($(runc --version | head -n 1))" ;;
      podman) say "podman: $(podman --version)" ;;
    esac
  done
}

# --- start -------------------------------------------------------------------------------

# Engine $1 runs (its pid alive, ours) and answers: 0. Not started: 1 (a stale pid file
# removed). Runs but does not answer: 2.
state_of() {
  local dir=$ROOT/$1 pid
  pid=$(read_pid "$dir/pid")
  [ -n "$pid" ] || return 1
  if ! ours "$pid" "$dir"; then
    rm -f "$dir/pid" "$dir/host"
    return 1
  fi
  answers "$dir/sock" && return 0
  return 2
}

# Podman's environment and global flags for engine dir $1, in PODMAN_ENV and PODMAN_FLAGS.
podman_args() {
  PODMAN_ENV=(CONTAINERS_CONF="$1/containers.conf" CONTAINERS_STORAGE_CONF="$1/storage.conf" TMPDIR="$1/tmp")
  PODMAN_FLAGS=(--root "$1/data" --runroot "$1/run" --tmpdir "$1/tmp" --storage-driver overlay
                --cgroup-manager cgroupfs --events-backend file --network-config-dir "$1/net")
}

launch() {  # start engine $1 in the background (not waiting); $2 = 1: the default engine
  local name=$1 default=$2 dir=$ROOT/$1 br cidr path=$PATH args=() bin env=()
  mkdir -p "$dir"
  rm -f "$dir/host" "$dir/default"
  read -r br cidr < <(choose_bridge "$name") || { say "$name: no free bridge slot"; return 1; }
  if [ "$name" = podman ]; then
    # netavark makes the bridge itself when a container first needs it and removes it when
    # no port is left on it (another state directory could then take its name and subnet):
    # made here, with a port of ours on it, it stays until `stop`.
    make_bridge "$br" "$cidr" && hold_bridge "$br" || { say "$name: could not create bridge $br"; return 1; }
    local net=${cidr%.1/24}.0/24
    mkdir -p "$dir/data" "$dir/run" "$dir/tmp" "$dir/net"
    # Rootful Podman gives a container RLIMIT_NOFILE 1048576 and RLIMIT_NPROC 1048576 unless
    # told otherwise; without CAP_SYS_RESOURCE (a sandbox) runc may not raise a hard limit:
    # "error setting rlimit type 7: operation not permitted". Give this shell's nofile, and
    # nproc no higher than kernel.pid_max (Podman lowers its own NPROC limit to that).
    local nproc pid_max
    nproc=$(ulimit -Hu); pid_max=$(cat /proc/sys/kernel/pid_max 2>/dev/null || echo "$nproc")
    [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ] && nproc=$pid_max
    cat >"$dir/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=$nproc:$nproc"]

[network]
network_backend = "netavark"
network_config_dir = "$dir/net"
default_network = "podman"
default_subnet = "$net"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$dir/run/events.log"
tmp_dir = "$dir/tmp"
EOF
    cat >"$dir/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$dir/data"
runroot = "$dir/run"
EOF
    # The default network, on our bridge (podman's built-in one would be podman0).
    cat >"$dir/net/podman.json" <<EOF
{
  "name": "podman",
  "id": "$(printf '%s' "harness-$dir" | sha256sum | cut -c1-64)",
  "driver": "bridge",
  "network_interface": "$br",
  "created": "2000-01-01T00:00:00Z",
  "subnets": [{"subnet": "$net", "gateway": "${cidr%/24}"}],
  "ipv6_enabled": false,
  "internal": false,
  "dns_enabled": false,
  "ipam_options": {"driver": "host-local"}
}
EOF
    bin=$(command -v podman) || { say "podman: not installed (engines.sh install podman)"; return 1; }
    podman_args "$dir"
    env=("${PODMAN_ENV[@]}")
    args=("${PODMAN_FLAGS[@]}" --log-level info system service --time=0 "unix://$dir/sock")
  else
    make_bridge "$br" "$cidr" || { say "$name: could not create bridge $br"; return 1; }
    case $name in
      docker20) bin=/usr/sbin/dockerd; echo '{}' >"$dir/daemon.json" ;;
      docker26) bin=$PREFIX/usr/sbin/dockerd; echo '{"storage-driver": "overlay2"}' >"$dir/daemon.json" ;;
      docker26-containerd) bin=$PREFIX/usr/sbin/dockerd
        echo '{"features": {"containerd-snapshotter": true}}' >"$dir/daemon.json" ;;
    esac
    [ -x "$bin" ] || { say "$name: $bin is missing (engines.sh install $name)"; return 1; }
    # trixie's dockerd starts the containerd, shim and docker-proxy found first on its PATH.
    [ "$name" = docker20 ] || path=$PREFIX/usr/sbin:$PREFIX/usr/bin:$PATH
    # dockerd 20.10 reuses a containerd whose pid file names a live process: drop a stale one.
    local cpid; cpid=$(read_pid "$dir/run/containerd/containerd.pid")
    [ -n "$cpid" ] && ! ours "$cpid" "$dir" && rm -f "$dir/run/containerd/containerd.pid"
    rm -f "$dir/run/dockerd.pid"
    args=(--data-root "$dir/data" --exec-root "$dir/run" --pidfile "$dir/run/dockerd.pid"
          --config-file "$dir/daemon.json" -H "unix://$dir/sock" "--bridge=$br")
    if [ "$default" = 1 ]; then
      # dockerd unlinks a socket path before listening on it: never take it from a live one.
      if [ -S "$DEFAULT_SOCK" ] && ss -xlnH 2>/dev/null | awk -v s="$DEFAULT_SOCK" '$5 == s { f = 1 } END { exit !f }'; then
        say "$name: something listens on $DEFAULT_SOCK but does not answer; stop it first"; return 1
      fi
      args+=(-H "unix://$DEFAULT_SOCK")
      echo "unix://$DEFAULT_SOCK" >"$dir/default"
    else
      args+=(--iptables=false --ip-masq=false)
    fi
  fi
  local sock="$dir/sock"
  [ ${#sock} -le 100 ] || { say "$name: socket path $sock is too long for a unix socket"; return 1; }
  echo "--- $(date -u +%FT%TZ) engines.sh start: $bin ${args[*]}" >>"$dir/log"
  # setsid: the engine outlives this shell and its terminal; exec keeps the pid ($!).
  (cd / && exec env PATH="$path" "${env[@]}" setsid "$bin" "${args[@]}") >>"$dir/log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
}

log_tail() {  # the last lines an engine wrote since its last start, on one line
  awk '/^--- .* engines.sh start: / { n = 0; next } { line[n++] = $0 }
       END { for (i = (n > 3 ? n - 3 : 0); i < n; i++) printf "%s%s", line[i], (i < n - 1 ? " | " : "") }' "$1" 2>/dev/null \
    | cut -c1-400
}

cmd_start() {
  local default=0 names=() n rc=0
  [ "${1:-}" = --default ] && { default=1; shift; }
  names=("$@")
  [ ${#names[@]} -gt 0 ] || names=("${ENGINES[@]}")
  [ $default = 0 ] || [ ${#names[@]} -eq 1 ] || die "--default takes one engine"
  need_root "starting engines"
  mkdir -p "$ROOT"
  local started=() t0=$SECONDS
  for n in "${names[@]}"; do
    local st=0
    state_of "$n" || st=$?
    if [ $st = 0 ] && [ $default = 1 ] && [ ! -f "$ROOT/$n/default" ]; then
      say "$n: runs, but not as the default engine; restarting it as the default"
      cmd_stop "$n"; st=1
    fi
    case $st in
      0) say "$n: already runs (pid $(read_pid "$ROOT/$n/pid")) and answers at unix://$ROOT/$n/sock"
         echo "unix://$ROOT/$n/sock" >"$ROOT/$n/host" ;;
      2) started+=("$n") ;;  # runs, not answering yet: wait for it below
      *) stop_one "$n"  # what a killed engine left: its shims, containers, mounts
         if launch "$n" "$default"; then started+=("$n"); else rc=1; fi ;;
    esac
  done
  for n in "${started[@]}"; do
    local dir=$ROOT/$n pid
    pid=$(read_pid "$dir/pid")
    while :; do
      if answers "$dir/sock"; then
        echo "unix://$dir/sock" >"$dir/host"
        say "$n: answers at unix://$dir/sock (pid $pid, $((SECONDS - t0)) s)"
        break
      fi
      if ! alive "$pid"; then
        say "$n: exited before answering; log $dir/log: $(log_tail "$dir/log")"
        rm -f "$dir/pid"; rc=1; break
      fi
      if [ $((SECONDS - t0)) -ge "$START_TIMEOUT" ]; then
        say "$n: pid $pid did not answer within $START_TIMEOUT s; log $dir/log: $(log_tail "$dir/log")"
        rc=1; break
      fi
      sleep 0.2
    done
  done
  return $rc
}

# --- stop, status --------------------------------------------------------------------------

stop_one() {
  local name=$1 dir=$ROOT/$1 pid br cidr
  [ -d "$dir" ] || return 0
  pid=$(read_pid "$dir/pid")
  if [ -n "$pid" ] && ours "$pid" "$dir"; then
    say "$name: stopping pid $pid"
    if [ "$name" = podman ] && [ -f "$dir/containers.conf" ]; then
      # The service leaves its containers running: stop them first, so that netavark takes
      # their network down (veth, the netns under /run/netns, the port forwarding).
      podman_args "$dir"
      env "${PODMAN_ENV[@]}" timeout "$STOP_TIMEOUT" podman "${PODMAN_FLAGS[@]}" stop --all --time 10 \
        >/dev/null 2>>"$dir/log" || say "$name: could not stop its containers (see $dir/log)"
    fi
    term_then_kill "$pid" "$dir" "$STOP_TIMEOUT"  # dockerd stops its containers and containerd
  fi
  # dockerd's containerd (pid file under the exec root), when it outlived dockerd
  pid=$(read_pid "$dir/run/containerd/containerd.pid")
  [ -n "$pid" ] && term_then_kill "$pid" "$dir" 10
  # whatever else of ours is left: shims, conmon, the processes in our containers
  local left=()
  read -ra left <<<"$(procs_under "$dir")"
  if [ ${#left[@]} -gt 0 ]; then
    say "$name: killing leftover pids ${left[*]}"
    kill -KILL "${left[@]}" 2>/dev/null || true
    wait_gone 10 "${left[@]}" || say "$name: pids still alive: ${left[*]}"
  fi
  unmount_under "$dir"
  if [ -f "$dir/bridge" ]; then
    read -r br cidr <"$dir/bridge" || true
    [ -n "${br:-}" ] && link_exists "${br}h" && ip link del "${br}h" 2>/dev/null || true
    [ -n "${br:-}" ] && link_exists "$br" && ip link del "$br" 2>/dev/null || true
  fi
  if [ -f "$dir/default" ] && [ -S "$DEFAULT_SOCK" ] && ! answers "$DEFAULT_SOCK"; then
    rm -f "$DEFAULT_SOCK"
  fi
  rm -f "$dir/pid" "$dir/host" "$dir/sock" "$dir/default" "$dir/run/dockerd.pid"
}

cmd_stop() {
  local names=("$@") n
  if [ ${#names[@]} -eq 0 ]; then
    [ -d "$ROOT" ] || return 0
    for n in "$ROOT"/*/; do n=$(basename "$n"); known "$n" && names+=("$n"); done
  fi
  local pids=() rc=0 p
  for n in "${names[@]}"; do stop_one "$n" & pids+=($!); done  # each may wait for its containers
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  return $rc
}

cmd_status() {
  local names=("$@") n dir pid what extra
  [ ${#names[@]} -gt 0 ] || names=("${ENGINES[@]}")
  for n in "${names[@]}"; do
    dir=$ROOT/$n
    pid=$(read_pid "$dir/pid")
    extra=""
    [ -f "$dir/default" ] && extra=" (default engine, also $(cat "$dir/default"))"
    if answers "$dir/sock"; then what="answers (pid $pid)$extra"
    elif [ -n "$pid" ] && ours "$pid" "$dir"; then what="runs (pid $pid) but does not answer"
    else what="not running"; fi
    printf '%-20s %-60s %s\n' "$n" "unix://$dir/sock" "$what"
  done
}

main() {
  local cmd=${1:-}
  [ $# -gt 0 ] && shift
  local n
  for n in "$@"; do
    [ "$n" = --default ] || known "$n" || die "unknown engine '$n' (engines: ${ENGINES[*]})"
  done
  case $cmd in
    install) if [ $# -gt 0 ]; then cmd_install "$@"; else cmd_install "${ENGINES[@]}"; fi ;;
    start) cmd_start "$@" ;;
    stop) need_root "stopping engines"; cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    names) printf '%s\n' "${ENGINES[@]}" ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
  esac
}

main "$@"
