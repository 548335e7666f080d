#!/usr/bin/env bash
# `make test`: formatting, lints and every test, on a fresh Debian 12 machine as on a used one.
# Installs what the tests need (Docker Engine, debootstrap, PostgreSQL, Node packages) through
# the scripts it calls, starts private test services, and stops them at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v cargo >/dev/null; then
  echo "cargo is not installed: install the Rust toolchain (rustup) first" >&2
  exit 1
fi

step() { printf '\n==> %s\n' "$*"; }
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

# Tools the tests call: asciinema replays recordings to check their format; the fleet mirrors
# its inventory with git (over OpenSSH for ssh:// repositories) and opens secrets.ini with age.
# The package test builds the .deb (dpkg-dev, binutils' strip) and runs lintian on it.
ensure_packages asciinema git openssh-client age dpkg-dev binutils lintian

step "docs: links, YAML examples, commands"
scripts/doc-check.sh
step "helm: lint, template, validate"
scripts/helm-check.sh
step "web: type check, unit tests, and web/dist up to date"
scripts/web-build.sh --check
step "cargo fmt --check"
cargo fmt --all --check
step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "build the tests"
cargo test --workspace --locked --no-run
step "tests (with a private Docker Engine and PostgreSQL), then the browser tests"
scripts/with-test-env.sh scripts/test-suites.sh
