#!/usr/bin/env bash
# The OpenAPI document tells the truth: schemathesis (PyPI, pinned below, in a venv under the
# test cache) fuzzes the real `berth serve` from its own /api/v1/openapi.json, once with a
# user's client token and once with the admin's login token, and fails on any 5xx and on any
# answer whose status, content type, headers or body the document does not describe.
#
# Run by scripts/test-suites.sh inside scripts/with-test-env.sh (it needs DOCKER_HOST: the
# server starts workspaces on the test engine, network none). The server keeps its default
# rate limits, lockout and CSRF rules; schemathesis paces itself below the API budget instead.
# The two WebSocket routes are not fuzzed: schemathesis does not speak WebSocket, and the
# terminal and grid sockets have tests of their own (crates/berth-server/tests/terminal.rs).
#
# Each role runs on a server of its own, both at once, in about two minutes: the coverage phase
# (boundary values of valid input) and then the fuzzing phase (ST_MAX_EXAMPLES random valid
# and invalid cases per operation, default 15). ST_SEED replays a run's seed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

SCHEMATHESIS_VERSION=4.32.5
venv="$BERTH_TEST_CACHE/schemathesis-$SCHEMATHESIS_VERSION"
examples="${ST_MAX_EXAMPLES:-15}"

[ -n "${DOCKER_HOST:-}" ] ||
  die "DOCKER_HOST is not set: run it through scripts/with-test-env.sh (as \`make test\` does)"

# Debian's python3 with its venv module; schemathesis goes into a venv of its own version, so
# a new pin installs beside the old one and a used machine installs nothing.
ensure_packages python3-venv curl jq
if ! "$venv/bin/st" --version 2>/dev/null | grep -qF "version $SCHEMATHESIS_VERSION"; then
  log "installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  rm -rf "$venv"
  mkdir -p "$BERTH_TEST_CACHE"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" ||
    die "pip install schemathesis==$SCHEMATHESIS_VERSION failed"
fi

cargo build --locked -q -p berth
berth="${CARGO_TARGET_DIR:-target}/debug/berth"

work=$(mktemp -d "${TMPDIR:-/tmp}/berth-schemathesis-XXXXXX")
instance="schemathesis-$(basename "$work" | tr -dc 'a-zA-Z0-9' | tr 'A-Z' 'a-z')"
servers=()
cleanup() {
  local status=$? pid
  for pid in "${servers[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  # What the fuzzing started on the engine: its containers and volumes, by instance label.
  local name filter ids
  for name in user admin; do
    filter="label=berth.instance=$instance-$name"
    ids=$(docker ps -aq --filter "$filter" 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -z "$ids" ] || docker rm -f -v $ids >/dev/null 2>&1 || log "could not remove the containers of $instance-$name"
    docker volume prune -f --filter "$filter" >/dev/null 2>&1 || true
  done
  if [ "$status" -eq 0 ]; then
    rm -rf "$work"
  else
    log "the servers' homes and logs are kept in $work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# serve NAME: starts `berth serve` in a fresh home $work/NAME on a loopback port; sets $url and
# $password (the admin's, printed on first start).
serve() {
  local home="$work/$1"
  mkdir -p "$home"
  BERTH_HOME="" BERTH_LISTEN="" BERTH_INSTANCE="$instance-$1" \
    "$berth" serve --listen 127.0.0.1:0 --home "$home" </dev/null >/dev/null 2>"$home/serve.stderr" &
  servers+=("$!")
  url=""
  for _ in $(seq 1 120); do
    url=$(sed -n 's/^Berth is listening on \(http:\/\/[^ ]*\).*/\1/p' "$home/serve.stderr" | head -n1)
    [ -n "$url" ] && break
    kill -0 "${servers[-1]}" 2>/dev/null || die "berth serve exited: $(cat "$home/serve.stderr")"
    sleep 0.5
  done
  [ -n "$url" ] || die "berth serve did not start within 60 s: $(cat "$home/serve.stderr")"
  password=$(sed -n 's/^ *password: \([^ ]*\)$/\1/p' "$home/serve.stderr" | head -n1)
  [ -n "$password" ] || die "berth serve printed no admin password"
}

# api METHOD PATH TOKEN [BODY]: the JSON answer of a call to $url that must succeed.
api() {
  local args=(-sS --fail-with-body -X "$1" "$url$2")
  [ -z "$3" ] || args+=(-H "Authorization: Bearer $3")
  [ -z "${4:-}" ] || args+=(-H 'Content-Type: application/json' --data "$4")
  curl "${args[@]}" || die "$1 $2 failed"
}

admin_login() {
  api POST /api/v1/auth/login "" \
    "$(jq -nc --arg p "$password" '{username: "admin", password: $p}')" | jq -er .token
}

checks=not_a_server_error,status_code_conformance,content_type_conformance
checks+=,response_headers_conformance,response_schema_conformance
# fuzz NAME URL TOKEN: two passes, boundary values of valid input (coverage), then random
# valid and invalid input (fuzzing) for every operation.
fuzz() {
  local name=$1 base=$2 token=$3 pass
  local common=(
    run "$base/api/v1/openapi.json"
    --checks "$checks"
    --header "Authorization: Bearer $token"
    --exclude-path '/api/v1/workspaces/{id}/terminal'
    --exclude-path '/api/v1/grids/{id}/ws'
    # Below the 600 a minute that api_rate_per_minute allows one caller.
    --rate-limit 480/m
    --request-timeout 30
    --generation-database none
    --no-color
  )
  [ -z "${ST_SEED:-}" ] || common+=(--seed "$ST_SEED")
  for pass in "--phases coverage --mode positive" "--phases fuzzing --max-examples $examples"; do
    # shellcheck disable=SC2086
    (cd "$work/$name" && "$venv/bin/st" "${common[@]}" $pass) || return 1
  done
}

# The user's server: a template on the test image (network none) and a user allowed it, who
# fuzzes with a client token, as the CLI calls. The admin fuzzes on a server of its own, so
# its changes (users removed, templates replaced) never pull the user's run from under it.
serve user
user_url=$url
admin_token=$(admin_login)
api POST /api/v1/templates "$admin_token" \
  '{"name": "lab", "image": "berth-test/base", "network": "none", "memory": "256m"}' >/dev/null
api POST /api/v1/users "$admin_token" \
  '{"username": "ann", "password": "ann-password-1", "templates": ["lab"]}' >/dev/null
ann_login=$(api POST /api/v1/auth/login "" \
  '{"username": "ann", "password": "ann-password-1"}' | jq -er .token)
user_token=$(api POST /api/v1/auth/tokens "$ann_login" '{"label": "schemathesis"}' | jq -er .token)

# The main.yaml admin has no client tokens: a login token.
serve admin
admin_url=$url
admin_token=$(admin_login)

fuzz user "$user_url" "$user_token" >"$work/user.out" 2>&1 &
user_run=$!
fuzz admin "$admin_url" "$admin_token" >"$work/admin.out" 2>&1 &
admin_run=$!
status=0
wait "$user_run" || status=1
wait "$admin_run" || status=1
printf '\n==> schemathesis as the user ann\n'
cat "$work/user.out"
printf '\n==> schemathesis as the admin\n'
cat "$work/admin.out"
exit "$status"
