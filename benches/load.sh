#!/usr/bin/env bash
# Load benchmark for POST /auth/request-token, beside its LDAP ceiling, in one run.
#
#   benches/load.sh [--users N] [--seconds S] [--connections C]
#
# Starts a throw-away slapd on loopback with N users (default 1000), serves the release build
# of Latchkey against it (benches/bench.toml), and runs wrk (-t2, C connections, default 8,
# S seconds, default 10) logging in as a different user on each request: first with the user
# cache off (service-account search + bind), then again with it on and warm (one bind).
# Then runs the ceiling probe (benches/ldap_ceiling.rs) for each: the same LDAP work over pooled
# connections straight with ldap3, with C connections of each kind, no HTTP, no token.
# Prints requests/s, latency p50/p99, the ratios to the ceilings, and Latchkey's peak RSS.
# Everything runs on this machine; only loopback is used.
set -euo pipefail
cd "$(dirname "$0")/.."

users=1000 seconds=10 connections=8
while [ $# -gt 0 ]; do
  case "$1" in
    --users) users=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    *) echo "load.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

scripts/install-test-deps
. scripts/lib/latchkey.sh
ensure_wrk

echo "load.sh: building release binaries..." >&2
cargo build --release --quiet --bin latchkey
cargo bench --quiet --bench ldap_ceiling --no-run 2>/dev/null

. scripts/lib/dev-slapd.sh
. scripts/lib/bench.sh
work=$(mktemp -d -t latchkey-bench.XXXXXX)
cleanup() {
  latchkey_stop
  dev_slapd_stop
  rm -rf "$work"
}
trap cleanup EXIT

# N users bench1..benchN with passwords password-1..password-N, and the wrk script's headers.
bench_users_ldif "$users" > "$work/users.ldif"
{
  bench_users_lua_headers "$users"
  cat <<'LUA'
-- Each request is formatted once, so the load generator spends its CPU on sending.
local requests, i = {}, 0
init = function()
  for n, value in ipairs(headers) do
    requests[n] = wrk.format("POST", "/auth/request-token", { ["Authorization"] = value })
  end
end
request = function()
  i = i % #requests + 1
  return requests[i]
end
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT rps=%.0f p50_ms=%.2f p99_ms=%.2f requests=%d non2xx=%d socket_errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.requests, summary.errors.status, errors))
end
LUA
} > "$work/login.lua"

dev_slapd_start "$work/slapd" tests/fixtures/directory.ldif "$work/users.ldif"
bench_env "$DEV_SLAPD_URL"
export LATCHKEY__SERVER__WORKERS=${WORKERS:-0}
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # user + system, in clock ticks
hz=$(getconf CLK_TCK)
secs() { awk -v t="$1" -v h="$hz" 'BEGIN{printf "%.1f", t/h}'; }

# One measured wrk run against a fresh Latchkey (after a warm-up that also fills the cache,
# when it is on). Sets RESULT, RSS_START, RSS_PEAK, LK_CPU, SL_CPU.
measure() {
  latchkey_serve target/release/latchkey "$work/latchkey.log" benches/bench.toml
  RSS_START=$(awk '/VmRSS/ {print $2}' "/proc/$LATCHKEY_PID/status")
  wrk -t2 -c"$connections" -d2s -s "$work/login.lua" "http://127.0.0.1:$port" >/dev/null
  local lk0 sl0
  lk0=$(cpu "$LATCHKEY_PID"); sl0=$(cpu "$DEV_SLAPD_PID")
  RESULT=$(wrk -t2 -c"$connections" -d"${seconds}s" -s "$work/login.lua" "http://127.0.0.1:$port" | grep '^RESULT')
  LK_CPU=$(( $(cpu "$LATCHKEY_PID") - lk0 )); SL_CPU=$(( $(cpu "$DEV_SLAPD_PID") - sl0 ))
  RSS_PEAK=$(awk '/VmHWM/ {print $2}' "/proc/$LATCHKEY_PID/status")
  latchkey_stop
}
rps_of() { sed -E 's/.*rps=([0-9]+).*/\1/' <<<"$1"; }
ceiling_of() { sed -E 's/.* = ([0-9]+)\/s.*/\1/' <<<"$1"; }

# 1. Every login a first login: search + bind.
export LATCHKEY__DIRECTORY__CACHE__TTL=0s
measure
service=$RESULT rss_start=$RSS_START rss_peak=$RSS_PEAK lk_cpu=$LK_CPU sl_cpu=$SL_CPU
# 2. Repeat logins with the user cache warm (the warm-up logs every user in): one bind each.
export LATCHKEY__DIRECTORY__CACHE__TTL=600s
measure
cached=$RESULT cached_rss_peak=$RSS_PEAK cached_lk_cpu=$LK_CPU cached_sl_cpu=$SL_CPU

sl0=$(cpu "$DEV_SLAPD_PID")
ceiling=$(cargo bench --quiet --bench ldap_ceiling -- --url "$DEV_SLAPD_URL" --users "$users" \
  --concurrency "$connections" --seconds "$seconds" | grep '^ceiling')
sl_cpu_ceiling=$(( $(cpu "$DEV_SLAPD_PID") - sl0 ))
bind_ceiling=$(cargo bench --quiet --bench ldap_ceiling -- --url "$DEV_SLAPD_URL" --users "$users" \
  --concurrency "$connections" --seconds "$seconds" --bind-only | grep '^ceiling')

rps=$(rps_of "$service"); cached_rps=$(rps_of "$cached")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "request-token, first logins: $service"
echo "  $ceiling"
echo "  ratio to ceiling: $(ratio "$rps" "$(ceiling_of "$ceiling")")"
echo "  ratio to flask-ldap-auth 0.3 (1,576 req/s): $(awk -v a="$rps" 'BEGIN { printf "%.1f", a / 1576 }')x"
echo "  CPU seconds: latchkey $(secs "$lk_cpu"), slapd $(secs "$sl_cpu"); during the ceiling: slapd $(secs "$sl_cpu_ceiling") (of $((2 * seconds)) on 2 cores)"
echo "  latchkey RSS: ${rss_start} kB at start, ${rss_peak} kB peak"
echo "request-token, repeat logins (cache warm): $cached"
echo "  $bind_ceiling"
echo "  ratio to the bind ceiling: $(ratio "$cached_rps" "$(ceiling_of "$bind_ceiling")")"
echo "  ratio to first logins: $(ratio "$cached_rps" "$rps")"
echo "  ratio to flask-ldap-auth 0.3 (1,576 req/s): $(awk -v a="$cached_rps" 'BEGIN { printf "%.1f", a / 1576 }')x (target 10x)"
echo "  CPU seconds: latchkey $(secs "$cached_lk_cpu"), slapd $(secs "$cached_sl_cpu")"
echo "  latchkey RSS peak: ${cached_rss_peak} kB"
