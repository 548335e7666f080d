# shellcheck shell=bash
# Shared helpers for Berth's host set-up scripts. Source it, do not run it.
#
# Every script is quiet on success, says what went wrong on failure, and may be run any number
# of times: each step checks whether its work is already done.

# Where the private test Docker Engine keeps its sockets/pid (RUN) and its images (CACHE).
BERTH_TEST_RUN="${BERTH_TEST_RUN:-/run/berth-test}"
BERTH_TEST_CACHE="${BERTH_TEST_CACHE:-/var/cache/berth-test}"
BERTH_DOCKER_SOCK="$BERTH_TEST_RUN/docker.sock"
BERTH_DOCKER_HOST="unix://$BERTH_DOCKER_SOCK"

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "${0##*/}" "$*" >&2
	exit 1
}

require_root() {
	[ "$(id -u)" -eq 0 ] || die "must run as root (it starts a Docker Engine / runs debootstrap)"
}

# ensure_packages PKG... installs the Debian packages that are missing; `apt-get update` runs
# only when something is missing, so a provisioned machine never touches the network.
ensure_packages() {
	local missing=() pkg
	for pkg in "$@"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$pkg")
	done
	[ "${#missing[@]}" -eq 0 ] && return 0
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null || die "apt-get update failed"
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
}

# The Docker client that talks to the private engine. Debian's docker.io client matches the
# 20.10 engine; a newer client found first on PATH (e.g. /usr/local/bin/docker) is pinned to
# the engine's API 1.41 so it never asks for features the engine lacks.
docker_cli() {
	local client=/usr/bin/docker
	[ -x "$client" ] || client="$(command -v docker)" || die "no docker client found"
	DOCKER_HOST="$BERTH_DOCKER_HOST" DOCKER_API_VERSION="${DOCKER_API_VERSION:-1.41}" \
		DOCKER_CONFIG="$BERTH_TEST_RUN/client" "$client" "$@"
}

# engine_answers succeeds when the private engine replies to an API call.
engine_answers() {
	[ -S "$BERTH_DOCKER_SOCK" ] && docker_cli version >/dev/null 2>&1
}

require_engine() {
	engine_answers || die "the test Docker Engine is not running at $BERTH_DOCKER_HOST; run: scripts/docker-engine.sh start"
}
