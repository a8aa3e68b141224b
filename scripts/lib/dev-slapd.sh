# A throw-away OpenLDAP slapd for the demo and the benchmarks (sourced, not run).
#
#   dev_slapd_start DIR LDIF...   start slapd with the LDIF files loaded, in DIR, on a free
#                                 loopback port; sets DEV_SLAPD_URL and DEV_SLAPD_PID
#   dev_slapd_stop                stop it (only the process this script started)
#
# Base dc=example,dc=org; the service account cn=latchkey,ou=services,dc=example,dc=org
# (password service-password-1) can read everything, anonymous searches cannot see ou=staff.
# The integration tests' harness (tests/support/slapd.rs) sets up the same directory.

DEV_SLAPD_URL=""
DEV_SLAPD_PID=""

_dev_slapd_free_port() {
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

dev_slapd_start() {
  local dir=$1; shift
  mkdir -p "$dir/db"
  cat > "$dir/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile "$dir/slapd.pid"
argsfile "$dir/slapd.args"
modulepath /usr/lib/ldap
moduleload back_mdb
sizelimit unlimited
loglevel 0

database mdb
maxsize 268435456
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw admin-password-1
directory "$dir/db"
index objectClass,uid,mail eq

access to attrs=userPassword
    by anonymous auth
    by * none
access to dn.subtree="ou=staff,dc=example,dc=org"
    by dn.exact="cn=latchkey,ou=services,dc=example,dc=org" read
    by self read
    by anonymous auth
    by * none
access to *
    by * read
CONF
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
    port=$(_dev_slapd_free_port) || return 1
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

dev_slapd_stop() {
  if [ -n "$DEV_SLAPD_PID" ]; then
    kill "$DEV_SLAPD_PID" 2>/dev/null || true
    wait "$DEV_SLAPD_PID" 2>/dev/null || true
    DEV_SLAPD_PID=""
  fi
}
