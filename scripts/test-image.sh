#!/usr/bin/env bash
# Loads the test image `berth-test/base` into the private test Docker Engine without any image
# registry: debootstrap a minimal Debian bookworm from the machine's own apt mirror, keep it as a
# tarball under $BERTH_TEST_CACHE, and `docker import` it. A second run with the tarball cached
# only re-imports; a run when the engine already has the image of this package list does nothing.
# The image carries the package list's hash as the label berth.test.packages, so an image built
# from an older list (or without the label) is replaced: imported again under the same name
# (containers still running on the old one keep it until they are removed).
#
# Packages: bash, tmux, procps, coreutils for workspaces; openssh-server for the SSH test
# machines (scripts/test-machines.sh); git so a test machine serves a bare repository over SSH
# (git-upload-pack through sshd) for the fleet's ssh:// inventory tests.
#
# Needs the engine: scripts/docker-engine.sh start. BERTH_TEST_MIRROR overrides the mirror.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IMAGE=berth-test/base
SUITE=bookworm
INCLUDE=bash,tmux,procps,openssh-server,coreutils,git
# The package list is part of the tarball's name and the image's label, so changing it builds a
# new tarball and a new image.
PACKAGES_HASH="$(printf %s "$INCLUDE" | sha256sum | cut -c1-12)"
TARBALL="$BERTH_TEST_CACHE/base-$SUITE-$PACKAGES_HASH.tar"
LABEL=berth.test.packages

# The first Debian mirror of the machine's apt sources: a deb822 stanza or a one-line `deb`
# entry whose suite is $SUITE itself (not -security or -updates, which debootstrap cannot use).
apt_mirror() {
	local f
	# apt's own order: sources.list, then sources.list.d/ alphabetically.
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*; do
		[ -f "$f" ] || continue
		case "$f" in
		*.sources) mirror_deb822 "$f" ;;
		*.list) mirror_one_line "$f" ;;
		esac
	done
}

mirror_deb822() {
	awk -v suite="$SUITE" '
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
	' "$1"
}

mirror_one_line() {
	awk -v suite="$SUITE" '
		$1 == "deb" {
			i = 2
			if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
			if ($(i + 1) == suite) { print $i; exit }
		}
	' "$1"
}

build_tarball() {
	local mirror root start
	mirror="${BERTH_TEST_MIRROR:-$(apt_mirror | head -n 1)}"
	[ -n "$mirror" ] ||
		die "no Debian $SUITE mirror found in /etc/apt/sources.list{,.d/*.sources,.d/*.list}; set BERTH_TEST_MIRROR"
	ensure_packages debootstrap debian-archive-keyring
	mkdir -p "$BERTH_TEST_CACHE"
	root="$(mktemp -d "$BERTH_TEST_CACHE/rootfs.XXXXXX")"
	# shellcheck disable=SC2064 # expand now: $root is local
	trap "rm -rf '$root' '$TARBALL.partial'" EXIT
	log "debootstrap $SUITE from $mirror (minbase + $INCLUDE)"
	start=$SECONDS
	debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$root" "$mirror" \
		>"$BERTH_TEST_CACHE/debootstrap.log" 2>&1 ||
		die "debootstrap failed; see $BERTH_TEST_CACHE/debootstrap.log (tail: $(tail -n 3 "$BERTH_TEST_CACHE/debootstrap.log" | tr '\n' ' '))"
	# Downloaded packages and apt lists are dead weight in the image.
	rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
	tar -C "$root" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
		-cf "$TARBALL.partial" .
	mv "$TARBALL.partial" "$TARBALL"
	rm -rf "$root"
	trap - EXIT
	log "built $TARBALL in $((SECONDS - start))s"
}

require_root
require_engine
# The label of the image the engine has now: empty when it has none or no image at all.
old_id="$(docker_cli image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
if [ -n "$old_id" ]; then
	have="$(docker_cli image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$IMAGE" 2>/dev/null || true)"
	[ "$have" = "$PACKAGES_HASH" ] && exit 0
	log "$IMAGE was built from another package list (label ${have:-none}, now $PACKAGES_HASH): replacing it"
fi
[ -s "$TARBALL" ] || build_tarball
log "importing $TARBALL as $IMAGE"
docker_cli import --change 'CMD ["/bin/bash"]' --change "LABEL $LABEL=$PACKAGES_HASH" \
	- "$IMAGE" <"$TARBALL" >/dev/null ||
	die "docker import of $TARBALL failed"
# The old image, untagged now; kept while a container still uses it.
if [ -n "$old_id" ]; then
	docker_cli image rm "$old_id" >/dev/null 2>&1 || true
fi
