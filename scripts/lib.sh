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

# apt_mirror SUITE prints the first Debian mirror of the machine's apt sources: a deb822 stanza
# or a one-line `deb` entry whose suite is SUITE itself (not -security or -updates, which
# debootstrap cannot use).
apt_mirror() {
	local suite="$1" f
	# apt's own order: sources.list, then sources.list.d/ alphabetically.
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*; do
		[ -f "$f" ] || continue
		case "$f" in
		*.sources) mirror_deb822 "$suite" "$f" ;;
		*.list) mirror_one_line "$suite" "$f" ;;
		esac
	done
}

mirror_deb822() {
	awk -v suite="$1" '
		function flush() {
			if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && uris != "") {
				split(uris, u, " "); print u[1]; found = 1; exit
			}
			types = suites = uris = ""
		}
		/^[[:space:]]*$/ { flush(); next }
		/^[[:space:]]*#/ { next }
		tolower($1) == "types:"  { $1 = ""; types = $0 }
		tolower($1) == "suites:" { $1 = ""; suites = $0 }
		tolower($1) == "uris:"   { $1 = ""; uris = $0 }
		END { if (!found) flush() }
	' "$2"
}

mirror_one_line() {
	awk -v suite="$1" '
		$1 == "deb" {
			i = 2
			if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
			if ($(i + 1) == suite) { print $i; exit }
		}
	' "$2"
}

# debootstrap_tarball SUITE INCLUDE TARBALL debootstraps a minimal Debian SUITE with the
# comma-separated packages INCLUDE from the machine's mirror (BERTH_TEST_MIRROR overrides it)
# and writes the root file system as the tarball TARBALL (under $BERTH_TEST_CACHE), ready for
# `docker import`.
debootstrap_tarball() {
	local suite="$1" include="$2" tarball="$3" mirror root start
	mirror="${BERTH_TEST_MIRROR:-$(apt_mirror "$suite" | head -n 1)}"
	[ -n "$mirror" ] ||
		die "no Debian $suite mirror found in /etc/apt/sources.list{,.d/*.sources,.d/*.list}; set BERTH_TEST_MIRROR"
	ensure_packages debootstrap debian-archive-keyring
	mkdir -p "$BERTH_TEST_CACHE"
	root="$(mktemp -d "$BERTH_TEST_CACHE/rootfs.XXXXXX")"
	# shellcheck disable=SC2064 # expand now: $root is local
	trap "rm -rf '$root' '$tarball.partial'" EXIT
	log "debootstrap $suite from $mirror (minbase + $include)"
	start=$SECONDS
	debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" \
		>"$BERTH_TEST_CACHE/debootstrap.log" 2>&1 ||
		die "debootstrap failed; see $BERTH_TEST_CACHE/debootstrap.log (tail: $(tail -n 3 "$BERTH_TEST_CACHE/debootstrap.log" | tr '\n' ' '))"
	# Downloaded packages and apt lists are dead weight in the image.
	rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
	tar -C "$root" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
		-cf "$tarball.partial" .
	mv "$tarball.partial" "$tarball"
	rm -rf "$root"
	trap - EXIT
	log "built $tarball in $((SECONDS - start))s"
}

# ensure_kubectl makes sure a kubectl is on PATH for the cluster tests: the one the machine has,
# or else Debian's kubernetes-client. (A machine whose kubectl comes from another package, such
# as the Google Cloud CLI, keeps it: kubernetes-client would collide with its /usr/bin/kubectl.)
ensure_kubectl() {
	command -v kubectl >/dev/null 2>&1 || ensure_packages kubernetes-client
}
