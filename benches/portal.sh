#!/usr/bin/env bash
# Load benchmark for the sign-in page and the browser side of forward-auth, each beside the
# route it must keep up with, in one run:
#
#   benches/portal.sh [--users N] [--seconds S] [--pairs N]
#
#   form    POST /auth/login (a form sign-in: CSRF check, the login, the session cookie, 303)
#           beside POST /auth/request-token, each logging in as a different user per request
#           (user cache off: a service-account search and a bind), 8 connections;
#   cookie  GET /auth/verify with a session cookie beside GET /healthz, 64 connections;
#   browser GET /auth/verify with no token from a browser behind a trusted proxy (the 302 to the
#           sign-in page) beside GET /healthz, 64 connections.
#
# Serves the release build of Latchkey (benches/bench.toml plus a loopback portal, 127.0.0.1 a
# trusted proxy) against a throw-away slapd with N users (default 1000), and runs wrk (-t2,
# S seconds, default 10) on loopback. Each comparison is taken --pairs times (default 3), the
# route measured first alternating from pair to pair, and the median of the pairs' ratios is
# reported with each run's requests/s, p99 and the steal time (scripts/lib/bench.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

users=1000 seconds=10 pairs=3
while [ $# -gt 0 ]; do
  case "$1" in
    --users) users=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --pairs) pairs=$2; shift 2 ;;
    *) echo "portal.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
for value in "$users" "$seconds" "$pairs"; do
  [[ "$value" =~ ^[1-9][0-9]*$ ]] || { echo "portal.sh: --users, --seconds and --pairs take a whole number of at least 1" >&2; exit 2; }
done

scripts/install-test-deps
. scripts/lib/latchkey.sh
ensure_wrk
echo "portal.sh: building the release binary..." >&2
cargo build --release --quiet --bin latchkey

. scripts/lib/dev-slapd.sh
. scripts/lib/bench.sh
work=$(mktemp -d -t latchkey-portal-bench.XXXXXX)
cleanup() {
  latchkey_stop
  dev_slapd_stop
  rm -rf "$work"
}
trap cleanup EXIT

bench_users_ldif "$users" > "$work/users.ldif"
dev_slapd_start "$work/slapd" tests/fixtures/directory.ldif "$work/users.ldif"
bench_env "$DEV_SLAPD_URL"
export LATCHKEY__DIRECTORY__CACHE__TTL=0s
base="http://127.0.0.1:$port"
{
  cat benches/bench.toml
  printf '\n[portal]\nurl = "%s"\ncookie_secure = false\nallowed_redirect_hosts = ["127.0.0.1"]\n' "$base"
} > "$work/latchkey.toml"
# The benchmark's [server] table is bench.toml's; the trusted proxy comes through the
# environment like the other per-run settings.
export LATCHKEY__SERVER__TRUSTED_PROXIES=127.0.0.1/32
latchkey_serve target/release/latchkey "$work/latchkey.log" "$work/latchkey.toml"

# A browser id and its CSRF token (valid for an hour, reused by every form request), and a
# session cookie from one form sign-in.
page=$(curl -sf -c "$work/jar" "$base/auth/login")
csrf=$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' <<<"$page" | head -n 1)
browser=$(awk '$6 == "latchkey_csrf" { print $7 }' "$work/jar")
[ -n "$csrf" ] && [ -n "$browser" ] || { echo "portal.sh: no CSRF token on the sign-in page" >&2; exit 1; }
session=$(curl -s -o /dev/null -D - -b "latchkey_csrf=$browser" \
  --data-urlencode username=bench1 --data-urlencode password=password-1 --data-urlencode "csrf=$csrf" \
  "$base/auth/login" | sed -n 's/^[Ss]et-[Cc]ookie: latchkey_session=\([^;]*\);.*/\1/p')
[ -n "$session" ] || { echo "portal.sh: the form sign-in set no session cookie" >&2; exit 1; }
status=$(curl -s -o /dev/null -w '%{http_code}' -b "latchkey_session=$session" "$base/auth/verify")
[ "$status" = 200 ] || { echo "portal.sh: /auth/verify answered $status to the session cookie" >&2; exit 1; }
status=$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: text/html' -H 'X-Forwarded-Proto: http' \
  -H 'X-Forwarded-Host: 127.0.0.1' -H 'X-Forwarded-Uri: /app/reports?year=2026' \
  -H 'X-Forwarded-Method: GET' "$base/auth/verify")
[ "$status" = 302 ] || { echo "portal.sh: /auth/verify answered $status to a browser, not 302" >&2; exit 1; }

report='done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT rps=%.0f p99_ms=%.2f non2xx=%d socket_errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(99) / 1000,
    summary.errors.status, errors))
end'
{ bench_login_lua "$users"; echo 'init = function() format_requests() end'; echo "$report"; } > "$work/api.lua"
{
  echo "local csrf, browser, users = \"$csrf\", \"$browser\", $users"
  cat <<'LUA'
local requests, i = {}, 0
init = function()
  for n = 1, users do
    requests[n] = wrk.format("POST", "/auth/login", {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Cookie"] = "latchkey_csrf=" .. browser,
    }, "username=bench" .. n .. "&password=password-" .. n .. "&csrf=" .. csrf)
  end
end
request = function()
  i = i % #requests + 1
  return requests[i]
end
LUA
  echo "$report"
} > "$work/form.lua"
echo "$report" > "$work/report.lua"

run() { # CONNECTIONS PATH SCRIPT [HEADER ...]
  local connections=$1 path=$2 script=$3 headers=()
  shift 3
  for header in "$@"; do headers+=(-H "$header"); done
  bench_steal RESULT wrk -t2 -c"$connections" -d"${seconds}s" -s "$script" "${headers[@]}" "$base$path"
}
rps_of() { sed -E 's/.*rps=([0-9]+).*/\1/' <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
browser_headers=('Accept: text/html' 'X-Forwarded-Proto: http' 'X-Forwarded-Host: 127.0.0.1'
  'X-Forwarded-Uri: /app/reports?year=2026' 'X-Forwarded-Method: GET')

form_ratios=() cookie_ratios=() browser_ratios=()
for pair in $(seq 1 "$pairs"); do
  if [ $((pair % 2)) = 1 ]; then
    form=$(run 8 /auth/login "$work/form.lua"); api=$(run 8 /auth/request-token "$work/api.lua")
    cookie=$(run 64 /auth/verify "$work/report.lua" "Cookie: latchkey_session=$session")
    health=$(run 64 /healthz "$work/report.lua")
    redirect=$(run 64 /auth/verify "$work/report.lua" "${browser_headers[@]}")
    health2=$(run 64 /healthz "$work/report.lua")
  else
    api=$(run 8 /auth/request-token "$work/api.lua"); form=$(run 8 /auth/login "$work/form.lua")
    health=$(run 64 /healthz "$work/report.lua")
    cookie=$(run 64 /auth/verify "$work/report.lua" "Cookie: latchkey_session=$session")
    health2=$(run 64 /healthz "$work/report.lua")
    redirect=$(run 64 /auth/verify "$work/report.lua" "${browser_headers[@]}")
  fi
  form_ratios+=("$(ratio "$(rps_of "$form")" "$(rps_of "$api")")")
  cookie_ratios+=("$(ratio "$(rps_of "$cookie")" "$(rps_of "$health")")")
  browser_ratios+=("$(ratio "$(rps_of "$redirect")" "$(rps_of "$health2")")")
  echo "pair $pair: form sign-in, 8 connections:             $form"
  echo "pair $pair: request-token, 8 connections:            $api"
  echo "pair $pair: verify with the session cookie, 64 conns: $cookie"
  echo "pair $pair: healthz, 64 connections:                  $health"
  echo "pair $pair: verify's redirect for a browser, 64 conns: $redirect"
  echo "pair $pair: healthz, 64 connections:                  $health2"
done
echo "form sign-in / request-token, per pair: ${form_ratios[*]}; median $(bench_median "${form_ratios[@]}")"
echo "verify with the session cookie / healthz, per pair: ${cookie_ratios[*]}; median $(bench_median "${cookie_ratios[@]}")"
echo "verify's browser redirect / healthz, per pair: ${browser_ratios[*]}; median $(bench_median "${browser_ratios[@]}")"
