# What the benchmarks share (sourced, not run). Users are bench1..benchN with passwords
# password-1..password-N.
#
#   bench_users_ldif N         print their entries as LDIF (under ou=people,dc=example,dc=org)
#   bench_login_lua N          print the start of a wrk script that logs in as the next user on
#                              each request: `request`, and `format_requests()` for the
#                              script's `init` to call (each request is formatted once, so wrk
#                              spends its CPU on sending)
#   bench_steal PREFIX CMD...  run CMD and print its output line starting with PREFIX, followed
#                              by ` steal=N%`: the share of the machine's CPU time the hypervisor
#                              took from this VM meanwhile (/proc/stat). On a shared host, a run
#                              with a high steal measured the neighbours, not the code
#   bench_median N...          print the median of the numbers (the mean of the middle two when
#                              there are an even number of them)
#   bench_env URL              export the environment for a Latchkey (benches/bench.toml) against
#                              the directory at URL, with a random secret, on a free loopback
#                              port (free_loopback_port, scripts/lib/dev-slapd.sh); sets `port`
#   bench_key_pair BINARY ALGORITHM FILE
#                              make a key pair for ALGORITHM (EdDSA or ES256) with BINARY's
#                              `latchkey keygen`, its private key in FILE (which must not exist)
#   bench_sign_with ALGORITHM [FILE]
#                              switch the environment of bench_env to sign with ALGORITHM:
#                              HS256 with bench_env's secret, or EdDSA/ES256 with the private key
#                              in FILE (the key `bench` either way); the next Latchkey started
#                              signs so

bench_users_ldif() {
  local i
  for i in $(seq 1 "$1"); do
    printf 'dn: uid=bench%d,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: bench%d\ncn: Bench User %d\nsn: User\nmail: bench%d@bench.example.org\nuserPassword: password-%d\n\n' "$i" "$i" "$i" "$i" "$i"
  done
}

bench_login_lua() {
  local i
  echo "local headers = {"
  for i in $(seq 1 "$1"); do
    printf '  "Basic %s",\n' "$(printf 'bench%d:password-%d' "$i" "$i" | base64 -w0)"
  done
  echo "}"
  cat <<'LUA'
local requests, i = {}, 0
function format_requests()
  for n, value in ipairs(headers) do
    requests[n] = wrk.format("POST", "/auth/request-token", { ["Authorization"] = value })
  end
end
request = function()
  i = i % #requests + 1
  return requests[i]
end
LUA
}

bench_env() {
  port=$(free_loopback_port)
  export LATCHKEY__DIRECTORY__URLS="$1"
  BENCH_SECRET="$(head -c 48 /dev/urandom | base64 -w0)"
  export LATCHKEY__TOKENS__KEYS__BENCH__SECRET="$BENCH_SECRET"
  export LATCHKEY__SERVER__LISTEN="127.0.0.1:$port"
}

bench_key_pair() {
  "$1" keygen --algorithm "$2" --out "$3" --kid bench >/dev/null
}

bench_sign_with() {
  case "$1" in
    HS256)
      unset LATCHKEY__TOKENS__ALGORITHM LATCHKEY__TOKENS__KEYS__BENCH__PRIVATE_KEY_FILE \
        LATCHKEY__SERVER__PUBLIC_URL
      export LATCHKEY__TOKENS__KEYS__BENCH__SECRET="$BENCH_SECRET"
      ;;
    EdDSA | ES256)
      unset LATCHKEY__TOKENS__KEYS__BENCH__SECRET
      export LATCHKEY__TOKENS__ALGORITHM="$1" LATCHKEY__TOKENS__KEYS__BENCH__PRIVATE_KEY_FILE="$2"
      # Where clients reach it, for the discovery document (a key pair without it is warned of).
      export LATCHKEY__SERVER__PUBLIC_URL="http://${LATCHKEY__SERVER__LISTEN}"
      ;;
    *) echo "bench_sign_with: $1 is not HS256, EdDSA or ES256" >&2; return 2 ;;
  esac
}

_bench_cpu_ticks() { # steal, then all ticks, of the whole machine
  awk '/^cpu / { print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9; exit }' /proc/stat
}

bench_steal() {
  local prefix=$1 before after line
  shift
  before=$(_bench_cpu_ticks)
  line=$("$@" | grep "^$prefix")
  after=$(_bench_cpu_ticks)
  awk -v line="$line" -v b="$before" -v a="$after" 'BEGIN {
    split(b, x, " "); split(a, y, " ")
    total = y[2] - x[2]
    printf "%s steal=%.0f%%\n", line, (total > 0 ? 100 * (y[1] - x[1]) / total : 0)
  }'
}

bench_median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
    END { m = int((NR + 1) / 2); printf "%s", (NR % 2 ? v[m] : (v[m] + v[m + 1]) / 2) }'
}
