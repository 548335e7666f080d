#!/usr/bin/env bash
# `make bench`: every benchmark against its baseline in the same run, on the private test
# Docker Engine; writes the figures and the machine into BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# package:bench target, in the order they appear in BENCHMARKS.md.
benches=(berth-core:start berth-server:ping berth-server:terminal)

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for entry in "${benches[@]}"; do
  package=${entry%%:*}
  bench=${entry#*:}
  echo "==> cargo bench -p $package --bench $bench" >&2
  scripts/with-test-env.sh cargo bench --locked -q -p "$package" --bench "$bench" >"$out/$bench.md"
done

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
  echo "# Benchmarks"
  echo
  echo "Produced by \`make bench\` (scripts/bench.sh) on $(date -u +%Y-%m-%d). Each benchmark runs its"
  echo "baseline in the same run, interleaved, so the ratios hold on a busy machine better than the"
  echo "absolute figures do."
  echo
  echo "Machine: $(nproc) cores ($cpu), $(free -g | awk '/^Mem:/ {print $2}') GiB memory,"
  echo "$(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r), Docker Engine"
  echo "$(DOCKER_API_VERSION=1.41 docker -H unix:///run/berth-test/docker.sock version --format '{{.Server.Version}}' 2>/dev/null || echo unknown) (private test engine, overlay2)."
  for entry in "${benches[@]}"; do
    echo
    cat "$out/${entry#*:}.md"
  done
} >BENCHMARKS.md
echo "BENCHMARKS.md updated" >&2
