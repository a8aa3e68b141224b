# Running Latchkey from scripts (sourced, not run): the demo and the benchmarks.
#
#   latchkey_serve BINARY LOGFILE [CONFIG]
#                                   serve CONFIG (default config/dev.toml, plus the caller's
#                                   LATCHKEY__* variables) in the background, logging to LOGFILE
#                                   (- for the terminal); waits until LATCHKEY__SERVER__LISTEN
#                                   accepts; sets LATCHKEY_PID
#   latchkey_stop                   stop it (only the process this script started)
#   ensure_wrk                      install wrk from the distribution if it is missing

LATCHKEY_PID=""

latchkey_serve() {
  local binary=$1 log=$2 config=${3:-config/dev.toml}
  local port=${LATCHKEY__SERVER__LISTEN##*:}
  if [ "$log" = - ]; then
    "$binary" --config "$config" serve &
  else
    "$binary" --config "$config" serve 2>"$log" &
  fi
  LATCHKEY_PID=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$LATCHKEY_PID" 2>/dev/null; then
      [ "$log" = - ] || cat "$log" >&2
      echo "latchkey did not start" >&2
      LATCHKEY_PID=""
      return 1
    fi
    sleep 0.1
  done
  echo "latchkey did not listen on port $port within 10 s" >&2
  return 1
}

latchkey_stop() {
  if [ -n "$LATCHKEY_PID" ]; then
    kill "$LATCHKEY_PID" 2>/dev/null || true
    wait "$LATCHKEY_PID" 2>/dev/null || true
    LATCHKEY_PID=""
  fi
}

ensure_wrk() {
  command -v wrk >/dev/null 2>&1 && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
}
