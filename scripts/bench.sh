#!/usr/bin/env bash
# `make bench`: every benchmark against its baseline in the same run, on the private test
# Docker Engine; writes the figures and the machine into BENCHMARKS.md.
#
#   scripts/bench.sh                      every benchmark; BENCHMARKS.md is written anew
#   scripts/bench.sh PACKAGE:BENCH ...    only these; their sections of BENCHMARKS.md are
#                                         replaced (or added at the end), the rest is kept
#
# Each benchmark's section sits between `<!-- bench PACKAGE:BENCH -->` and
# `<!-- end bench PACKAGE:BENCH -->` lines, so a partial run knows what to replace.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

# package:bench target, in the order they appear in BENCHMARKS.md.
all=(berth-core:start berth-server:ping berth-server:terminal berth-server:ssh_terminals berth-fleet:enrollment berth:operations berth:startup)
# How many SSH servers the fleet benchmark verifies.
FLEET_MACHINES=100

# run_one ENTRY: runs one benchmark with what it needs besides the test services (called by
# scripts/with-test-env.sh, so the engine, the image and the test machines are up); prints its
# Markdown on stdout.
run_one() {
  local entry=$1 package=${1%%:*} bench=${1#*:}
  case "$entry" in
  berth-server:ssh_terminals)
    # `ssh -tt` and the OpenSSH client against the gateway are baselines and drivers.
    ensure_packages openssh-client
    ;;
  berth-fleet:enrollment)
    # pssh is the baseline; 100 more sshds (one container each), removed afterwards.
    ensure_packages pssh openssh-client
    trap 'scripts/test-machines.sh stop-bench' EXIT
    scripts/test-machines.sh start-bench "$FLEET_MACHINES"
    eval "$(scripts/test-machines.sh env-bench)"
    ;;
  berth:operations)
    # `uname -a` on the same 100 sshds through Berth's API, pssh, pdsh and ansible.
    ensure_packages pssh pdsh ansible-core openssh-client git
    trap 'scripts/test-machines.sh stop-bench' EXIT
    scripts/test-machines.sh start-bench "$FLEET_MACHINES"
    eval "$(scripts/test-machines.sh env-bench)"
    ;;
  berth:startup)
    # The development build is the baseline.
    cargo build --locked -q -p berth
    ;;
  esac
  cargo bench --locked -q -p "$package" --bench "$bench"
}

if [ "${1:-}" = --run-one ]; then
  run_one "$2"
  exit
fi

benches=("$@")
partial=1
if [ "${#benches[@]}" -eq 0 ]; then
  benches=("${all[@]}")
  partial=0
fi
for entry in "${benches[@]}"; do
  [[ " ${all[*]} " == *" $entry "* ]] || die "unknown benchmark $entry (known: ${all[*]})"
done
if [ "$partial" -eq 1 ] && [ ! -f BENCHMARKS.md ]; then
  die "BENCHMARKS.md is missing: run every benchmark (scripts/bench.sh without arguments) first"
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for entry in "${benches[@]}"; do
  echo "==> cargo bench -p ${entry%%:*} --bench ${entry#*:}" >&2
  {
    echo "<!-- bench $entry -->"
    if [ "$partial" -eq 1 ]; then
      echo "_Run on $(date -u +%Y-%m-%d) alone (\`scripts/bench.sh $entry\`), on the machine above._"
      echo
    fi
    scripts/with-test-env.sh "$0" --run-one "$entry"
    echo "<!-- end bench $entry -->"
  } >"$out/$entry.md"
done

if [ "$partial" -eq 1 ]; then
  for entry in "${benches[@]}"; do
    # Replace the lines from the start marker to the end marker, or append the section.
    awk -v entry="$entry" -v section="$out/$entry.md" '
      function emit() { while ((getline line < section) > 0) print line; done = 1 }
      $0 == "<!-- bench " entry " -->" { skipping = 1; emit(); next }
      skipping && $0 == "<!-- end bench " entry " -->" { skipping = 0; next }
      !skipping { print }
      END { if (!done) { print ""; emit() } }
    ' BENCHMARKS.md >"$out/BENCHMARKS.md"
    mv "$out/BENCHMARKS.md" BENCHMARKS.md
  done
  echo "BENCHMARKS.md: ${benches[*]} updated" >&2
  exit 0
fi

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
    cat "$out/$entry.md"
  done
} >BENCHMARKS.md
echo "BENCHMARKS.md updated" >&2
