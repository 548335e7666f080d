#!/usr/bin/env bash
# `make run`: builds Berth and starts `berth serve` with its home in ./.berth-home (ignored by
# git), on a private Docker Engine so workspaces work out of the box. On first start Berth
# prints the admin password. Stop it with Ctrl-C; the engine keeps running for the next start
# (`scripts/docker-engine.sh stop` stops it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v cargo >/dev/null; then
  echo "cargo is not installed: install the Rust toolchain (rustup) first" >&2
  exit 1
fi
scripts/docker-engine.sh start
eval "$(scripts/docker-engine.sh env)"
scripts/test-image.sh
cargo build --release --locked -p berth
export BERTH_HOME="${BERTH_HOME:-$PWD/.berth-home}"
exec target/release/berth serve "$@"
