#!/usr/bin/env bash
# The suites that need the test services, run by scripts/test.sh inside scripts/with-test-env.sh:
# every Rust test, then the browser tests. Both run even when the first fails; the exit status
# says whether all passed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
status=0
cargo test --workspace --locked --no-fail-fast || status=1
printf '\n==> browser tests (Playwright, Debian chromium)\n'
scripts/e2e.sh || status=1
exit "$status"
