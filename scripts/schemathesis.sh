#!/usr/bin/env bash
# The OpenAPI document tells the truth: schemathesis (PyPI, pinned with every dependency in
# scripts/schemathesis-constraints.txt, in a venv under the test cache) fuzzes the real
# `berth serve` from its own /api/v1/openapi.json, once with a user's client token and once
# with the admin's login token, and fails on any 5xx and on any answer whose status, content
# type, headers or body the document does not describe.
#
# Run by scripts/test-suites.sh inside scripts/with-test-env.sh (it needs DOCKER_HOST: the
# server starts workspaces on the test engine, network none). The server keeps its default
# rate limits, lockout and CSRF rules; schemathesis paces itself below the API budget instead.
# The WebSocket routes are not fuzzed: schemathesis does not speak WebSocket, and the
# terminal, grid and event sockets have tests of their own (crates/berth-server/tests/).
#
# The admin's server runs a fleet (an inventory repository of the SSH test machine m1, see
# with_fleet), so the fleet routes are fuzzed against real syncs and real SSH checks.
#
# Each role runs on a server of its own, both at once, in about five minutes: the coverage pass
# (boundary values of valid input) and then the fuzzing pass (ST_MAX_EXAMPLES random valid
# and invalid cases per operation, default 15). ST_SEED replays a run's seed. Each pass has a
# time budget (running out of it fails the run), and after each pass the role's token must
# still be accepted (a 200 from a route it may call), so a run that lost its token and got
# only documented 401s cannot pass. Whatever the servers started on the engine (containers,
# named volumes) is removed by its instance label at the end, also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

constraints=scripts/schemathesis-constraints.txt
SCHEMATHESIS_VERSION=$(sed -n 's/^schemathesis==\([^ ]*\)$/\1/p' "$constraints")
[ -n "$SCHEMATHESIS_VERSION" ] || die "$constraints pins no schemathesis==VERSION"
# The venv's name carries the pins' hash (comments aside): a changed pin installs a fresh venv
# beside the old one, and a used machine installs nothing.
pins_hash=$(grep -v '^#' "$constraints" | sha256sum | cut -c1-12)
venv="$BERTH_TEST_CACHE/schemathesis-$SCHEMATHESIS_VERSION-$pins_hash"
installed="$venv/.berth-installed" # written last: a venv without it is a broken install
examples="${ST_MAX_EXAMPLES:-15}"
# Seconds each pass may take, about twice what it takes on a busy two-core machine. The coverage
# pass sends about 500 cases: the first 480 go at once, the rest at the 8 a second of
# --rate-limit, then it waits out the rate limiter's minute, so about 65 s. The fuzzing pass
# takes about 4.5 s per example asked for. Both roles run at once, so the passes stay within
# about five minutes.
coverage_budget="${ST_COVERAGE_BUDGET:-150}"
fuzzing_budget="${ST_FUZZING_BUDGET:-$((10 + 8 * examples))}"

[ -n "${DOCKER_HOST:-}" ] ||
  die "DOCKER_HOST is not set: run it through scripts/with-test-env.sh (as \`make test\` does)"

# Debian's python3 with its venv module; schemathesis and exactly the pinned dependencies go
# into the venv. Only the package index is asked, and only when the venv is missing.
ensure_packages python3-venv curl jq
if [ ! -f "$installed" ]; then
  mkdir -p "$BERTH_TEST_CACHE"
  exec 9>"$BERTH_TEST_CACHE/schemathesis.lock"
  flock 9 # two runs at once install once
  if [ ! -f "$installed" ]; then
    log "installing schemathesis $SCHEMATHESIS_VERSION ($constraints) into $venv"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    if ! "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input \
      -c "$constraints" "schemathesis==$SCHEMATHESIS_VERSION"; then
      rm -rf "$venv"
      die "pip install schemathesis==$SCHEMATHESIS_VERSION -c $constraints failed"
    fi
    # A dependency the file does not name would float: the venv holds exactly the pins.
    if ! diff <(grep -v '^#' "$constraints") \
      <("$venv/bin/pip" freeze --disable-pip-version-check --exclude pip --exclude setuptools) >&2; then
      rm -rf "$venv"
      die "the venv does not hold exactly the packages of $constraints (diff above: < the file, > the venv)"
    fi
    touch "$installed"
  fi
  exec 9>&-
fi

cargo build --locked -q -p berth
berth="${CARGO_TARGET_DIR:-target}/debug/berth"

work=$(mktemp -d "${TMPDIR:-/tmp}/berth-schemathesis-XXXXXX")
instance="schemathesis-$(basename "$work" | tr -dc 'a-zA-Z0-9' | tr 'A-Z' 'a-z')"
servers=()
runs=() # the fuzz jobs, each the leader of its own process group

# stop_group PGID: TERM to the process group, KILL if it is still there after 10 s.
stop_group() {
  kill -TERM -- "-$1" 2>/dev/null || return 0
  for _ in $(seq 1 20); do
    kill -0 -- "-$1" 2>/dev/null || return 0
    sleep 0.5
  done
  kill -KILL -- "-$1" 2>/dev/null || true
}

cleanup() {
  local status=$? pid
  trap '' INT TERM
  for pid in "${runs[@]}"; do
    stop_group "$pid"
    wait "$pid" 2>/dev/null || true
  done
  for pid in "${servers[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  # What the fuzzing started on the engine, by instance label: containers (with their anonymous
  # volumes), then the named volumes of the workspaces (`volume prune` would skip those).
  local name filter ids left
  for name in user admin; do
    filter="label=berth.instance=$instance-$name"
    ids=$(docker ps -aq --filter "$filter") || log "could not list the containers of $instance-$name"
    # shellcheck disable=SC2086
    [ -z "$ids" ] || docker rm -f -v $ids >/dev/null || log "could not remove the containers of $instance-$name"
    ids=$(docker volume ls -q --filter "$filter") || log "could not list the volumes of $instance-$name"
    # shellcheck disable=SC2086
    [ -z "$ids" ] || docker volume rm -f $ids >/dev/null || log "could not remove the volumes of $instance-$name"
    left=$(docker ps -aq --filter "$filter" 2>/dev/null; docker volume ls -q --filter "$filter" 2>/dev/null) || true
    if [ -n "$left" ]; then
      log "error: left on the engine with $filter:" $left
      status=1
    fi
  done
  if [ "$status" -eq 0 ]; then
    rm -rf "$work"
  else
    log "kept for a look: the homes of the two servers, $work/user (ann) and $work/admin," \
      "each with its serve.stderr, berth.db and logs; the full output in $work/user.out and $work/admin.out"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# serve NAME [again]: starts `berth serve` in the home $work/NAME (fresh, unless `again`) on a
# loopback port; sets $url and, on a fresh home, $password (the admin's, printed on first start).
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
  [ "${2:-}" = again ] && return 0
  password=$(sed -n 's/^ *password: \([^ ]*\)$/\1/p' "$home/serve.stderr" | head -n1)
  [ -n "$password" ] || die "berth serve printed no admin password"
}

# stop_last_server: stops the server started last and waits for it.
stop_last_server() {
  kill -TERM "${servers[-1]}" 2>/dev/null || true
  wait "${servers[-1]}" 2>/dev/null || true
  unset 'servers[-1]'
}

# with_fleet HOME: turns on the fleet in HOME's main.yaml, syncing a repository of the SSH test
# machine m1 (or of no machine, outside the test environment), with m1's key and host key in
# place, so the fleet routes are fuzzed against real syncs and real SSH checks.
with_fleet() {
  local home=$1 inventory="$work/inventory" links="machines: []"
  local name host port user host_key client_id jump pattern
  ensure_packages git
  git init -q --initial-branch=main "$inventory"
  install -d -m 700 "$home/fleet" "$home/fleet/keys"
  if [ -n "${BERTH_TEST_MACHINES:-}" ] && [ -f "$BERTH_TEST_MACHINES" ]; then
    [ -n "${BERTH_TEST_SSH_KEYS:-}" ] || die "BERTH_TEST_MACHINES is set but not BERTH_TEST_SSH_KEYS"
    name=""
    IFS=$'\t' read -r name host port user host_key client_id jump \
      < <(awk -F'\t' '$1 == "m1"' "$BERTH_TEST_MACHINES") || true
    [ "$name" = m1 ] || die "no machine m1 in $BERTH_TEST_MACHINES"
    links=$(printf 'machines:\n  - id: m1\n    name: m1\n    host: %s\n    port: %s\n    user: %s\n    key: id_ed25519\n    client_id: %s\n' \
      "$host" "$port" "$user" "$client_id")
    install -m 600 "$BERTH_TEST_SSH_KEYS/id_ed25519" "$home/fleet/keys/id_ed25519"
    pattern=$host
    [ "$port" = 22 ] || pattern="[$host]:$port"
    printf '%s %s\n' "$pattern" "$host_key" >"$home/fleet/known_hosts"
  fi
  printf '%s\n' "$links" >"$inventory/links.yaml"
  GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null git -C "$inventory" add links.yaml
  GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null git -C "$inventory" \
    -c user.name=berth -c user.email=berth@example.invalid commit -q -m inventory
  grep -q '^  repository: null$' "$home/config/main.yaml" ||
    die "$home/config/main.yaml has no 'repository: null' line in its fleet section to replace"
  sed -i "s|^  repository: null\$|  repository: file://$inventory|" "$home/config/main.yaml"
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

# status_of URL TOKEN: the HTTP status of GET URL with TOKEN; a 429 is waited out (its
# Retry-After) and asked again, twice at most.
status_of() {
  local headers code wait_s
  headers=$(mktemp "$work/headers-XXXXXX")
  for _ in 1 2 3; do
    code=$(curl -sS -o /dev/null -D "$headers" -w '%{http_code}' --max-time 30 \
      -H "Authorization: Bearer $2" "$1") || code=000
    [ "$code" = 429 ] || break
    wait_s=$(sed -n 's/^retry-after: *\([0-9]*\).*/\1/Ip' "$headers" | head -n1)
    sleep "${wait_s:-5}"
  done
  rm -f "$headers"
  echo "$code"
}

checks=not_a_server_error,status_code_conformance,content_type_conformance
checks+=,response_headers_conformance,response_schema_conformance
# fuzz NAME URL TOKEN PROBE WHO: two passes, boundary values of valid input (coverage), then
# random valid and invalid input (fuzzing) for every operation, each within its budget; before
# and after each, GET PROBE with TOKEN must answer 200. Its last line says how it ended.
# schemathesis's "Authentication failed" warnings do not fail the run: they list operations that
# answered only 401/403, which for a valid token are the admin routes for a user, the wrong
# password of the login, and ids it cannot guess (a ping's client_id, a template not allowed);
# the probe is what tells a lost token.
fuzz() {
  local name=$1 base=$2 token=$3 probe=$4 who=$5 pass budget code status started
  local common=(
    run "$base/api/v1/openapi.json"
    --checks "$checks"
    --header "Authorization: Bearer $token"
    --exclude-path '/api/v1/workspaces/{id}/terminal'
    --exclude-path '/api/v1/grids/{id}/ws'
    --exclude-path '/api/v1/machines/{id}/terminal'
    --exclude-path '/api/v1/events'
    # Below the 600 a minute that api_rate_per_minute allows one caller.
    --rate-limit 480/m
    --request-timeout 30
    --generation-database none
    --no-color
  )
  [ -z "${ST_SEED:-}" ] || common+=(--seed "$ST_SEED")
  code=$(status_of "$base$probe" "$token")
  [ "$code" = 200 ] || {
    echo "FAILED as $who before the coverage pass: GET $probe with its token answered $code, not 200"
    return 1
  }
  for pass in coverage fuzzing; do
    local args=(--phases "$pass")
    if [ "$pass" = coverage ]; then
      args+=(--mode positive)
      budget=$coverage_budget
    else
      args+=(--max-examples "$examples")
      budget=$fuzzing_budget
    fi
    printf '\n--- the %s pass as %s (a budget of %s s)\n' "$pass" "$who" "$budget"
    started=$SECONDS
    status=0
    # --foreground keeps schemathesis in this job's process group, which the cleanup stops.
    (cd "$work/$name" && timeout --foreground -k 10 "$budget" "$venv/bin/st" "${common[@]}" "${args[@]}" </dev/null) ||
      status=$?
    case $status in
      0) ;;
      124 | 137)
        echo "FAILED as $who in the $pass pass: it ran out of its $budget s budget (ST_COVERAGE_BUDGET, ST_FUZZING_BUDGET)"
        return 1
        ;;
      *)
        echo "FAILED as $who in the $pass pass: schemathesis exited $status (its report above)"
        return 1
        ;;
    esac
    code=$(status_of "$base$probe" "$token")
    [ "$code" = 200 ] || {
      echo "FAILED as $who after the $pass pass: GET $probe with its token answered $code, not 200 (the pass may have run unauthenticated)"
      return 1
    }
    echo "the $pass pass as $who passed in $((SECONDS - started)) s; GET $probe still answers 200"
  done
  echo "passed as $who"
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

# The main.yaml admin has no client tokens: a login token. Its server runs a fleet, which is
# read at start-up: the first start writes the default main.yaml and prints the password.
serve admin
stop_last_server
with_fleet "$work/admin"
serve admin again
admin_url=$url
admin_token=$(admin_login)
api POST /api/v1/fleet/sync "$admin_token" | jq -e '.result == "succeeded" or .result == "unchanged"' >/dev/null ||
  die "the admin server's fleet did not sync: $(api GET /api/v1/fleet/sync "$admin_token")"

# Each fuzz job leads a process group of its own (job control on while they start), so the
# cleanup stops it with everything it started, also on Ctrl-C or TERM.
set -m
fuzz user "$user_url" "$user_token" /api/v1/workspaces "the user ann" >"$work/user.out" 2>&1 &
runs+=("$!")
fuzz admin "$admin_url" "$admin_token" /api/v1/users "the admin" >"$work/admin.out" 2>&1 &
runs+=("$!")
set +m
status=0
wait "${runs[0]}" || status=1
wait "${runs[1]}" || status=1
runs=()
printf '\n==> schemathesis as the user ann\n'
cat "$work/user.out"
printf '\n==> schemathesis as the admin\n'
cat "$work/admin.out"
printf '\n==> schemathesis: %s; %s\n' "$(tail -n1 "$work/user.out")" "$(tail -n1 "$work/admin.out")"
exit "$status"
