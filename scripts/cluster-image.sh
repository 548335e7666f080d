#!/usr/bin/env bash
# Loads `berth-test/k3s-standin` into the private test Docker Engine: the image that plays the
# part of a k3s server container in the cluster provider's tests, since no k3s image and no
# Kubernetes API server can be had on the machines the tests run on. Built like
# scripts/test-image.sh, without any image registry: debootstrap a minimal Debian bookworm with
# python3 and openssl from the machine's own apt mirror, keep it as a tarball under
# $BERTH_TEST_CACHE, add scripts/k3s-standin.py as /bin/k3s (the entry point rancher/k3s has)
# and `docker import` it.
#
# A run when the engine already has the image of this package list and stand-in does nothing;
# the image carries their hash as the label berth.test.packages and is replaced when either
# changes. The image declares /var/lib/rancher/k3s a volume, as rancher/k3s does, so the
# provider's removal of anonymous volumes is exercised.
#
# Needs the engine: scripts/docker-engine.sh start. BERTH_TEST_MIRROR overrides the mirror.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

IMAGE=berth-test/k3s-standin
SUITE=bookworm
INCLUDE=python3,openssl,ca-certificates
STANDIN="$here/k3s-standin.py"
PACKAGES_HASH="$(printf %s "$INCLUDE" | sha256sum | cut -c1-12)"
TARBALL="$BERTH_TEST_CACHE/k3s-standin-$SUITE-$PACKAGES_HASH.tar"
IMAGE_HASH="$( (printf %s "$INCLUDE"; cat "$STANDIN") | sha256sum | cut -c1-12)"
LABEL=berth.test.packages

require_root
require_engine
[ -r "$STANDIN" ] || die "missing $STANDIN"
old_id="$(docker_cli image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
if [ -n "$old_id" ]; then
	have="$(docker_cli image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$IMAGE" 2>/dev/null || true)"
	[ "$have" = "$IMAGE_HASH" ] && exit 0
	log "$IMAGE was built from another package list or stand-in (label ${have:-none}, now $IMAGE_HASH): replacing it"
fi
[ -s "$TARBALL" ] || debootstrap_tarball "$SUITE" "$INCLUDE" "$TARBALL"

# The cached root file system plus the stand-in, as one tarball for `docker import`.
work="$(mktemp -d "$BERTH_TEST_CACHE/k3s-standin.XXXXXX")"
# shellcheck disable=SC2064 # expand now: $work is local
trap "rm -rf '$work'" EXIT
mkdir -p "$work/root/usr/bin"
install -m 0755 "$STANDIN" "$work/root/usr/bin/k3s"
cp "$TARBALL" "$work/image.tar"
tar -C "$work/root" --numeric-owner --owner=0 --group=0 -rf "$work/image.tar" ./usr/bin/k3s
log "importing $IMAGE"
docker_cli import \
	--change 'ENTRYPOINT ["/bin/k3s"]' \
	--change 'CMD ["server"]' \
	--change 'VOLUME ["/var/lib/rancher/k3s"]' \
	--change "LABEL $LABEL=$IMAGE_HASH" \
	- "$IMAGE" <"$work/image.tar" >/dev/null ||
	die "docker import of $work/image.tar failed"
if [ -n "$old_id" ]; then
	docker_cli image rm "$old_id" >/dev/null 2>&1 || true
fi
