#!/usr/bin/env bash
# Browser tests: Playwright (npm playwright-core) driving Debian's chromium against the real
# `berth serve`. Installs chromium and the npm packages when missing, builds berth, and needs the
# test services (run it through scripts/with-test-env.sh, as `make test` does).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_packages chromium
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  ensure_packages nodejs npm
fi
cargo build --locked -q -p berth
cd tests/e2e
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
  touch node_modules
fi
npm test
