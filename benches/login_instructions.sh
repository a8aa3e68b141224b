#!/usr/bin/env bash
# Instructions per login, counted by callgrind: the same binary and inputs give the same count
# whatever else the machine is doing, so two builds can be compared on a busy machine.
#
#   benches/login_instructions.sh [BINARY ...]
#
# BINARY defaults to target/release/latchkey (built first). For each binary and each case, it
# serves benches/bench.toml with one worker under callgrind against a throw-away slapd holding
# the test fixtures, sends logins one after the other with curl, and counts the whole process's
# instructions twice (after 20 logins, then after 120); the difference divided by 100 is the
# cost of one login, start-up and shutdown cancelled out. The cases:
#   cold   a token for alice, user cache off (a service-account search, a bind, group search off)
#   warm   the same with the user cache on and warm (one bind)
#   wrong  a wrong password for alice (search, refused bind; brute-force counting on, with
#          limits too high to ban and no minimum failure time)
#   refresh  POST /auth/refresh with a token of alice's (taken from request-token once, in
#          both counts, so it cancels out): a service-account search, no bind, a new token
# CASES="cold refresh" measures only those cases (default: all four).
# Everything runs on loopback. Needs valgrind and curl.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v valgrind >/dev/null || { echo "login_instructions.sh: needs valgrind" >&2; exit 2; }
if [ $# -eq 0 ]; then
  cargo build --release --quiet --bin latchkey
  set -- target/release/latchkey
fi
scripts/install-test-deps
. scripts/lib/dev-slapd.sh

work=$(mktemp -d -t latchkey-instructions.XXXXXX)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  dev_slapd_stop
  rm -rf "$work"
}
trap cleanup EXIT
dev_slapd_start "$work/slapd" tests/fixtures/directory.ldif

# The total instructions of BINARY serving CASE while it answers COUNT logins.
count_instructions() {
  local binary=$1 case=$2 count=$3 port out ttl=0s password=alice-password-1 want=200
  port=$(free_loopback_port)
  out="$work/callgrind.$case.$count"
  [ "$case" = warm ] && ttl=60s
  [ "$case" = wrong ] && password=wrong-password && want=401
  LATCHKEY__SERVER__LISTEN="127.0.0.1:$port" LATCHKEY__SERVER__WORKERS=1 \
    LATCHKEY__DIRECTORY__URLS="$DEV_SLAPD_URL" \
    LATCHKEY__DIRECTORY__CACHE__TTL=$ttl \
    LATCHKEY__BRUTE_FORCE__MIN_FAILURE_TIME=0s \
    LATCHKEY__BRUTE_FORCE__MAX_FAILURES_PER_LOGIN=1000000 \
    LATCHKEY__BRUTE_FORCE__MAX_FAILURES_PER_ADDRESS=1000000 \
    LATCHKEY__TOKENS__KEYS__BENCH__SECRET="instruction-count-secret-0123456789abcdef" \
    valgrind --tool=callgrind --callgrind-out-file="$out" "$binary" \
    --config benches/bench.toml serve 2>"$work/serve.log" &
  server=$!
  for _ in $(seq 1 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$server" 2>/dev/null || { cat "$work/serve.log" >&2; return 1; }
    sleep 0.1
  done
  local i status token=""
  if [ "$case" = refresh ]; then
    token=$(curl -s -u "alice:$password" -X POST "http://127.0.0.1:$port/auth/request-token" |
      sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
    [ -n "$token" ] || { echo "no token for the refresh case" >&2; return 1; }
  fi
  for i in $(seq 1 "$count"); do
    if [ "$case" = refresh ]; then
      status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" -X POST \
        "http://127.0.0.1:$port/auth/refresh")
    else
      status=$(curl -s -o /dev/null -w '%{http_code}' -u "alice:$password" -X POST \
        "http://127.0.0.1:$port/auth/request-token")
    fi
    [ "$status" = "$want" ] || { echo "request $i answered $status, not $want" >&2; return 1; }
  done
  kill "$server"
  wait "$server" 2>/dev/null || true
  server=""
  sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$out"
}

cases=${CASES:-cold warm wrong refresh}
printf '%-40s' binary
for case in $cases; do printf ' %10s' "$case"; done
echo
for binary in "$@"; do
  row=$(printf '%-40s' "$binary")
  for case in $cases; do
    few=$(count_instructions "$binary" "$case" 20)
    many=$(count_instructions "$binary" "$case" 120)
    row="$row $(printf '%10d' $(( (many - few) / 100 )))"
  done
  echo "$row"
done
