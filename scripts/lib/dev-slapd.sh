# A throw-away OpenLDAP slapd for the demo and the benchmarks (sourced, not run).
#
#   dev_slapd_start DIR LDIF...   start slapd with the LDIF files loaded offline (slapadd), in
#                                 DIR, on a free loopback port; sets DEV_SLAPD_URL and
#                                 DEV_SLAPD_PID
#   dev_slapd_add LDIF...         apply LDIF files online as the rootdn (ldapadd; records may
#                                 carry a changetype), e.g. tests/fixtures/groups.ldif, so that
#                                 overlays such as memberof see the changes
#   dev_slapd_stop                stop it (only the process this script started)
#   dev_slapd_restart             start the stopped slapd again on its old port
#   free_loopback_port            print a loopback TCP port nothing listens on
#
# The configuration is tests/fixtures/slapd.conf.in, the template the integration tests'
# harness (tests/support/slapd.rs) renders too. Base dc=example,dc=org; rootdn
# cn=admin,dc=example,dc=org (password admin-password-1); the service account
# cn=latchkey,ou=services,dc=example,dc=org (password service-password-1) can read everything,
# anonymous searches cannot see ou=staff; plain searches stop at 20 entries, paged ones do not.

DEV_SLAPD_URL=""
DEV_SLAPD_PID=""
DEV_SLAPD_DIR=""
_DEV_SLAPD_TEMPLATE="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/tests/fixtures/slapd.conf.in"
_DEV_SLAPD_ROOTDN="cn=admin,dc=example,dc=org"
_DEV_SLAPD_ROOTPW="admin-password-1"
# mdb address space reserved for the database (256 MiB: room for the benchmark's users).
_DEV_SLAPD_MAXSIZE=268435456

free_loopback_port() {
  local port
  for _ in $(seq 1 200); do
    port=$(( 20000 + RANDOM % 40000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "dev-slapd: no free loopback port found" >&2
  return 1
}

# Escape a value for the replacement side of a sed s|...|...| command.
_dev_slapd_sed_escape() {
  printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'
}

# Write the slapd.conf for instance directory $1 to stdout.
_dev_slapd_render() {
  local dir db
  dir=$(_dev_slapd_sed_escape "$1")
  db=$(_dev_slapd_sed_escape "$1/db")
  [ -f "$_DEV_SLAPD_TEMPLATE" ] || {
    echo "dev-slapd: slapd configuration template $_DEV_SLAPD_TEMPLATE is missing" >&2
    return 1
  }
  sed -e "s|@DIR@|$dir|g" -e "s|@DB@|$db|g" -e "s|@MAXSIZE@|$_DEV_SLAPD_MAXSIZE|g" \
    "$_DEV_SLAPD_TEMPLATE"
}

dev_slapd_start() {
  local dir=$1; shift
  mkdir -p "$dir/db"
  dir=$(cd "$dir" && pwd)   # slapd.conf needs absolute paths
  DEV_SLAPD_DIR=$dir
  _dev_slapd_render "$dir" > "$dir/slapd.conf" || return 1
  local ldif
  for ldif in "$@"; do
    /usr/sbin/slapadd -q -f "$dir/slapd.conf" -l "$ldif" >"$dir/slapadd.log" 2>&1 || {
      cat "$dir/slapadd.log" >&2
      echo "dev-slapd: loading $ldif failed" >&2
      return 1
    }
  done
  local port attempt
  for attempt in 1 2 3 4 5; do
    port=$(free_loopback_port) || return 1
    /usr/sbin/slapd -f "$dir/slapd.conf" -h "ldap://127.0.0.1:$port/" -d 0 >"$dir/slapd.log" 2>&1 &
    DEV_SLAPD_PID=$!
    for _ in $(seq 1 250); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        DEV_SLAPD_URL="ldap://127.0.0.1:$port"
        return 0
      fi
      kill -0 "$DEV_SLAPD_PID" 2>/dev/null || break
      sleep 0.02
    done
    dev_slapd_stop
  done
  cat "$dir/slapd.log" >&2
  echo "dev-slapd: slapd did not start" >&2
  return 1
}

dev_slapd_add() {
  [ -n "$DEV_SLAPD_URL" ] || { echo "dev-slapd: dev_slapd_add before dev_slapd_start" >&2; return 1; }
  local ldif
  for ldif in "$@"; do
    ldapadd -x -H "$DEV_SLAPD_URL" -D "$_DEV_SLAPD_ROOTDN" -w "$_DEV_SLAPD_ROOTPW" -f "$ldif" \
      >"$DEV_SLAPD_DIR/ldapadd.log" 2>&1 || {
      cat "$DEV_SLAPD_DIR/ldapadd.log" >&2
      echo "dev-slapd: adding $ldif online failed" >&2
      return 1
    }
  done
}

# Start the stopped slapd again on its old port (same data); waits until it listens.
dev_slapd_restart() {
  [ -n "$DEV_SLAPD_URL" ] && [ -z "$DEV_SLAPD_PID" ] || {
    echo "dev-slapd: dev_slapd_restart needs a started, then stopped, slapd" >&2
    return 1
  }
  local port=${DEV_SLAPD_URL##*:}
  for _ in $(seq 1 150); do
    /usr/sbin/slapd -f "$DEV_SLAPD_DIR/slapd.conf" -h "ldap://127.0.0.1:$port/" -d 0 \
      >>"$DEV_SLAPD_DIR/slapd.log" 2>&1 &
    DEV_SLAPD_PID=$!
    for _ in $(seq 1 50); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        return 0
      fi
      kill -0 "$DEV_SLAPD_PID" 2>/dev/null || break
      sleep 0.02
    done
    # The old port may not be free yet: try again.
    dev_slapd_stop
    sleep 0.02
  done
  echo "dev-slapd: slapd did not restart on port $port" >&2
  return 1
}

dev_slapd_stop() {
  if [ -n "$DEV_SLAPD_PID" ]; then
    kill "$DEV_SLAPD_PID" 2>/dev/null || true
    wait "$DEV_SLAPD_PID" 2>/dev/null || true
    DEV_SLAPD_PID=""
  fi
}
