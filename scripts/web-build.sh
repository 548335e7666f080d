#!/usr/bin/env bash
# Type-checks, tests and bundles the browser code in web/ into web/dist, which the Rust build
# embeds. The bundles are kept in the repository, so building Berth needs no Node.js; run this
# after changing anything under web/ and commit web/dist with the change.
#
#   scripts/web-build.sh          install (when needed), check, test, rebuild web/dist
#   scripts/web-build.sh --check  the same, but fail instead of writing if web/dist is stale
#
# `npm ci` runs only when node_modules is missing or package-lock.json changed since the last
# install, so a second run touches no network. Needs Node.js >= 18 and npm (Debian: nodejs, npm).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

mode=build
case "${1:-}" in
"") ;;
--check) mode=check ;;
*) die "usage: scripts/web-build.sh [--check]" ;;
esac

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	[ "$(id -u)" -eq 0 ] || die "node and npm are missing; install them: sudo apt-get install nodejs npm"
	ensure_packages nodejs npm
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		die "node or npm still missing after installing nodejs and npm"
	fi
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 18 ] || die "node $(node --version) is too old; web/ needs Node.js 18 or newer"

cd web
stamp=node_modules/.berth-package-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
	log "installing npm packages (npm ci)"
	npm ci --no-audit --no-fund --loglevel=error || die "npm ci failed in web/"
	printf '%s\n' "$want" >"$stamp"
fi

npm run --silent check || die "type check failed (npm run check in web/)"
npm test --silent || die "tests failed (npm test in web/)"

if [ "$mode" = check ]; then
	fresh="$(mktemp -d)"
	trap 'rm -rf "$fresh"' EXIT
	node tools/build.mjs --outdir "$fresh" >/dev/null || die "bundling failed (node tools/build.mjs in web/)"
	diff -r dist "$fresh" >/dev/null ||
		die "web/dist is stale: run scripts/web-build.sh and commit web/dist"
	log "web/dist is up to date"
else
	npm run --silent build || die "bundling failed (npm run build in web/)"
fi
