#!/usr/bin/env bash
# Tries README.md's "Run on a VM" line by line, as a person would on a fresh VM, against a
# release archive, and checks that the service it installs works.
#
# Usage (as root): scripts/vm-install-test.sh [dist/causality_<version>_linux_<arch>.tar.gz]
#   (default: the archive for this machine's architecture in dist/, from `make snapshot`)
#
# Every line of the sh blocks between <!-- vm-install:begin --> and <!-- vm-install:end -->
# runs in one bash, in order, with `set -euo pipefail`, inside namespaces of its own (mount,
# PID, and network with loopback only), so that this machine is left as it was:
#   /etc              a copy of this machine's /etc, without any user causality
#   /usr/local        empty (the binary lands in /usr/local/bin; Go and the rest are gone)
#   /var/lib          empty (the data dir /var/lib/causality)
#   /var/backups      empty
#   HOME, cwd, TMPDIR fresh directories; PATH the system's, with the stand-ins below first
# Substituted; everything else runs as written:
#   VERSION=…         a line starting with it gets the archive's version
#   curl              release URLs (…/releases/download/v<version>/<file>) answer from the
#                     archive's directory (with -O, into the working directory); other URLs go
#                     to the real curl
#   sudo              runs the command (no options): we are root already
#   systemctl         daemon-reload checks the unit with systemd-analyze verify; start, restart
#                     and enable --now run the unit's ExecStart the way systemd would (below),
#                     and refuse a unit changed since the last daemon-reload; stop, restart and
#                     disable --now send SIGTERM to the main process only (KillMode=mixed),
#                     wait up to TimeoutStopSec, and require exit 0 and no process of the
#                     unit's user left behind; is-active, status
#   systemd-run       --pipe --wait with -p User= and -p EnvironmentFile=: runs the command so
#   journalctl        -u NAME: what the service wrote to stdout and stderr
#   ufw, firewall-cmd recorded, not run
# A service is started as systemd starts it: EnvironmentFile= (systemd's syntax, nothing
# expanded), a clean environment (PATH, HOME, USER, LOGNAME, SHELL, STATE_DIRECTORY),
# StateDirectory= and StateDirectoryMode=, User= and Group= with their groups, LimitNOFILE=,
# NoNewPrivileges=, AmbientCapabilities=, CapabilityBoundingSet=, and in a mount namespace of
# its own PrivateTmp= (new /tmp and /var/tmp), ProtectHome= (empty /home, /root, /run/user) and
# ProtectSystem=strict (every mount read-only except /dev, /proc, /sys, the private /tmp and
# ReadWritePaths=). Not emulated, because they need a real systemd (systemd-analyze verify
# still parses them): PrivateDevices=, ProtectKernel*=, ProtectControlGroups=, ProtectClock=,
# ProtectHostname=, RestrictSUIDSGID=, RestrictRealtime=, RestrictNamespaces=,
# LockPersonality=, Restart=, WantedBy= beyond the enable symlink.
#
# Checks between the lines: right after the settings file is installed the test adds
# CAUSALITY_LOG_FORMAT=json to it (a person editing it), and after the admin password line it
# checks that the logs are JSON (the file was read), that causality and its PostgreSQL run as
# user causality and own the data dir, and that a new API key takes an event; after the
# upgrade's restart, that the first event is in Parquet, the key still works and the backup
# exists; after userdel, that nothing of the install is left. Each check must have run.
set -euo pipefail

die() { echo "vm-install-test: $*" >&2; exit 1; }

if [ "${VM_INSTALL_INNER:-}" != 1 ]; then
  cd "$(dirname "$0")/.."
  [ "$(id -u)" = 0 ] || die "needs root: it works in namespaces of its own (unshare) and leaves the machine as it was"
  case $(uname -m) in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) die "no release for $(uname -m)" ;; esac
  archive=${1:-}
  if [ -z "$archive" ]; then
    archive=$(ls dist/causality_*_linux_"$arch".tar.gz 2>/dev/null | head -n1) || true
    [ -n "$archive" ] || die "no dist/causality_*_linux_$arch.tar.gz: run make snapshot first"
  fi
  [ -f "$archive" ] || die "$archive: no such file"
  base=$(basename "$archive")
  [[ $base =~ ^causality_(.+)_linux_(amd64|arm64)\.tar\.gz$ ]] || die "$base: not named causality_<version>_linux_<arch>.tar.gz"
  version=${BASH_REMATCH[1]}
  [ "${BASH_REMATCH[2]}" = "$arch" ] || die "$base is for ${BASH_REMATCH[2]}, this machine is $arch"
  sums=$(dirname "$archive")/checksums.txt
  [ -f "$sums" ] || die "no checksums.txt beside $archive"
  [ -d /var/backups ] || die "/var/backups is missing here (the test masks it with an empty directory)"
  readme=$PWD/README.md

  work=$(mktemp -d /tmp/causality-vm.XXXXXX)
  chmod 755 "$work"
  keep=1
  trap '[ $keep = 1 ] && echo "vm-install-test: FAILED, files kept in $work" >&2 || rm -rf "$work"' EXIT
  mkdir -p "$work/root/usr/local/bin" "$work/root/usr/local/sbin" "$work/root/var/lib" "$work/root/var/backups" \
    "$work/home" "$work/tmp" "$work/state" "$work/release" "$work/shim"
  chmod 755 "$work/root" "$work/root/usr" "$work/root/usr/local" "$work/root/var" "$work/root/var/lib" "$work/root/var/backups"
  chmod 700 "$work/home"
  cp -a /etc "$work/root/etc"
  for f in passwd group shadow gshadow subuid subgid; do
    [ -f "$work/root/etc/$f" ] && sed -i '/^causality:/d' "$work/root/etc/$f"
  done
  rm -rf "$work/root/etc/causality" "$work/root/etc/systemd/system/causality.service" \
    "$work/root/etc/systemd/system/multi-user.target.wants/causality.service"
  cp "$archive" "$sums" "$work/release/"

  # The README's lines, block by block; a line ending in a backslash continues on the next.
  awk '
    /<!-- vm-install:begin/ { on = 1; next }
    /<!-- vm-install:end/ { on = 0 }
    on && /^```sh[[:space:]]*$/ { code = 1; next }
    on && code && /^```[[:space:]]*$/ { code = 0; next }
    on && code { if (sub(/\\$/, "")) { cont = cont $0; next }; print cont $0; cont = "" }
  ' "$readme" >"$work/lines"
  [ -s "$work/lines" ] || die "README.md has no sh lines between <!-- vm-install:begin --> and <!-- vm-install:end -->"

  # The script the inner bash runs: each line announced, run, then handed to the checks.
  {
    echo 'set -euo pipefail'
    printf '. %q\n' "$work/checks.sh"
    echo 'trap '\''echo "vm-install-test: the line above failed" >&2'\'' ERR'
    while IFS= read -r line; do
      [ -n "${line//[[:space:]]/}" ] || continue
      if [[ $line =~ ^VERSION=[^[:space:]]+(.*)$ ]]; then
        line="VERSION=$version${BASH_REMATCH[1]}   # (vm-install-test: the archive's version)"
      fi
      printf 'step %q\n' "$line"
      printf '%s\n' "$line"
      printf 'after %q\n' "$line"
    done <"$work/lines"
    echo 'finish'
  } >"$work/steps.sh"

  # ---- stand-ins --------------------------------------------------------------------------
  cat >"$work/shimlib.sh" <<'EOF'
# Shared by the stand-ins of scripts/vm-install-test.sh.
shim_die() { echo "$(basename "$0") (vm-install-test stand-in): $*" >&2; exit 1; }
ms() { date +%s%3N; }
# load_envfile FILE: a systemd EnvironmentFile into ENVFILE_VARS (KEY=VALUE each): blank lines
# and lines starting with # or ; are skipped, one pair of surrounding quotes goes, nothing is
# expanded.
load_envfile() {
  ENVFILE_VARS=()
  local line key val
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line#"${line%%[![:space:]]*}"}
    case $line in '' | '#'* | ';'*) continue ;; esac
    [[ $line == *=* ]] || shim_die "$1: not KEY=VALUE: $line"
    key=${line%%=*} val=${line#*=}
    key=${key%"${key##*[![:space:]]}"}
    val=${val#"${val%%[![:space:]]*}"}
    val=${val%"${val##*[![:space:]]}"}
    if [ ${#val} -ge 2 ] && { [[ $val == \"*\" ]] || [[ $val == \'*\' ]]; }; then val=${val:1:${#val}-2}; fi
    ENVFILE_VARS+=("$key=$val")
  done <"$1"
}
# user_env USER: the environment systemd gives a service of that user.
user_env() {
  local pw
  pw=$(getent passwd "$1") || shim_die "user $1 does not exist"
  USER_ENV=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
    HOME="$(cut -d: -f6 <<<"$pw")" USER="$1" LOGNAME="$1" SHELL="$(cut -d: -f7 <<<"$pw")")
}
EOF

  cat >"$work/shim/sudo" <<'EOF'
#!/usr/bin/env bash
# vm-install-test stand-in: we are root already.
case ${1:-} in -* | '') echo "sudo (vm-install-test stand-in): options are not emulated: $*" >&2; exit 1 ;; esac
exec "$@"
EOF

  cat >"$work/shim/curl" <<'EOF'
#!/usr/bin/env bash
# vm-install-test stand-in: release downloads come from the archive's directory.
. "$VM_WORK/shimlib.sh"
prefix=https://github.com/causality-io/causality/releases/download/
url='' remote=0
for a in "$@"; do
  case $a in
    "$prefix"*) url=$a ;;
    --remote-name) remote=1 ;;
    -o | --output | --output=*) [ -z "$url" ] || shim_die "-o is not emulated for release URLs" ;;
    --*) ;;
    -*) [[ $a == *O* ]] && remote=1 ;;
  esac
done
[ -n "$url" ] || exec /usr/bin/curl "$@"
rest=${url#"$prefix"} tag=${rest%%/*} file=${rest#*/}
if [ "$tag" != "v$VM_VERSION" ] || [ ! -f "$VM_RELEASE/$file" ]; then
  echo "curl: (22) The requested URL returned error: 404" >&2
  exit 22
fi
if [ $remote = 1 ]; then cp "$VM_RELEASE/$file" "./$file"; else cat "$VM_RELEASE/$file"; fi
EOF

  for fw in ufw firewall-cmd; do
    cat >"$work/shim/$fw" <<'EOF'
#!/usr/bin/env bash
# vm-install-test stand-in: a firewall change is recorded, not made.
echo "$(basename "$0") $*" >>"$VM_STATE/firewall.log"
echo "(vm-install-test: recorded, not run: $(basename "$0") $*)"
EOF
  done

  cat >"$work/shim/journalctl" <<'EOF'
#!/usr/bin/env bash
# vm-install-test stand-in: -u NAME prints what the service wrote.
. "$VM_WORK/shimlib.sh"
unit=
while [ $# -gt 0 ]; do
  case $1 in
    -u | --unit) unit=${2%.service}; shift 2 ;;
    --unit=*) unit=${1#--unit=}; unit=${unit%.service}; shift ;;
    --no-pager | -b | --boot | -q | --quiet) shift ;;
    *) shim_die "$1 is not emulated" ;;
  esac
done
[ -n "$unit" ] || shim_die "only -u NAME is emulated"
if [ -s "$VM_STATE/$unit.journal" ]; then cat "$VM_STATE/$unit.journal"; else echo "-- No entries --"; fi
EOF

  cat >"$work/shim/systemd-run" <<'EOF'
#!/usr/bin/env bash
# vm-install-test stand-in: --pipe --wait with -p User= and -p EnvironmentFile=.
. "$VM_WORK/shimlib.sh"
user='' envfiles=() wait=0 pipe=0
property() {
  case $1 in
    User=*) user=${1#User=} ;;
    EnvironmentFile=*) envfiles+=("${1#EnvironmentFile=}") ;;
    *) shim_die "property $1 is not emulated" ;;
  esac
}
while [ $# -gt 0 ]; do
  case $1 in
    --pipe | -P) pipe=1; shift ;;
    --wait) wait=1; shift ;;
    --quiet | -q | --collect | -G) shift ;;
    -p | --property) property "$2"; shift 2 ;;
    --property=*) property "${1#--property=}"; shift ;;
    -*) shim_die "$1 is not emulated" ;;
    *) break ;;
  esac
done
[ $wait = 1 ] && [ $pipe = 1 ] || shim_die "only --pipe --wait is emulated"
[ -n "$user" ] || shim_die "only -p User=… is emulated"
user_env "$user"
vars=("${USER_ENV[@]}")
for f in "${envfiles[@]}"; do
  opt=0; [[ $f == -* ]] && { opt=1; f=${f#-}; }
  if [ -f "$f" ]; then load_envfile "$f"; vars+=("${ENVFILE_VARS[@]}"); elif [ $opt = 0 ]; then shim_die "$f: no such file"; fi
done
cd /
exec env -i "${vars[@]}" setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"
EOF

  cat >"$work/shim/systemctl" <<'EOF'
#!/usr/bin/env bash
# vm-install-test stand-in for systemctl: see scripts/vm-install-test.sh.
. "$VM_WORK/shimlib.sh"
set -euo pipefail
unitdir=/etc/systemd/system state=$VM_STATE
now=0 args=()
for a in "$@"; do
  case $a in
    --now) now=1 ;;
    --no-pager | -q | --quiet) ;;
    -*) shim_die "option $a is not emulated" ;;
    *) args+=("$a") ;;
  esac
done
[ ${#args[@]} -gt 0 ] || shim_die "no command"
cmd=${args[0]} units=("${args[@]:1}")

unitfile() { echo "$unitdir/${1%.service}.service"; }
prop() { sed -n "s/^$2=//p" "$(unitfile "$1")" | tail -n1; }
props() { sed -n "s/^$2=//p" "$(unitfile "$1")"; }
running() {
  local n=${1%.service} p
  p=$(cat "$state/$n.pid" 2>/dev/null) || return 1
  [ ! -e "$state/$n.exit" ] && kill -0 "$p" 2>/dev/null
}
journal() { echo "-- $(date -u +%FT%TZ) systemd (vm-install-test stand-in): $2" >>"$state/${1%.service}.journal"; }
seconds() { # 90s, 90, 1min 30s, 2min
  local v=$1 t=0
  [[ $v =~ ^([0-9]+)min ]] && t=$((BASH_REMATCH[1] * 60)) && v=${v#*min}
  v=${v//[[:space:]s]/}
  echo $((t + ${v:-0}))
}
caps() { # CAP_NET_BIND_SERVICE CAP_X -> -all,+net_bind_service,+x
  local out=-all c
  for c in $1; do c=${c#CAP_}; out+=",+${c,,}"; done
  echo "$out"
}

daemon_reload() {
  local f n
  for f in "$unitdir"/*.service; do
    [ -f "$f" ] && [ ! -L "$f" ] || continue
    n=$(basename "$f" .service)
    [ -e "$state/$n.journal" ] || [ "$n" = causality ] || continue # only units of this test
    local out
    out=$(systemd-analyze verify "$f" 2>&1) || { echo "$out" >&2; shim_die "systemd-analyze verify $f failed"; }
    if [ -n "$out" ]; then echo "$out" >&2; shim_die "systemd-analyze verify $f complained"; fi
    sha256sum <"$f" >"$state/$n.loaded"
  done
  for f in "$state"/*.loaded; do
    [ -e "$f" ] || continue
    [ -f "$unitdir/$(basename "$f" .loaded).service" ] || rm -f "$f"
  done
}

start() {
  local n=${1%.service} f
  f=$(unitfile "$n")
  [ -f "$f" ] || shim_die "Unit $n.service not found."
  [ -e "$state/$n.loaded" ] && [ "$(sha256sum <"$f")" = "$(cat "$state/$n.loaded")" ] ||
    shim_die "$n.service is new or changed on disk since the last daemon-reload (systemd would run the old one): run systemctl daemon-reload"
  running "$n" && return 0
  local user group
  user=$(prop "$n" User) group=$(prop "$n" Group)
  [ -n "$user" ] || shim_die "units without User= are not emulated"
  group=${group:-$user}
  local -a cmdline vars rw=()
  read -ra cmdline <<<"$(prop "$n" ExecStart)"
  user_env "$user"
  vars=("${USER_ENV[@]}")
  local e opt
  while IFS= read -r e; do
    [ -n "$e" ] || continue
    opt=0; [[ $e == -* ]] && { opt=1; e=${e#-}; }
    if [ -f "$e" ]; then load_envfile "$e"; vars+=("${ENVFILE_VARS[@]}"); elif [ $opt = 0 ]; then shim_die "$e: no such file"; fi
  done < <(props "$n" EnvironmentFile)
  local sd mode
  sd=$(prop "$n" StateDirectory)
  if [ -n "$sd" ]; then
    mode=$(prop "$n" StateDirectoryMode)
    install -d "/var/lib/$sd"
    chown "$user:$group" "/var/lib/$sd"
    chmod "${mode:-0755}" "/var/lib/$sd"
    vars+=("STATE_DIRECTORY=/var/lib/$sd")
    rw+=("/var/lib/$sd")
  fi
  for e in $(props "$n" ReadWritePaths); do rw+=("${e#-}"); done
  local -a priv=(setpriv --reuid="$user" --regid="$group" --init-groups)
  local amb
  amb=$(caps "$(prop "$n" AmbientCapabilities)")
  priv+=(--inh-caps="$amb" --ambient-caps="$amb" --bounding-set="$(caps "$(prop "$n" CapabilityBoundingSet)")")
  [ "$(prop "$n" NoNewPrivileges)" = yes ] && priv+=(--no-new-privs)
  # The mount namespace of the service: PrivateTmp=, ProtectHome=, ReadWritePaths=, ProtectSystem=strict.
  local sandbox='
    set -e
    ptmp=$1 phome=$2 psys=$3 nofile=$4; shift 4
    rw=(); while [ "$1" != -- ]; do rw+=("$1"); shift; done; shift
    keep=" ${rw[*]} "
    if [ "$ptmp" = yes ]; then
      mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
      mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /var/tmp
      keep+=" /tmp /var/tmp "
    fi
    if [ "$phome" = yes ]; then
      for d in /home /root /run/user; do [ -d "$d" ] && mount -t tmpfs -o mode=000 tmpfs "$d"; done
    fi
    for p in "${rw[@]}"; do mount --bind "$p" "$p"; done
    if [ "$psys" = strict ]; then
      while read -r _ _ _ _ mp _; do
        case $mp in /proc | /proc/* | /sys | /sys/* | /dev | /dev/*) continue ;; esac
        case $keep in *" $mp "*) continue ;; esac
        mount -o remount,bind,ro "$mp"
      done < /proc/self/mountinfo
    fi
    if [ -n "$nofile" ]; then
      if ! ulimit -Hn "$nofile" 2>/dev/null; then
        echo "(vm-install-test: LimitNOFILE=$nofile is above what this machine allows, $(ulimit -Hn): using that)"
        nofile=$(ulimit -Hn)
      fi
      ulimit -Sn "$nofile"
    fi
    cd /
    exec "$@"'
  rm -f "$state/$n.pid" "$state/$n.exit"
  journal "$n" "Started $n.service: ${cmdline[*]}"
  (
    set +e
    unshare --mount --propagation private -- bash -c "$sandbox" sandbox \
      "$(prop "$n" PrivateTmp)" "$(prop "$n" ProtectHome)" "$(prop "$n" ProtectSystem)" "$(prop "$n" LimitNOFILE)" \
      "${rw[@]}" -- env -i "${vars[@]}" "${priv[@]}" -- "${cmdline[@]}" >>"$state/$n.journal" 2>&1 </dev/null &
    echo $! >"$state/$n.pid.new" && mv "$state/$n.pid.new" "$state/$n.pid"
    wait $!
    echo $? >"$state/$n.exit"
  ) </dev/null >/dev/null 2>&1 &
  disown
  for _ in $(seq 100); do [ -e "$state/$n.pid" ] && return 0; sleep 0.05; done
  shim_die "$n.service did not start"
}

stop() {
  local n=${1%.service}
  running "$n" || return 0
  local pid user limit t0 rc
  pid=$(cat "$state/$n.pid") user=$(prop "$n" User) limit=$(seconds "$(prop "$n" TimeoutStopSec)")
  [ "$limit" -gt 0 ] || limit=90
  t0=$(ms)
  journal "$n" "Stopping $n.service: SIGTERM to $pid (KillMode=$(prop "$n" KillMode))"
  kill -TERM "$pid"
  until [ -e "$state/$n.exit" ]; do
    if [ $(($(ms) - t0)) -gt $((limit * 1000)) ]; then
      kill -KILL "$pid" 2>/dev/null || true
      shim_die "$n.service did not stop within TimeoutStopSec=${limit}s"
    fi
    sleep 0.1
  done
  rc=$(cat "$state/$n.exit")
  echo "$n.service stopped in $(($(ms) - t0)) ms, exit $rc" | tee -a "$state/stops" >>"$state/$n.journal"
  [ "$rc" = 0 ] || shim_die "$n.service exited $rc after SIGTERM"
  local left
  left=$(pgrep -u "$user" || true)
  if [ -n "$left" ]; then
    ps -o pid,user,args -p "$(echo $left | tr ' ' ,)" >&2 || true
    for pid in $left; do kill -KILL "$pid" 2>/dev/null || true; done
    shim_die "processes of user $user were left after $n.service's main process exited (systemd would SIGKILL them)"
  fi
  rm -f "$state/$n.pid"
}

case $cmd in
  daemon-reload) daemon_reload ;;
  start) for u in "${units[@]}"; do start "$u"; done ;;
  stop) for u in "${units[@]}"; do stop "$u"; done ;;
  restart) for u in "${units[@]}"; do stop "$u"; start "$u"; done ;;
  enable | disable)
    for u in "${units[@]}"; do
      n=${u%.service}
      [ -f "$(unitfile "$n")" ] || shim_die "Unit file $n.service does not exist."
      want=$(prop "$n" WantedBy)
      [ -n "$want" ] || shim_die "$n.service has no WantedBy="
      if [ "$cmd" = enable ]; then
        mkdir -p "$unitdir/$want.wants"
        ln -sf "$(unitfile "$n")" "$unitdir/$want.wants/$n.service"
        echo "Created symlink $unitdir/$want.wants/$n.service → $(unitfile "$n")."
        [ $now = 0 ] || start "$n"
      else
        [ $now = 0 ] || stop "$n"
        rm -f "$unitdir/$want.wants/$n.service"
        echo "Removed \"$unitdir/$want.wants/$n.service\"."
      fi
    done ;;
  is-active) running "${units[0]}" && { echo active; exit 0; } || { echo inactive; exit 3; } ;;
  status)
    n=${units[0]%.service}
    if running "$n"; then echo "● $n.service: active (running), main PID $(cat "$state/$n.pid")"; else echo "○ $n.service: inactive (dead)"; fi
    tail -n 10 "$state/$n.journal" 2>/dev/null || true
    running "$n" || exit 3 ;;
  *) shim_die "$cmd is not emulated" ;;
esac
EOF
  chmod 755 "$work/shim"/*

  # ---- checks between the README's lines ------------------------------------------------
  cat >"$work/checks.sh" <<'EOF'
# Sourced by the steps of scripts/vm-install-test.sh.
base=http://127.0.0.1:8080
done_checks=" "
step() { printf '\n\033[1m$ %s\033[0m\n' "$1" >&2; }
check() { printf '  [check] %s\n' "$*" >&2; }
fail() { echo "vm-install-test: $*" >&2; exit 1; }
journal() { cat "$VM_STATE/causality.journal"; }
ingest() { # ingest KEY ID -> the answer
  curl -fsS -H "X-API-Key: $1" -X POST "$base/v1/events/batch" \
    -d "{\"events\":[{\"id\":\"$2\",\"appId\":\"vmtest\",\"deviceId\":\"d-1\",\"screenView\":{\"screenName\":\"Home\"}}]}"
}
after() {
  case $1 in
    *"install -m 0600 deploy/causality.env.example /etc/causality/causality.env"*)
      [ "$(stat -c '%a %U' /etc/causality/causality.env)" = "600 root" ] || fail "the settings file is not root's, mode 0600"
      echo "CAUSALITY_LOG_FORMAT=json" >>/etc/causality/causality.env
      check "added CAUSALITY_LOG_FORMAT=json to /etc/causality/causality.env (the service must pick it up)"
      done_checks+="settings " ;;
    *"--check-config"*) done_checks+="check-config " ;;
    *"grep 'Admin password'"*) after_start; done_checks+="running " ;;
    *"systemctl restart causality"*) restarted=1 ;;
    *"until curl -fs localhost:8080/readyz"*)
      if [ "${restarted:-0}" = 1 ]; then after_upgrade; restarted=0; done_checks+="upgraded "; fi ;;
    *"userdel causality"*) after_uninstall; done_checks+="uninstalled " ;;
  esac
}
after_start() {
  local pid
  pid=$(cat "$VM_STATE/causality.pid")
  [ "$(ps -o user= -p "$pid")" = causality ] || fail "causality runs as $(ps -o user= -p "$pid"), not causality"
  local pg
  pg=$(pgrep -f 'bin/postgres -D' | head -n1)
  [ -n "$pg" ] && [ "$(ps -o user= -p "$pg")" = causality ] || fail "PostgreSQL does not run as user causality"
  check "causality (pid $pid) and its PostgreSQL (pid $pg) run as user causality"
  grep -q '^NoNewPrivs:[[:space:]]*1' "/proc/$pid/status" || fail "NoNewPrivileges= not in effect"
  nsenter --target "$pid" --mount -- setpriv --reuid=causality --regid=causality --init-groups sh -c \
    'touch /var/lib/causality/.w && rm /var/lib/causality/.w && ! touch /etc/.w 2>/dev/null && ! touch /usr/local/bin/.w 2>/dev/null' ||
    fail "the service's sandbox is not as the unit says"
  check "it runs sandboxed: no new privileges, and it can write to /var/lib/causality but not to /etc or /usr/local"
  grep -q '^{"time":' <(journal) || fail "no JSON log lines: the settings file was not read"
  check "the logs are JSON: the service read /etc/causality/causality.env"
  local foreign
  foreign=$(find /var/lib/causality ! -user causality | head -n3)
  [ -z "$foreign" ] || fail "not owned by causality: $foreign"
  check "everything in /var/lib/causality belongs to causality"
  password=$(journal | sed -n 's/.*Admin password (generated, shown only this once): \([^ ]*\).*/\1/p')
  [ -n "$password" ] || fail "no generated admin password in the journal"
  key=$(curl -fsS -u "admin:$password" -X POST "$base/api/v1/admin/keys" -d '{"app_id":"vmtest","name":"vm-install-test"}' |
    grep -o '"key":"[^"]*"' | cut -d'"' -f4)
  [ -n "$key" ] || fail "no API key"
  ingest "$key" vm-event-1 | grep -q '"acceptedCount":1' || fail "the first event was not accepted"
  check "an API key from the admin API, and an event accepted with it"
}
after_upgrade() {
  local files
  files=$(find /var/lib/causality/warehouse/events/app_id=vmtest -name '*.parquet' 2>/dev/null)
  [ -n "$files" ] || fail "the first event is not in Parquet after the restart"
  check "the first event was written to Parquet when the old binary stopped: ${files#/var/lib/causality/}"
  ingest "$key" vm-event-2 | grep -q '"acceptedCount":1' || fail "the key does not work after the upgrade"
  check "the key still works after the upgrade"
  ls /var/backups/causality/before-*.zip >/dev/null || fail "no backup in /var/backups/causality"
  check "the backup was written: $(ls /var/backups/causality)"
}
after_uninstall() {
  ! getent passwd causality >/dev/null || fail "user causality is still there"
  ! getent group causality >/dev/null || fail "group causality is still there"
  local p
  for p in /usr/local/bin/causality /etc/causality /var/lib/causality /etc/systemd/system/causality.service \
    /etc/systemd/system/multi-user.target.wants/causality.service; do
    [ ! -e "$p" ] && [ ! -L "$p" ] || fail "$p is still there"
  done
  [ -z "$(find /usr/local -type f)" ] || fail "files left in /usr/local: $(find /usr/local -type f)"
  [ -z "$(pgrep -f '/usr/local/bin/causality|bin/postgres' || true)" ] || fail "processes left: $(pgrep -af '/usr/local/bin/causality|bin/postgres')"
  check "no binary, unit, settings, data, user or process is left"
}
finish() {
  local c
  for c in settings check-config running upgraded uninstalled; do
    case $done_checks in *" $c "*) ;; *) fail "the README section lost a step: the '$c' check never ran" ;; esac
  done
  echo
  [ ! -e "$VM_STATE/firewall.log" ] || echo "firewall lines (recorded, not run): $(tr '\n' ';' <"$VM_STATE/firewall.log")"
  echo "service stops: $(tr '\n' ';' <"$VM_STATE/stops")"
}
EOF

  echo "vm-install-test: README 'Run on a VM' ($(wc -l <"$work/lines") lines) against $base, in $work"
  t0=$(date +%s)
  unshare --mount --net --pid --fork --mount-proc --propagation private \
    env VM_INSTALL_INNER=1 VM_WORK="$work" VM_VERSION="$version" bash "$0"
  keep=0
  echo "vm-install-test: OK in $(($(date +%s) - t0)) s"
  exit 0
fi

# ---- inside the namespaces: PID 1 of a PID namespace, loopback only ------------------------
work=$VM_WORK
ip link set lo up
mount --bind "$work/root/etc" /etc
mount --bind "$work/root/usr/local" /usr/local
mount --bind "$work/root/var/lib" /var/lib
mount --bind "$work/root/var/backups" /var/backups
cd "$work/home"
exec env -i HOME="$work/home" TMPDIR="$work/tmp" LANG=C.UTF-8 TERM=dumb \
  PATH="$work/shim:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  VM_WORK="$work" VM_STATE="$work/state" VM_RELEASE="$work/release" VM_VERSION="$VM_VERSION" \
  bash "$work/steps.sh"
