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

require_root
require_engine
# The label of the image the engine has now: empty when it has none or no image at all.
old_id="$(docker_cli image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
if [ -n "$old_id" ]; then
	have="$(docker_cli image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$IMAGE" 2>/dev/null || true)"
	[ "$have" = "$PACKAGES_HASH" ] && exit 0
	log "$IMAGE was built from another package list (label ${have:-none}, now $PACKAGES_HASH): replacing it"
fi
[ -s "$TARBALL" ] || debootstrap_tarball "$SUITE" "$INCLUDE" "$TARBALL"
log "importing $TARBALL as $IMAGE"
docker_cli import --change 'CMD ["/bin/bash"]' --change "LABEL $LABEL=$PACKAGES_HASH" \
	- "$IMAGE" <"$TARBALL" >/dev/null ||
	die "docker import of $TARBALL failed"
# The old image, untagged now; kept while a container still uses it.
if [ -n "$old_id" ]; then
	docker_cli image rm "$old_id" >/dev/null 2>&1 || true
fi
