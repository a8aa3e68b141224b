#!/usr/bin/env bash
# Instructions per request on the forward-auth routes, counted by callgrind: the same binary and
# requests give the same count whatever else the machine is doing, so a change can be judged
# while other builds run (benches/portal.sh measures requests per second, and needs a quiet
# machine).
#
#   benches/route_instructions.sh [BINARY ...]
#
# BINARY defaults to target/release/latchkey (built first). For each binary and each case, it
# serves benches/bench.toml with the sign-in page on and one worker under callgrind, sends the
# case's request 100 times and then 1,100 times over one keep-alive connection (curl), and
# counts the whole process's instructions; the difference divided by 1,000 is one request,
# start-up and shutdown cancelled out. No directory is needed: none of these requests reaches
# it. The cases:
#   healthz    GET /healthz
#   cookie     GET /auth/verify with a valid session cookie (a token signed here with the run's
#              secret), answered 200 from the worker's cache of verified tokens
#   notoken    GET /auth/verify with no token and no browser headers: the plain 401
#   redirect   GET /auth/verify with no token from a browser behind a trusted proxy
#              (Accept: text/html, X-Forwarded-Proto/Host/Uri/Method): the 302 to sign in
# Everything runs on loopback. Needs valgrind, curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v valgrind >/dev/null || { echo "route_instructions.sh: needs valgrind" >&2; exit 2; }
if [ $# -eq 0 ]; then
  cargo build --release --quiet --bin latchkey
  set -- target/release/latchkey
fi
. scripts/lib/dev-slapd.sh

secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
work=$(mktemp -d -t latchkey-route-instructions.XXXXXX)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# A session token for alice, signed with the run's secret under bench.toml's key id and issuer.
session=$(SECRET="$secret" python3 - <<'PY'
import base64, hashlib, hmac, json, os, time
def part(value):
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
now = int(time.time())
head = part({"typ": "JWT", "alg": "HS256", "kid": "bench"})
body = part({"iss": "latchkey-bench", "sub": "alice", "iat": now, "nbf": now, "exp": now + 3600,
             "jti": "route-instructions", "email": "alice@example.org", "groups": ["ops", "staff"]})
mac = hmac.new(os.environ["SECRET"].encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
print(f"{head}.{body}." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode())
PY
)

# The total instructions of BINARY serving CASE while it answers COUNT requests, into `total`
# (not printed: the server is a child of this shell, so that the trap can stop it).
count_instructions() {
  local binary=$1 case=$2 count=$3 port out path=/auth/verify want headers=() urls=()
  port=$(free_loopback_port)
  out="$work/callgrind.$case.$count"
  case $case in
    healthz) path=/healthz want=200 ;;
    cookie) want=200 headers=(-H "Cookie: latchkey_session=$session") ;;
    notoken) want=401 ;;
    redirect) want=302 headers=(-H 'Accept: text/html' -H 'X-Forwarded-Proto: http'
      -H 'X-Forwarded-Host: 127.0.0.1' -H 'X-Forwarded-Uri: /app/reports?year=2026'
      -H 'X-Forwarded-Method: GET') ;;
  esac
  { cat benches/bench.toml
    printf '\n[portal]\nurl = "http://127.0.0.1:%s"\ncookie_secure = false\n' "$port"
    printf 'allowed_redirect_hosts = ["127.0.0.1"]\n'; } > "$work/latchkey.toml"
  LATCHKEY__SERVER__LISTEN="127.0.0.1:$port" LATCHKEY__SERVER__WORKERS=1 \
    LATCHKEY__SERVER__TRUSTED_PROXIES=127.0.0.1/32 \
    LATCHKEY__DIRECTORY__URLS="ldap://127.0.0.1:$(free_loopback_port)" \
    LATCHKEY__TOKENS__KEYS__BENCH__SECRET="$secret" \
    valgrind --tool=callgrind --callgrind-out-file="$out" "$binary" \
    --config "$work/latchkey.toml" serve >"$work/serve.log" 2>&1 &
  server=$!
  # Start-up under callgrind takes seconds, minutes on a loaded machine.
  for _ in $(seq 1 3000); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$server" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
    sleep 0.1
  done
  # One curl, one keep-alive connection; each URL needs its own `-o`.
  for _ in $(seq 1 "$count"); do urls+=(-o /dev/null "http://127.0.0.1:$port$path"); done
  local statuses
  statuses=$(curl -s -w '%{http_code}\n' "${headers[@]}" "${urls[@]}" | sort -u)
  [ "$statuses" = "$want" ] || { echo "$case answered $statuses, not $want" >&2; exit 1; }
  kill "$server"
  wait "$server" 2>/dev/null || true
  server=""
  total=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$out")
}

printf '%-40s %10s %10s %10s %10s\n' binary healthz cookie notoken redirect
for binary in "$@"; do
  row=$(printf '%-40s' "$binary")
  for case in healthz cookie notoken redirect; do
    count_instructions "$binary" "$case" 100
    few=$total
    count_instructions "$binary" "$case" 1100
    row="$row $(printf '%10d' $(( (total - few) / 1000 )))"
  done
  echo "$row"
done
