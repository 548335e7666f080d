#!/usr/bin/env bash
# The suites that need the test services, run by scripts/test.sh inside scripts/with-test-env.sh:
# every Rust test, the OpenAPI document checked against the running server (schemathesis), then
# the browser tests. All run even when one fails; the exit status says whether all passed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
status=0
cargo test --workspace --locked --no-fail-fast || status=1
printf '\n==> the OpenAPI document against the running server (schemathesis)\n'
scripts/schemathesis.sh || status=1
printf '\n==> browser tests (Playwright, Debian chromium)\n'
scripts/e2e.sh || status=1
exit "$status"
