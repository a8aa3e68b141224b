#!/usr/bin/env bash
# Soak: many connections for a long time, then a directory outage under load.
#
#   benches/soak.sh [--seconds S] [--connections C] [--users N]
#
# On loopback, against the release build (benches/bench.toml, cache off) and a throw-away slapd
# with N users (default 1000):
#   1. wrk with C connections (default 1000) for S seconds (default 60) on POST
#      /auth/request-token (a different user each request), then the same on GET /auth/verify;
#      reports requests/s, non-2xx answers and socket errors, and Latchkey's RSS before,
#      between and after.
#   2. wrk again on request-token for S seconds; at S/3 slapd is stopped (by its PID), at S/2
#      started again on the same port. A prober logs in once every 50 ms meanwhile. Reports the
#      503s wrk saw (they must carry Retry-After, checked by the prober), any other non-2xx, and
#      the seconds from slapd listening again to the prober's first 200 (goal: at most 5).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60 connections=1000 users=1000
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --users) users=$2; shift 2 ;;
    *) echo "soak.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

scripts/install-test-deps
. scripts/lib/latchkey.sh
ensure_wrk
command -v curl >/dev/null || { echo "soak.sh: curl is needed for the prober" >&2; exit 1; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "soak.sh: building the release binary..." >&2
cargo build --release --quiet --bin latchkey

. scripts/lib/dev-slapd.sh
. scripts/lib/bench.sh
work=$(mktemp -d -t latchkey-soak.XXXXXX)
prober_pid=""
cleanup() {
  [ -n "$prober_pid" ] && kill "$prober_pid" 2>/dev/null || true
  latchkey_stop
  dev_slapd_stop
  rm -rf "$work"
}
trap cleanup EXIT

bench_users_ldif "$users" > "$work/users.ldif"
{
  bench_login_lua "$users"
  cat <<'LUA'
local threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function()
  format_requests()
  s503 = 0
end
response = function(status) if status == 503 then s503 = s503 + 1 end end
done = function(summary, latency)
  local n503 = 0
  for _, t in ipairs(threads) do n503 = n503 + (t:get("s503") or 0) end
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT rps=%.0f p99_ms=%.1f requests=%d non2xx=%d s503=%d socket_errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(99) / 1000,
    summary.requests, summary.errors.status, n503, errors))
end
LUA
} > "$work/login.lua"

dev_slapd_start "$work/slapd" tests/fixtures/directory.ldif "$work/users.ldif"
bench_env "$DEV_SLAPD_URL"
latchkey_serve target/release/latchkey "$work/latchkey.log" benches/bench.toml
base="http://127.0.0.1:$port"
rss() { awk '/VmRSS/ {print $2}' "/proc/$LATCHKEY_PID/status"; }
rss_start=$(rss)

token=$(curl -s -u bench1:password-1 -X POST "$base/auth/request-token" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
[ -n "$token" ] || { echo "soak.sh: no token from request-token" >&2; exit 1; }
cat > "$work/verify.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
done = function(summary, latency)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT rps=%.0f p99_ms=%.1f requests=%d non2xx=%d socket_errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(99) / 1000,
    summary.requests, summary.errors.status, errors))
end
LUA

# 1. Steady load.
login=$(wrk -t2 -c"$connections" -d"${seconds}s" --timeout 10s -s "$work/login.lua" "$base" | grep '^RESULT')
rss_between=$(rss)
verify=$(wrk -t2 -c"$connections" -d"${seconds}s" --timeout 10s -s "$work/verify.lua" "$base/auth/verify" | grep '^RESULT')
rss_end=$(rss)

# 2. An outage under load.
: > "$work/probe.log"
(
  while :; do
    printf '%s %s\n' "$(date +%s.%N)" \
      "$(curl -s -o /dev/null -w '%{http_code}:%header{retry-after}' -u bench1:password-1 -X POST "$base/auth/request-token")" \
      >> "$work/probe.log"
    sleep 0.05
  done
) &
prober_pid=$!
wrk -t2 -c"$connections" -d"${seconds}s" --timeout 10s -s "$work/login.lua" "$base" > "$work/outage.txt" &
wrk_pid=$!
sleep "$(( seconds / 3 ))"
dev_slapd_stop
stopped_at=$(date +%s.%N)
sleep "$(( seconds / 2 - seconds / 3 ))"
dev_slapd_restart
back_at=$(date +%s.%N)
wait "$wrk_pid"
kill "$prober_pid" 2>/dev/null || true
wait "$prober_pid" 2>/dev/null || true
prober_pid=""
outage=$(grep '^RESULT' "$work/outage.txt")
first_ok=$(awk -v t="$back_at" '$1 > t && $2 ~ /^200:/ { print $1; exit }' "$work/probe.log")
bad_503=$(awk -v a="$stopped_at" -v b="$back_at" '$1 > a && $1 < b && $2 ~ /^503:/ && $2 !~ /^503:5$/' "$work/probe.log" | wc -l)
probe_503=$(awk '$2 ~ /^503:/' "$work/probe.log" | wc -l)
other=$(awk '$2 !~ /^(200|503):/' "$work/probe.log" | wc -l)

echo "soak: $connections connections, $seconds s per run, $users users"
echo "request-token: $login"
echo "verify:        $verify"
echo "latchkey RSS: ${rss_start} kB at start, ${rss_between} kB after request-token, ${rss_end} kB after verify"
echo "outage run:    $outage"
echo "prober: ${probe_503} answers 503 (${bad_503} of them without Retry-After: 5), ${other} other non-200"
if [ -n "$first_ok" ]; then
  echo "seconds from slapd listening again to the first 200: $(awk -v a="$back_at" -v b="$first_ok" 'BEGIN { printf "%.2f", b - a }') (goal: at most 5)"
else
  echo "no 200 after slapd came back"
fi
