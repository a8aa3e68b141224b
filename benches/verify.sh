#!/usr/bin/env bash
# Load benchmark for GET /auth/verify (forward-auth) beside GET /healthz (a route that does
# nothing), same release build, same run.
#
#   benches/verify.sh [--seconds S] [--pinned]
#
# Gets a real token from request-token (against a throw-away slapd), then runs wrk on loopback:
# /auth/verify and /healthz at 64 connections (-t2), and /auth/verify at 8 connections (-t2),
# the setting flask-ldap-auth 0.3's guarded route was measured with (4,515 req/s). Then both
# routes at 64 connections paced: each connection sends its next request 1 ms after an answer
# (wrk's delay()), a steady load below what the machine can serve, so that the latency is the
# service's and not the length of a queue (at full load, with a fixed number of connections,
# the mean latency is connections / throughput whatever the route does).
# --pinned gives each side a core of its own: Latchkey with one worker on CPU 1, wrk with one
# thread on CPU 0 (taskset), so that tail latency measures the server rather than the two
# competing for the same cores.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=10 pinned=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --pinned) pinned=1; shift ;;
    *) echo "verify.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

scripts/install-test-deps
. scripts/lib/latchkey.sh
ensure_wrk
cargo build --release --quiet --bin latchkey

. scripts/lib/dev-slapd.sh
. scripts/lib/bench.sh
work=$(mktemp -d -t latchkey-bench.XXXXXX)
cleanup() {
  latchkey_stop
  dev_slapd_stop
  rm -rf "$work"
}
trap cleanup EXIT

dev_slapd_start "$work/slapd" tests/fixtures/directory.ldif
bench_env "$DEV_SLAPD_URL"
wrk_cmd=(wrk -t2)
if [ "$pinned" = 1 ]; then
  export LATCHKEY__SERVER__WORKERS=1
  wrk_cmd=(taskset -c 0 wrk -t1)
fi
latchkey_serve target/release/latchkey "$work/latchkey.log" benches/bench.toml
if [ "$pinned" = 1 ]; then
  taskset -a -p -c 1 "$LATCHKEY_PID" >/dev/null
fi

# A token like a real one: name, email, from the real endpoint.
token=$(printf 'POST /auth/request-token HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' \
  "$(printf 'alice:alice-password-1' | base64 -w0)" | (exec 3<>"/dev/tcp/127.0.0.1/$port"; cat >&3; cat <&3) \
  | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
[ -n "$token" ] || { echo "verify.sh: no token from request-token" >&2; exit 1; }

cat > "$work/report.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.0f p50_ms=%.3f p99_ms=%.3f non2xx=%d socket_errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
{ echo 'delay = function() return 1 end'; cat "$work/report.lua"; } >"$work/paced.lua"
run() { # connections path [script]
  "${wrk_cmd[@]}" -c"$1" -d"${seconds}s" -s "${3:-$work/report.lua}" -H "Authorization: Bearer $token" \
    "http://127.0.0.1:$port$2" | grep '^RESULT' | sed 's/^RESULT //'
}
"${wrk_cmd[@]}" -c64 -d2s -H "Authorization: Bearer $token" "http://127.0.0.1:$port/auth/verify" >/dev/null
# The machine's speed drifts by tens of percent between runs: measure verify and healthz in
# alternating pairs and report each pair's ratio and their median.
ratios=()
for pair in 1 2 3; do
  verify64=$(run 64 /auth/verify)
  health64=$(run 64 /healthz)
  echo "pair $pair: /auth/verify, 64 connections: $verify64"
  echo "pair $pair: /healthz,     64 connections: $health64"
  ratios+=("$(awk -v a="$(sed -E 's/.*rps=([0-9]+).*/\1/' <<<"$verify64")" \
    -v b="$(sed -E 's/.*rps=([0-9]+).*/\1/' <<<"$health64")" 'BEGIN { printf "%.2f", a / b }')")
done
verify8=$(run 8 /auth/verify)
paced_verify=$(run 64 /auth/verify "$work/paced.lua")
paced_health=$(run 64 /healthz "$work/paced.lua")
rps() { sed -E 's/.*rps=([0-9]+).*/\1/' <<<"$1"; }
echo "/auth/verify,  8 connections: $verify8"
echo "/auth/verify, 64 connections, paced (1 ms between answer and next request): $paced_verify"
echo "/healthz,     64 connections, paced (1 ms between answer and next request): $paced_health"
echo "verify / healthz at 64 connections, per pair: ${ratios[*]}; median $(printf '%s\n' "${ratios[@]}" | sort -n | sed -n 2p)"
echo "verify at 8 connections / flask-ldap-auth 0.3 (4,515 req/s): $(awk -v a="$(rps "$verify8")" 'BEGIN { printf "%.1f", a / 4515 }')x"
