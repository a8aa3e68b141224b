# flask-ldap-auth 0.3 (the service Latchkey follows the contract of) served beside it, so that
# the benchmarks compare the two in one run instead of against a figure from another day.
# Sourced, not run.
#
#   flask_ldap_auth_install DIR     a virtualenv in DIR with flask-ldap-auth 0.3 from PyPI and
#                                   the versions it runs on (its token serializer left
#                                   itsdangerous in 2.1); installs the LDAP headers python-ldap
#                                   builds against, if missing
#   flask_ldap_auth_serve DIR URL BASE PORT
#                                   gunicorn with 2 workers (as the reference figure was
#                                   measured) on 127.0.0.1:PORT, users searched anonymously one
#                                   level under BASE, its log in DIR/gunicorn.log; sets
#                                   FLASK_LDAP_AUTH_PID
#   flask_ldap_auth_stop            stop it (only the process this script started)

FLASK_LDAP_AUTH_PID=""

flask_ldap_auth_install() {
  local dir=$1
  [ -x "$dir/bin/gunicorn" ] && return 0
  if ! dpkg -s libldap2-dev libsasl2-dev >/dev/null 2>&1; then
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libldap2-dev libsasl2-dev >/dev/null
  fi
  python3 -m venv "$dir"
  "$dir/bin/pip" install -q "flask-ldap-auth==0.3" "Flask==2.0.3" "Werkzeug==2.0.3" \
    "itsdangerous==2.0.1" "python-ldap==3.4.*" "gunicorn==23.*"
}

flask_ldap_auth_serve() {
  local dir=$1 url=$2 base=$3 port=$4
  cat > "$dir/bench_app.py" <<PY
from flask import Flask
from flask_ldap_auth import token

app = Flask(__name__)
app.config.update(
    SECRET_KEY="$(head -c 24 /dev/urandom | base64)",
    LDAP_AUTH_SERVER="$url",
    LDAP_TOP_DN="$base",
    # Read on every request, used only with ?authenticated_search (never here).
    LDAP_USERNAME="unused",
    LDAP_PASSWORD="unused",
)
app.register_blueprint(token, url_prefix="/auth")
PY
  "$dir/bin/gunicorn" --workers 2 --bind "127.0.0.1:$port" --chdir "$dir" \
    --log-level warning bench_app:app 2>"$dir/gunicorn.log" &
  FLASK_LDAP_AUTH_PID=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$FLASK_LDAP_AUTH_PID" 2>/dev/null; then
      echo "flask-ldap-auth did not start on port $port: $(tail -n 1 "$dir/gunicorn.log")" >&2
      FLASK_LDAP_AUTH_PID=""
      return 1
    fi
    sleep 0.1
  done
  echo "flask-ldap-auth did not listen on port $port within 10 s" >&2
  flask_ldap_auth_stop
  return 1
}

flask_ldap_auth_stop() {
  if [ -n "$FLASK_LDAP_AUTH_PID" ]; then
    kill "$FLASK_LDAP_AUTH_PID" 2>/dev/null || true
    wait "$FLASK_LDAP_AUTH_PID" 2>/dev/null || true
    FLASK_LDAP_AUTH_PID=""
  fi
}
