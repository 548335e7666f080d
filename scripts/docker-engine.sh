#!/usr/bin/env bash
# A private Docker Engine for Berth's tests: its own socket, data root, exec root, containerd
# namespace and config file, no bridge, no iptables, no IP forwarding. It never touches
# /var/run/docker.sock or /var/lib/docker, so it runs next to any other engine.
#
#   scripts/docker-engine.sh start    start it (nothing to do when it already answers)
#   scripts/docker-engine.sh stop     stop it and the containerd it supervises
#   scripts/docker-engine.sh status   exit 0 when it answers, 1 otherwise
#   scripts/docker-engine.sh env      print `export DOCKER_HOST=...` for eval
#
# BERTH_TEST_RUN (default /run/berth-test) and BERTH_TEST_CACHE (default /var/cache/berth-test)
# move its run-time and persistent directories.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PIDFILE="$BERTH_TEST_RUN/dockerd.pid"
LOGFILE="$BERTH_TEST_RUN/dockerd.log"
START_TIMEOUT="${BERTH_TEST_ENGINE_TIMEOUT:-60}"

engine_pid() {
	local pid
	[ -s "$PIDFILE" ] || return 1
	pid="$(cat "$PIDFILE")"
	[ -d "/proc/$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] || return 1
	echo "$pid"
}

# overlay2 needs a filesystem that supports it under the data root (not overlay itself, not
# some network filesystems); vfs always works but copies every layer, so it is the fallback.
storage_driver() {
	local probe="$BERTH_TEST_CACHE/overlay-probe" ok=1
	rm -rf "$probe"
	mkdir -p "$probe"/{lower,upper,work,merged}
	if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
		"$probe/merged" 2>/dev/null; then
		umount "$probe/merged"
		ok=0
	fi
	rm -rf "$probe"
	if [ "$ok" -eq 0 ]; then echo overlay2; else echo vfs; fi
}

start() {
	require_root
	ensure_packages docker.io
	if engine_answers; then return 0; fi
	local pid
	if pid="$(engine_pid)"; then
		die "dockerd (pid $pid) is running but does not answer at $BERTH_DOCKER_HOST; run: $0 stop"
	fi
	mkdir -p "$BERTH_TEST_RUN" "$BERTH_TEST_CACHE/docker"
	# An empty config file so a host /etc/docker/daemon.json cannot change this engine.
	echo '{}' >"$BERTH_TEST_RUN/daemon.json"
	local driver
	driver="$(storage_driver)"
	: >"$LOGFILE"
	# setsid: the engine outlives this script and its terminal. The containerd namespaces keep
	# its containers apart from another engine's when both share a system containerd.
	setsid dockerd \
		--config-file "$BERTH_TEST_RUN/daemon.json" \
		-H "$BERTH_DOCKER_HOST" \
		--data-root "$BERTH_TEST_CACHE/docker" \
		--exec-root "$BERTH_TEST_RUN/exec" \
		--pidfile "$PIDFILE" \
		--containerd-namespace berth-test \
		--containerd-plugins-namespace berth-test-plugins \
		--cgroup-parent /berth-test \
		--storage-driver "$driver" \
		--bridge=none --iptables=false --ip-masq=false --ip-forward=false \
		--log-level warn \
		</dev/null >>"$LOGFILE" 2>&1 &
	local pid=$! deadline=$((SECONDS + START_TIMEOUT)) why
	until engine_answers; do
		why=""
		kill -0 "$pid" 2>/dev/null || why="dockerd exited"
		((SECONDS < deadline)) || why="dockerd did not answer within ${START_TIMEOUT}s"
		if [ -n "$why" ]; then
			printf '%s: error: %s; last lines of %s:\n' "${0##*/}" "$why" "$LOGFILE" >&2
			tail -n 20 "$LOGFILE" >&2
			kill -TERM "$pid" 2>/dev/null || true
			exit 1
		fi
		sleep 0.2
	done
}

# Wait up to $2 seconds for process $1 to exit.
wait_gone() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[ -d "/proc/$1" ] || return 0
		sleep 0.1
	done
	return 1
}

# dockerd leaves mounts behind when it exits: its data root bound onto itself and network
# namespace handles under the exec root. Only called once no engine answers on the socket.
unmount_leftovers() {
	local mnt
	awk -v run="$BERTH_TEST_RUN/" -v data="$BERTH_TEST_CACHE/docker" \
		'index($2, run) == 1 || $2 == data || index($2, data "/") == 1 { print $2 }' /proc/self/mounts |
		sort -r | while read -r mnt; do
		umount "$mnt" 2>/dev/null || umount -l "$mnt" || log "could not unmount $mnt"
	done
}

stop() {
	local pid children c
	pid="$(engine_pid)" || {
		rm -f "$PIDFILE"
		engine_answers || unmount_leftovers
		return 0
	}
	# The supervised containerd is a child of dockerd; remember it in case dockerd dies first.
	children="$(pgrep -P "$pid" || true)"
	kill -TERM "$pid"
	if ! wait_gone "$pid" 30; then
		log "dockerd (pid $pid) ignored SIGTERM for 30s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
		wait_gone "$pid" 5 || die "dockerd (pid $pid) survived SIGKILL"
	fi
	for c in $children; do
		kill -TERM "$c" 2>/dev/null || continue
		wait_gone "$c" 10 || kill -KILL "$c" 2>/dev/null || true
	done
	rm -f "$PIDFILE" "$BERTH_DOCKER_SOCK"
	unmount_leftovers
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) engine_answers ;;
env) echo "export DOCKER_HOST=$BERTH_DOCKER_HOST" ;;
*)
	echo "usage: $0 start|stop|status|env" >&2
	exit 2
	;;
esac
