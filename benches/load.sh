#!/usr/bin/env bash
# Load benchmark for POST /auth/request-token, beside its LDAP ceiling, in one run.
#
#   benches/load.sh [--users N] [--seconds S] [--connections C] [--flask] [--redis] [--refresh]
#   benches/load.sh --signing ALGORITHM [--pairs N] [--users N] [--seconds S] [--connections C]
#
# Starts a throw-away slapd on loopback with N users (default 1000), serves the release build
# of Latchkey against it (benches/bench.toml), and runs wrk (-t2, C connections, default 8,
# S seconds, default 10) logging in as a different user on each request: first with the user
# cache off (service-account search + bind), then again with it on and warm (one bind).
# Then runs the ceiling probe (benches/ldap_ceiling.rs) for each: the same LDAP work over pooled
# connections straight with ldap3, with C connections of each kind, no HTTP, no token.
# Each measurement is taken three times as a pair (the service, then its ceiling) and the median
# of the pairs' ratios is reported. Prints requests/s, latency p50/p99, the ratios to the
# ceilings and to flask-ldap-auth, CPU time used, and Latchkey's peak RSS.
# With --flask, flask-ldap-auth 0.3 (installed from PyPI into a virtualenv under
# ~/.cache/latchkey-bench, served by gunicorn with 2 workers against the same slapd, anonymous
# search + bind) is then measured three times with the same wrk script, so that the multiples
# of it come from the same run rather than from the fixed reference figure.
# With --redis, a throw-away redis-server on loopback is started too, and each first-login pair
# becomes a triple: Latchkey with the memory backend, then with `[state] backend = "redis"`
# (brute-force counts on that Redis), then the ceiling; the Redis backend's ratio to the
# ceiling and to the memory backend are reported.
# With --signing EdDSA (or ES256), only first logins are measured, and only Latchkey: signed with
# the HS256 secret and signed with a key pair of ALGORITHM (made by `latchkey keygen`), in N
# alternating pairs (default 5; odd pairs HS256 first, even pairs ALGORITHM first, so that a
# machine speeding up or slowing down does not favour one side). Prints each run, each pair's
# ratio ALGORITHM / HS256, their median, and the steal of every run.
# With --refresh, each first-login pair also measures POST /auth/refresh (memory backend, right
# after the first logins): every request refreshes a valid token of the next user (tokens
# taken from request-token once, before the runs, one for each user), which reads the entry and
# groups again with the service account and signs a new token; the ratio of refreshes to first
# logins is reported per pair and as the median; and, after each refresh run, the ceiling
# probe with --search-only (a refresh's LDAP work: the user search alone), so that the ratio
# of the two ceilings shows how much faster than a first login a refresh can be at all.
# Everything runs on this machine; only loopback is used.
set -euo pipefail
cd "$(dirname "$0")/.."

users=1000 seconds=10 connections=8 flask=0 redis=0 refresh=0 signing="" pairs=5
while [ $# -gt 0 ]; do
  case "$1" in
    --users) users=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --flask) flask=1; shift ;;
    --redis) redis=1; shift ;;
    --signing) signing=$2; shift 2 ;;
    --pairs) pairs=$2; shift 2 ;;
    --refresh) refresh=1; shift ;;
    *) echo "load.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

[[ -z "$signing" || "$signing" =~ ^(EdDSA|ES256)$ ]] || { echo "load.sh: --signing takes EdDSA or ES256 (case-sensitive)" >&2; exit 2; }
[[ "$pairs" =~ ^[1-9][0-9]*$ ]] || { echo "load.sh: --pairs takes a whole number of at least 1, e.g. 5" >&2; exit 2; }
[ -z "$signing" ] || [ "$flask" = 0 ] || { echo "load.sh: --signing measures Latchkey alone; leave out --flask" >&2; exit 2; }

scripts/install-test-deps
. scripts/lib/latchkey.sh
ensure_wrk

echo "load.sh: building release binaries..." >&2
cargo build --release --quiet --bin latchkey
cargo bench --quiet --bench ldap_ceiling --no-run 2>/dev/null

. scripts/lib/dev-slapd.sh
. scripts/lib/bench.sh
. scripts/lib/flask-ldap-auth.sh
flask_venv=${XDG_CACHE_HOME:-$HOME/.cache}/latchkey-bench/flask-ldap-auth
if [ "$flask" = 1 ]; then
  echo "load.sh: installing flask-ldap-auth 0.3..." >&2
  flask_ldap_auth_install "$flask_venv"
fi
work=$(mktemp -d -t latchkey-bench.XXXXXX)
REDIS_PID=""
cleanup() {
  [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null
  flask_ldap_auth_stop
  latchkey_stop
  dev_slapd_stop
  rm -rf "$work"
}
trap cleanup EXIT

# N users bench1..benchN with passwords password-1..password-N, and the wrk script's headers.
bench_users_ldif "$users" > "$work/users.ldif"
{
  bench_login_lua "$users"
  cat <<'LUA'
init = function() format_requests() end
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT rps=%.0f p50_ms=%.2f p99_ms=%.2f requests=%d non2xx=%d socket_errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.requests, summary.errors.status, errors))
end
LUA
} > "$work/login.lua"

dev_slapd_start "$work/slapd" tests/fixtures/directory.ldif "$work/users.ldif"
if [ "$redis" = 1 ]; then
  redis_port=$(free_loopback_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$work" >"$work/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 50); do
    [ "$(redis-cli -p "$redis_port" PING 2>/dev/null)" = PONG ] && break
    sleep 0.1
  done
  [ "$(redis-cli -p "$redis_port" PING 2>/dev/null)" = PONG ] ||
    { echo "load.sh: redis-server did not start: $(cat "$work/redis.log")" >&2; exit 1; }
fi
bench_env "$DEV_SLAPD_URL"
export LATCHKEY__SERVER__WORKERS=${WORKERS:-0}
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # user + system, in clock ticks
hz=$(getconf CLK_TCK)
secs() { awk -v t="$1" -v h="$hz" 'BEGIN{printf "%.1f", t/h}'; }

# One measured wrk run of SCRIPT (default: the logins) against a fresh Latchkey (after a
# warm-up that also fills the cache, when it is on). Sets RESULT, RSS_START, RSS_PEAK, LK_CPU,
# SL_CPU.
measure() { # [SCRIPT]
  local script=${1:-$work/login.lua}
  latchkey_serve target/release/latchkey "$work/latchkey.log" benches/bench.toml
  RSS_START=$(awk '/VmRSS/ {print $2}' "/proc/$LATCHKEY_PID/status")
  wrk -t2 -c"$connections" -d2s -s "$script" "http://127.0.0.1:$port" >/dev/null
  local lk0 sl0
  lk0=$(cpu "$LATCHKEY_PID"); sl0=$(cpu "$DEV_SLAPD_PID")
  RESULT=$(bench_steal RESULT wrk -t2 -c"$connections" -d"${seconds}s" -s "$script" "http://127.0.0.1:$port")
  LK_CPU=$(( $(cpu "$LATCHKEY_PID") - lk0 )); SL_CPU=$(( $(cpu "$DEV_SLAPD_PID") - sl0 ))
  RSS_PEAK=$(awk '/VmHWM/ {print $2}' "/proc/$LATCHKEY_PID/status")
  latchkey_stop
}
# flask-ldap-auth 0.3 with the same requests. Sets FLASK_RESULT.
measure_flask() {
  local flask_port
  # Below the kernel's ephemeral range (32768-60999), where flask-ldap-auth's own LDAP
  # connections, one per request, take their local ports.
  for _ in 1 2 3 4 5; do
    flask_port=$(( 20000 + RANDOM % 12000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$flask_port") 2>/dev/null && continue   # someone listens
    flask_ldap_auth_serve "$flask_venv" "$DEV_SLAPD_URL" "ou=people,dc=example,dc=org" "$flask_port" && break
  done
  [ -n "$FLASK_LDAP_AUTH_PID" ] || { echo "load.sh: flask-ldap-auth could not be started" >&2; return 1; }
  wrk -t2 -c"$connections" -d2s -s "$work/login.lua" "http://127.0.0.1:$flask_port" >/dev/null
  FLASK_RESULT=$(bench_steal RESULT wrk -t2 -c"$connections" -d"${seconds}s" -s "$work/login.lua" \
    "http://127.0.0.1:$flask_port")
  flask_ldap_auth_stop
}
rps_of() { sed -E 's/.*rps=([0-9]+).*/\1/' <<<"$1"; }
ceiling_of() { sed -E 's/.* = ([0-9]+)\/s.*/\1/' <<<"$1"; }

ceiling_run() { # [--bind-only]
  bench_steal ceiling cargo bench --quiet --bench ldap_ceiling -- --url "$DEV_SLAPD_URL" \
    --users "$users" --concurrency "$connections" --seconds "$seconds" "$@"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# First logins signed with HS256 beside first logins signed with a key pair, in alternating
# pairs; nothing else.
if [ -n "$signing" ]; then
  bench_key_pair target/release/latchkey "$signing" "$work/bench.pem"
  export LATCHKEY__DIRECTORY__CACHE__TTL=0s
  signing_ratios=() hs_rps=() pair_rps=() hs_cpu=() pair_cpu=()
  # Latchkey's CPU time per login in microseconds: less disturbed than req/s by other
  # processes on the machine (which take CPU from all three of Latchkey, slapd and wrk).
  cpu_per_login() { awk -v t="$LK_CPU" -v h="$hz" -v n="$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$RESULT")" \
    'BEGIN { printf "%.0f", 1e6 * t / h / n }'; }
  measure_signed() { # ALGORITHM
    bench_sign_with "$1" "$work/bench.pem"
    measure
    echo "first logins, pair $pair, $1: $RESULT; CPU seconds: latchkey $(secs "$LK_CPU"), slapd $(secs "$SL_CPU"); latchkey $(cpu_per_login) us per login"
  }
  for pair in $(seq 1 "$pairs"); do
    if [ $((pair % 2)) = 1 ]; then
      measure_signed HS256; hs=$(rps_of "$RESULT"); hs_cpu+=("$(cpu_per_login)")
      measure_signed "$signing"; kp=$(rps_of "$RESULT"); pair_cpu+=("$(cpu_per_login)")
    else
      measure_signed "$signing"; kp=$(rps_of "$RESULT"); pair_cpu+=("$(cpu_per_login)")
      measure_signed HS256; hs=$(rps_of "$RESULT"); hs_cpu+=("$(cpu_per_login)")
    fi
    hs_rps+=("$hs") pair_rps+=("$kp")
    signing_ratios+=("$(ratio "$kp" "$hs")")
  done
  echo "first logins, median req/s: HS256 $(bench_median "${hs_rps[@]}"), $signing $(bench_median "${pair_rps[@]}")"
  echo "latchkey CPU per login, median (us): HS256 $(bench_median "${hs_cpu[@]}"), $signing $(bench_median "${pair_cpu[@]}")"
  echo "first logins $signing / HS256, per pair: ${signing_ratios[*]}; median $(bench_median "${signing_ratios[@]}") (target 0.95)"
  exit 0
fi

# With --refresh: one token for each user, from request-token (one curl, one connection), and
# a wrk script that refreshes the next user's token on each request. Latchkey's secret and
# issuer stay the same for every run, so the tokens verify in each.
if [ "$refresh" = 1 ]; then
  latchkey_serve target/release/latchkey "$work/latchkey.log" benches/bench.toml
  for i in $(seq 1 "$users"); do
    printf 'url = "http://127.0.0.1:%s/auth/request-token"\nrequest = "POST"\nuser = "bench%d:password-%d"\nwrite-out = "\\n"\nnext\n' "$port" "$i" "$i"
  done | sed '$d' > "$work/tokens.curl"   # no `next` after the last
  curl -sS --config "$work/tokens.curl" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p' > "$work/tokens"
  latchkey_stop
  [ "$(wc -l < "$work/tokens")" = "$users" ] ||
    { echo "load.sh: got $(wc -l < "$work/tokens") tokens of $users from request-token" >&2; exit 1; }
  {
    echo "local tokens = {"
    sed 's/.*/  "&",/' "$work/tokens"
    echo "}"
    cat <<'LUA'
local requests, i = {}, 0
init = function()
  for n, token in ipairs(tokens) do
    requests[n] = wrk.format("POST", "/auth/refresh", { ["Authorization"] = "Bearer " .. token })
  end
end
request = function()
  i = i % #requests + 1
  return requests[i]
end
LUA
    sed -n '/^done = function/,$p' "$work/login.lua"
  } > "$work/refresh.lua"
fi

# The machine's speed drifts by tens of percent from one run to the next, so each measurement
# is a pair, the service then its ceiling, taken three times; each pair gives a ratio and the
# median is reported.
#
# 1. Every login a first login: search + bind.
export LATCHKEY__DIRECTORY__CACHE__TTL=0s
first_ratios=() first_rps=() flask_rps=() redis_ratios=() redis_rps=() redis_vs_memory=()
refresh_rps=() refresh_ratios=() refresh_ceiling_ratios=() ceiling_ratios=()
for pair in 1 2 3; do
  measure
  if [ "$refresh" = 1 ]; then
    login_result=$RESULT login_lk_cpu=$LK_CPU login_sl_cpu=$SL_CPU
    measure "$work/refresh.lua"
    refresh_rps+=("$(rps_of "$RESULT")")
    refresh_ratios+=("$(ratio "$(rps_of "$RESULT")" "$(rps_of "$login_result")")")
    echo "refreshes, pair $pair: $RESULT"
    echo "  CPU seconds: latchkey $(secs "$LK_CPU"), slapd $(secs "$SL_CPU"); to the first logins before it: $(ratio "$(rps_of "$RESULT")" "$(rps_of "$login_result")")"
    search_ceiling=$(ceiling_run --search-only)
    refresh_ceiling_ratios+=("$(ratio "$(rps_of "$RESULT")" "$(ceiling_of "$search_ceiling")")")
    echo "  $search_ceiling; ratio $(ratio "$(rps_of "$RESULT")" "$(ceiling_of "$search_ceiling")")"
    RESULT=$login_result LK_CPU=$login_lk_cpu SL_CPU=$login_sl_cpu
  fi
  if [ "$redis" = 1 ]; then
    memory_result=$RESULT memory_lk_cpu=$LK_CPU memory_sl_cpu=$SL_CPU
    rd0=$(cpu "$REDIS_PID")
    export LATCHKEY__STATE__BACKEND=redis LATCHKEY__STATE__REDIS__URL="redis://127.0.0.1:$redis_port"
    measure
    unset LATCHKEY__STATE__BACKEND LATCHKEY__STATE__REDIS__URL
    redis_cpu=$(( $(cpu "$REDIS_PID") - rd0 ))
    redis_result=$RESULT
    echo "first logins, Redis backend, pair $pair: $redis_result"
    echo "  CPU seconds: latchkey $(secs "$LK_CPU"), slapd $(secs "$SL_CPU"), redis-server $(secs "$redis_cpu") (warm-up included)"
    RESULT=$memory_result LK_CPU=$memory_lk_cpu SL_CPU=$memory_sl_cpu
  fi
  sl0=$(cpu "$DEV_SLAPD_PID")
  ceiling=$(ceiling_run)
  sl_cpu_ceiling=$(( $(cpu "$DEV_SLAPD_PID") - sl0 ))
  rps=$(rps_of "$RESULT")
  first_rps+=("$rps")
  first_ratios+=("$(ratio "$rps" "$(ceiling_of "$ceiling")")")
  if [ "$refresh" = 1 ]; then
    ceiling_ratios+=("$(ratio "$(ceiling_of "$search_ceiling")" "$(ceiling_of "$ceiling")")")
  fi
  echo "first logins, pair $pair: $RESULT"
  echo "  $ceiling; ratio $(ratio "$rps" "$(ceiling_of "$ceiling")")"
  echo "  CPU seconds: latchkey $(secs "$LK_CPU"), slapd $(secs "$SL_CPU"); during the ceiling: slapd $(secs "$sl_cpu_ceiling") (of $((2 * seconds)) on 2 cores)"
  echo "  latchkey RSS: ${RSS_START} kB at start, ${RSS_PEAK} kB peak"
  if [ "$redis" = 1 ]; then
    redis_rps+=("$(rps_of "$redis_result")")
    redis_ratios+=("$(ratio "$(rps_of "$redis_result")" "$(ceiling_of "$ceiling")")")
    redis_vs_memory+=("$(ratio "$(rps_of "$redis_result")" "$rps")")
    echo "  Redis backend: ratio to the ceiling $(ratio "$(rps_of "$redis_result")" "$(ceiling_of "$ceiling")"), to the memory backend $(ratio "$(rps_of "$redis_result")" "$rps")"
  fi
done

# 2. Repeat logins with the user cache warm (the warm-up logs every user in): one bind each.
export LATCHKEY__DIRECTORY__CACHE__TTL=600s
repeat_ratios=() repeat_rps=()
for pair in 1 2 3; do
  measure
  ceiling=$(ceiling_run --bind-only)
  rps=$(rps_of "$RESULT")
  repeat_rps+=("$rps")
  repeat_ratios+=("$(ratio "$rps" "$(ceiling_of "$ceiling")")")
  echo "repeat logins (cache warm), pair $pair: $RESULT"
  echo "  $ceiling; ratio $(ratio "$rps" "$(ceiling_of "$ceiling")")"
  echo "  CPU seconds: latchkey $(secs "$LK_CPU"), slapd $(secs "$SL_CPU"); latchkey RSS peak ${RSS_PEAK} kB"
done

first=$(bench_median "${first_rps[@]}") repeat=$(bench_median "${repeat_rps[@]}")

# 3. flask-ldap-auth 0.3, three times, after everything else: it opens a new LDAP connection
# for every request, and the tens of thousands of closed connections it leaves in TIME_WAIT
# should not weigh on the runs above.
if [ "$flask" = 1 ]; then
  for run in 1 2 3; do
    measure_flask
    flask_rps+=("$(rps_of "$FLASK_RESULT")")
    echo "flask-ldap-auth 0.3, run $run: $FLASK_RESULT"
  done
  flask_median=$(bench_median "${flask_rps[@]}")
  echo "flask-ldap-auth 0.3, same run: median $flask_median req/s"
  echo "  first logins / flask-ldap-auth (medians): $(ratio "$first" "$flask_median") (target 5)"
  echo "  repeat logins / flask-ldap-auth (medians): $(ratio "$repeat" "$flask_median") (target 10)"
fi
echo "first logins: ratio to the ceiling per pair ${first_ratios[*]}; median $(bench_median "${first_ratios[@]}") (target 0.75)"
echo "  median $first req/s = $(awk -v a="$first" 'BEGIN { printf "%.1f", a / 1576 }')x flask-ldap-auth 0.3 (1,576 req/s; target 5x)"
if [ "$redis" = 1 ]; then
  echo "first logins, Redis backend: ratio to the ceiling per triple ${redis_ratios[*]}; median $(bench_median "${redis_ratios[@]}") (target 0.7)"
  echo "  median $(bench_median "${redis_rps[@]}") req/s; to the memory backend per triple ${redis_vs_memory[*]}; median $(bench_median "${redis_vs_memory[@]}")"
fi
if [ "$refresh" = 1 ]; then
  echo "refreshes: to the first logins per pair ${refresh_ratios[*]}; median $(bench_median "${refresh_ratios[@]}") (target 2)"
  echo "  median $(bench_median "${refresh_rps[@]}") req/s; to the search ceiling per pair ${refresh_ceiling_ratios[*]}; median $(bench_median "${refresh_ceiling_ratios[@]}")"
  echo "  the LDAP work alone: search ceiling / search+bind ceiling per pair ${ceiling_ratios[*]}; median $(bench_median "${ceiling_ratios[@]}")"
fi
echo "repeat logins: ratio to the bind ceiling per pair ${repeat_ratios[*]}; median $(bench_median "${repeat_ratios[@]}")"
echo "  median $repeat req/s = $(awk -v a="$repeat" 'BEGIN { printf "%.1f", a / 1576 }')x flask-ldap-auth 0.3 (target 10x); $(ratio "$repeat" "$first")x first logins"
