#!/usr/bin/env bash
# A single-node Ceph (one mon, one memstore OSD, no mgr, cephx) and radosgw on loopback, for the end-to-end suite
# against a real S3 implementation (Ceph RGW, Debian's Pacific packages).
#
#   scripts/ceph-rgw.sh start    install the packages if missing, bring the cluster up, wait until RGW answers a
#                                signed S3 request (a no-op when it is already up)
#   scripts/ceph-rgw.sh stop     stop the daemons this script started (by their pidfiles; nothing else)
#   scripts/ceph-rgw.sh status   exit 0 when RGW is up and answers, 1 otherwise
#   scripts/ceph-rgw.sh env      print the variables that point the tests at it (eval "$(scripts/ceph-rgw.sh env)")
#
# Settings (environment): ARCHIVER_RGW_DIR (state, default /tmp/envoy-archiver-rgw), ARCHIVER_RGW_PORT (7480),
# ARCHIVER_RGW_MON_PORT (3300), ARCHIVER_RGW_ACCESS_KEY (archiver), ARCHIVER_RGW_SECRET_KEY (archiver-secret),
# ARCHIVER_RGW_WAIT (seconds to wait for RGW, 180). The OSD keeps objects in memory: stopping loses them.
set -eEuo pipefail

DIR=${ARCHIVER_RGW_DIR:-/tmp/envoy-archiver-rgw}
HOST=127.0.0.1
PORT=${ARCHIVER_RGW_PORT:-7480}
MON_PORT=${ARCHIVER_RGW_MON_PORT:-3300}
ACCESS_KEY=${ARCHIVER_RGW_ACCESS_KEY:-archiver}
SECRET_KEY=${ARCHIVER_RGW_SECRET_KEY:-archiver-secret}
REGION=us-east-1
WAIT=${ARCHIVER_RGW_WAIT:-180}
CONF=$DIR/ceph.conf
ENDPOINT=http://$HOST:$PORT
DAEMONS=(mon.a osd.0 client.rgw.a)
PACKAGES=(ceph-mon ceph-osd radosgw ceph-common)
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

log() { echo "ceph-rgw: $*" >&2; }

ceph_cli() { timeout 60 ceph -c "$CONF" --connect-timeout 30 "$@" 2>>"$DIR/log/start.log"; }

pidfile() { echo "$DIR/run/$1.pid"; }

# The pid in a daemon's pidfile, if that process is alive and was started with this script's ceph.conf.
daemon_pid() {
  local f pid
  f=$(pidfile "$1")
  [[ -s $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$CONF" || return 1
  echo "$pid"
}

all_running() {
  local d
  for d in "${DAEMONS[@]}"; do daemon_pid "$d" >/dev/null || return 1; done
}

# A signed S3 request (ListBuckets) with the test user's keys: proves RGW is serving, the user exists and SigV4
# is checked (a wrong secret must be refused).
s3_status() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 --aws-sigv4 "aws:amz:$REGION:s3" --user "$1" \
    -H "x-amz-content-sha256: $EMPTY_SHA256" "$ENDPOINT/"
}
s3_answers() {
  [[ $(s3_status "$ACCESS_KEY:$SECRET_KEY") == 200 && $(s3_status "$ACCESS_KEY:wrong-$SECRET_KEY") == 403 ]]
}

is_up() { all_running && s3_answers; }

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing ${missing[*]}"
  local sudo=()
  ((EUID == 0)) || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
}

stop_daemons() {
  local d pid i
  for d in client.rgw.a osd.0 mon.a; do
    pid=$(daemon_pid "$d") || continue
    log "stopping $d (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    rm -f "$(pidfile "$d")"
  done
}

write_conf() {
  local fsid=$1
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon host = v2:$HOST:$MON_PORT
public addr = $HOST
cluster addr = $HOST
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $DIR/admin.keyring
run dir = $DIR/run
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
osd objectstore = memstore
memstore device bytes = 4294967296
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
mon data avail crit = 1
mon data avail warn = 2

[mon.a]
mon data = $DIR/mon

[osd.0]
osd data = $DIR/osd
keyring = $DIR/osd/keyring

[client.rgw.a]
keyring = $DIR/rgw.keyring
rgw data = $DIR/rgw
rgw frontends = beast endpoint=$HOST:$PORT
rgw gc obj min wait = 60
rgw gc processor period = 60
EOF
}

create_cluster() {
  local fsid osd_uuid osd_key
  rm -rf "$DIR/mon" "$DIR/osd" "$DIR/rgw" "$DIR/run" "$DIR"/*.keyring "$DIR/monmap" "$CONF"
  mkdir -p "$DIR/run" "$DIR/log" "$DIR/rgw"
  : >"$DIR/log/start.log"
  fsid=$(uuidgen)
  write_conf "$fsid"

  log "creating mon.a"
  ceph-authtool "$DIR/mon.keyring" --create-keyring --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$DIR/admin.keyring" --create-keyring --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$DIR/mon.keyring" --import-keyring "$DIR/admin.keyring" >/dev/null
  monmaptool -c "$CONF" --create --clobber --fsid "$fsid" --addv a "[v2:$HOST:$MON_PORT]" "$DIR/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/mon.keyring" >>"$DIR/log/start.log" 2>&1
  ceph-mon -c "$CONF" -i a </dev/null >>"$DIR/log/start.log" 2>&1

  log "creating osd.0 (memstore)"
  osd_uuid=$(uuidgen)
  osd_key=$(ceph-authtool --gen-print-key)
  # The OSD id must exist in the map before mkfs, and memstore needs its data directory to exist.
  echo "{\"cephx_secret\": \"$osd_key\"}" | ceph_cli osd new "$osd_uuid" 0 -i - >/dev/null
  mkdir -p "$DIR/osd"
  ceph-authtool "$DIR/osd/keyring" --create-keyring --name osd.0 --add-key "$osd_key" >/dev/null
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$DIR/log/start.log" 2>&1
  ceph-osd -c "$CONF" -i 0 </dev/null >>"$DIR/log/start.log" 2>&1

  log "creating client.rgw.a and the S3 user $ACCESS_KEY"
  ceph_cli auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' -o "$DIR/rgw.keyring"
  radosgw -c "$CONF" -n client.rgw.a </dev/null >>"$DIR/log/start.log" 2>&1
}

create_user() {
  local i
  # radosgw-admin needs the pools RGW creates on its first start; retry until they exist.
  for ((i = 0; i < 30; i++)); do
    if timeout 60 radosgw-admin -c "$CONF" user info --uid "$ACCESS_KEY" >/dev/null 2>&1; then return 0; fi
    if timeout 60 radosgw-admin -c "$CONF" user create --uid "$ACCESS_KEY" --display-name "envoy-archiver tests" \
      --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" >>"$DIR/log/start.log" 2>&1; then return 0; fi
    sleep 2
  done
  return 1
}

# Says why, shows the tail of every log, and stops what this start brought up.
fail_with_logs() {
  local f
  trap - ERR
  log "$1"
  for f in "$DIR/log/start.log" "$DIR"/log/mon.a.log "$DIR"/log/osd.0.log "$DIR"/log/client.rgw.a.log; do
    [[ -s $f ]] || continue
    echo "---- tail of $f" >&2
    tail -n 25 "$f" >&2
  done
  stop_daemons
  exit 1
}

start() {
  if is_up; then
    log "already up at $ENDPOINT"
    return 0
  fi
  install_packages
  # Memstore keeps nothing across an OSD restart: a half-running cluster is rebuilt from nothing.
  stop_daemons
  local t0=$SECONDS deadline
  trap 'fail_with_logs "could not create the cluster (line $LINENO)"' ERR
  create_cluster
  trap - ERR
  deadline=$((SECONDS + WAIT))
  create_user || fail_with_logs "could not create the S3 user"
  until s3_answers; do
    all_running || fail_with_logs "a daemon exited during start"
    ((SECONDS < deadline)) || fail_with_logs "RGW did not answer a signed S3 request at $ENDPOINT within ${WAIT}s"
    sleep 1
  done
  log "up at $ENDPOINT in $((SECONDS - t0))s (state in $DIR)"
}

print_env() {
  cat <<EOF
export ARCHIVER_TEST_S3=rgw
export ARCHIVER_TEST_S3_ENDPOINT=$ENDPOINT
EOF
}

case "${1:-}" in
start) start ;;
stop) stop_daemons ;;
status)
  if is_up; then
    echo "up at $ENDPOINT"
  else
    echo "down"
    exit 1
  fi
  ;;
env) print_env ;;
*)
  echo "usage: $0 start|stop|status|env" >&2
  exit 2
  ;;
esac
