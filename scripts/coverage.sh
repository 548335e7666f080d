#!/usr/bin/env bash
# `make coverage`: every Rust test under `cargo llvm-cov` (source-based coverage), with the test
# services up as in `make test`, then a per-crate line summary in target/coverage/summary.txt and
# an HTML report in target/coverage/html. The browser tests and schemathesis stay out: they drive
# a release-like server from outside and add little line coverage for their cost. Not part of
# `make test`, which stays as fast as it is. A failing test makes it fail, after the summary of
# what ran is written. See docs/coverage.md.
#
# Environment: COVERAGE_DIR (default target/coverage) is where the summary and HTML go;
# CARGO_TARGET_DIR is honoured (the instrumented build goes to its llvm-cov-target/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

# Pinned so that a run on a fresh machine measures with the same tool as the figures in
# docs/coverage.md; `--locked` builds it with the dependency versions it was released with.
LLVM_COV_VERSION=0.8.5
out="${COVERAGE_DIR:-target/coverage}"

if ! command -v cargo >/dev/null; then
  echo "cargo is not installed: install the Rust toolchain (rustup) first" >&2
  exit 1
fi
step() { printf '\n==> %s\n' "$*"; }

# A machine-wide `rustup` toolchain may lack llvm-tools (llvm-profdata, llvm-cov); adding an
# installed component is a no-op.
step "llvm-tools and cargo-llvm-cov $LLVM_COV_VERSION"
rustup component add llvm-tools >/dev/null 2>&1 || die "rustup component add llvm-tools failed"
if ! cargo install --list | grep -qx "cargo-llvm-cov v$LLVM_COV_VERSION:"; then
  log "installing cargo-llvm-cov $LLVM_COV_VERSION"
  cargo install cargo-llvm-cov --locked --version "$LLVM_COV_VERSION" ||
    die "cargo install cargo-llvm-cov failed"
fi
ensure_packages jq
# The same tools the tests call as in `make test` (scripts/test.sh).
ensure_packages asciinema git openssh-client age

step "tests under cargo llvm-cov (with a private Docker Engine and PostgreSQL)"
# Without --no-clean, cargo llvm-cov first removes the profiles of an earlier run, which would
# otherwise be merged into this one's figures.
status=0
scripts/with-test-env.sh cargo llvm-cov --workspace --locked --no-fail-fast --no-report ||
  status=$?

step "report"
mkdir -p "$out"
rm -rf "$out/html"
cargo llvm-cov report --html --output-dir "$out" >/dev/null
cargo llvm-cov report --json --summary-only --output-path "$out/coverage.json"
# Files are grouped by the crate directory they live in (crates/NAME/...); lines are what
# llvm-cov counts as lines with code, so blank lines and comments do not dilute the figure.
jq -r --arg root "$PWD/" '
  [.data[0].files[]
   | select(.filename | startswith($root + "crates/"))
   | {crate: (.filename | ltrimstr($root + "crates/") | split("/")[0]),
      count: .summary.lines.count, covered: .summary.lines.covered}]
  | group_by(.crate)
  | (map({crate: .[0].crate, count: (map(.count) | add), covered: (map(.covered) | add)})) as $crates
  | ($crates + [{crate: "TOTAL", count: ($crates | map(.count) | add),
                 covered: ($crates | map(.covered) | add)}])[]
  | [.crate, (.covered | tostring), (.count | tostring),
     (if .count == 0 then "-" else ((.covered * 1000 / .count | round) / 10 | tostring) end)]
  | @tsv' "$out/coverage.json" |
  awk -F'\t' 'BEGIN { printf "%-16s %8s %8s %8s\n", "crate", "covered", "lines", "lines %" }
              { printf "%-16s %8s %8s %8s\n", $1, $2, $3, $4 }' >"$out/summary.txt"
cat "$out/summary.txt"
echo "HTML report: $out/html/index.html"
if [ "$status" -ne 0 ]; then
  echo "coverage: some tests failed (exit status $status); the figures above cover what ran" >&2
fi
exit "$status"
