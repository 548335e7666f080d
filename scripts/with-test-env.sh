#!/usr/bin/env bash
# Runs a command with Berth's test services up, then stops the ones this run started:
#   - a private Docker Engine (scripts/docker-engine.sh) with the test image berth-test/base
#     and the stand-in k3s image berth-test/k3s-standin (scripts/cluster-image.sh),
#   - a throwaway PostgreSQL on a loopback port (scripts/postgres.sh),
#   - the SSH test machines (scripts/test-machines.sh), once the test image is loaded.
# Services that were already running are reused and left running.
# Usage: scripts/with-test-env.sh COMMAND [ARGS...]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

started=()
cleanup() {
  local status=$?
  local i service
  # Last started, first stopped: the machines go before the engine they run on.
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do
    service=${started[i]}
    "$here/$service" stop || echo "warning: could not stop $service" >&2
  done
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for service in docker-engine.sh postgres.sh; do
  if ! "$here/$service" status >/dev/null 2>&1; then
    started+=("$service")
    "$here/$service" start
  fi
  eval "$("$here/$service" env)"
done
"$here/test-image.sh"
"$here/cluster-image.sh"
# The cluster tests check kubeconfigs with the real kubectl.
ensure_kubectl
if ! "$here/test-machines.sh" status >/dev/null 2>&1; then
  started+=("test-machines.sh")
  "$here/test-machines.sh" start
fi
eval "$("$here/test-machines.sh" env)"

"$@"
