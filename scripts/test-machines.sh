#!/usr/bin/env bash
# SSH test machines for Berth's tests: real OpenSSH servers (Debian bookworm's sshd) in
# containers from the test image berth-test/base on the private test Docker Engine.
#
#   scripts/test-machines.sh start [N]  start N plain machines (default 3) and the jump pair
#   scripts/test-machines.sh stop       remove the machines' containers and their files
#   scripts/test-machines.sh status     exit 0 when every machine's sshd answers, 1 otherwise
#   scripts/test-machines.sh env        print `export BERTH_TEST_MACHINES=... BERTH_TEST_SSH_KEYS=...`
#   scripts/test-machines.sh start-bench [N]  start N bench machines (default 100), see below
#   scripts/test-machines.sh stop-bench       remove the bench machines' containers and files
#   scripts/test-machines.sh status-bench     exit 0 when every bench machine's sshd answers
#   scripts/test-machines.sh env-bench        print `export BERTH_BENCH_MACHINES=...`
#
# Plain machines (`m1`, `m2`, ...): `--network host` containers whose sshd listens on its own
# loopback address 127.0.20.<i>, port 22.
#
# The jump pair: `jump` is reachable from this host, `hidden` only through `jump`. Both run with
# `--network none`, so each has a network namespace of its own (created by `docker run` here and
# removed with its container). This script wires them with veth pairs it creates:
#   host  btm-j0 10.217.1.1/30  <->  jump   10.217.1.2/30
#   jump  btm-h0 10.217.2.1/30  <->  hidden 10.217.2.2/30
# The host gets an `unreachable` route for 10.217.0.0/16 (so nothing for these addresses leaves
# through a default route) and the jump namespace does not forward, so a connection from this
# host to `hidden` fails at once ("network unreachable"), while `jump`'s
# sshd reaches it for a direct-tcpip channel. A plain machine reaches `jump` too (it shares the
# host's network), so m1 -> jump -> hidden is a two-hop chain.
#
# Every machine has its own ed25519 host key and its own /etc/berth/client_id (a UUID); both are
# generated once and cached under $BERTH_TEST_CACHE/ssh-machines, so known_hosts entries stay
# valid across restarts. The login user `berth` accepts three client keys (ed25519, ECDSA P-256,
# RSA 3072; mode 0600, also cached) and an ed25519 key encrypted with the passphrase in the file
# `passphrase` next to it. Password and keyboard-interactive auth are off; MaxStartups is raised
# so parallel tests do not get dropped.
#
# BERTH_TEST_MACHINES names a tab-separated file, one machine a line:
#   name  address  port  user  host-key-line  client-id  jump (the machine to go through, or -)
# BERTH_TEST_SSH_KEYS names the directory with id_ed25519, id_ecdsa, id_rsa, id_ed25519_enc,
# passphrase, and `other_ed25519` (a key no machine accepts).
#
# Bench machines (`b1` ... `bN`, for the fleet's enrollment benchmark): like the plain machines,
# one `--network host` container each with its own sshd on 127.0.21.<i> port 22, its own host
# key and its own /etc/berth/client_id (cached under $BERTH_TEST_CACHE/ssh-machines/bench-hosts).
# One container per machine rather than one sshd on 16 addresses, because a machine is told apart
# by the file /etc/berth/client_id, which an sshd's processes share. They carry the label
# berth.test.bench, so `stop` leaves them alone and `stop-bench` removes exactly them; their
# list, in the same format, is BERTH_BENCH_MACHINES ($BERTH_TEST_RUN/ssh-bench/machines.tsv).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IMAGE=berth-test/base
LABEL=berth.test.machines
USER_NAME=berth
CACHE="$BERTH_TEST_CACHE/ssh-machines"
RUN="$BERTH_TEST_RUN/ssh-machines"
MACHINES_FILE="$RUN/machines.tsv"
BENCH_LABEL=berth.test.bench
BENCH_RUN="$BERTH_TEST_RUN/ssh-bench"
BENCH_FILE="$BENCH_RUN/machines.tsv"
KEYS="$CACHE/client"
START_TIMEOUT="${BERTH_TEST_MACHINES_TIMEOUT:-30}"

usage() {
	echo "usage: ${0##*/} start [N] | stop | status | env | start-bench [N] | stop-bench | status-bench | env-bench" >&2
	exit 2
}

# keygen FILE TYPE [BITS] [PASSPHRASE] makes a key once; later runs keep it.
keygen() {
	local file=$1 type=$2 bits=${3:-} pass=${4:-}
	[ -f "$file" ] && return 0
	local args=(-q -t "$type" -f "$file" -N "$pass" -C "berth-test")
	[ -n "$bits" ] && args+=(-b "$bits")
	ssh-keygen "${args[@]}" || die "ssh-keygen $type failed"
	chmod 0600 "$file"
}

client_keys() {
	mkdir -p "$KEYS"
	chmod 0700 "$CACHE" "$KEYS"
	[ -f "$KEYS/passphrase" ] || printf 'berth-test-passphrase' >"$KEYS/passphrase"
	chmod 0600 "$KEYS/passphrase"
	keygen "$KEYS/id_ed25519" ed25519
	keygen "$KEYS/id_ecdsa" ecdsa 256
	keygen "$KEYS/id_rsa" rsa 3072
	keygen "$KEYS/id_ed25519_enc" ed25519 "" "$(cat "$KEYS/passphrase")"
	keygen "$KEYS/other_ed25519" ed25519
}

# machine_files NAME LISTEN [RUN_DIR HOSTS_DIR] prepares the directory mounted read-only at
# /berth in the container (RUN_DIR/NAME), with the host key and client id kept in HOSTS_DIR/NAME.
machine_files() {
	local name=$1 listen=$2 dir="${3:-$RUN}/$1" keydir="${4:-$CACHE/hosts}/$1"
	mkdir -p "$dir" "$keydir"
	keygen "$keydir/ssh_host_ed25519_key" ed25519
	[ -f "$keydir/client_id" ] || cat /proc/sys/kernel/random/uuid >"$keydir/client_id"
	install -m 0600 "$keydir/ssh_host_ed25519_key" "$dir/ssh_host_ed25519_key"
	install -m 0644 "$keydir/client_id" "$dir/client_id"
	cat "$KEYS/id_ed25519.pub" "$KEYS/id_ecdsa.pub" "$KEYS/id_rsa.pub" "$KEYS/id_ed25519_enc.pub" \
		>"$dir/authorized_keys"
	chmod 0644 "$dir/authorized_keys"
	cat >"$dir/sshd_config" <<EOF
ListenAddress $listen
HostKey /berth/ssh_host_ed25519_key
AuthorizedKeysFile /berth/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
AllowUsers $USER_NAME
AllowTcpForwarding yes
MaxStartups 256:30:512
MaxSessions 64
PidFile /run/sshd.pid
LogLevel VERBOSE
Subsystem sftp internal-sftp
EOF
	chmod 0755 "$dir"
}

# run_machine NAME NETWORK [LABEL RUN_DIR PREFIX] starts the container PREFIX-NAME (default
# berth-tm-NAME); sshd runs in the foreground as its process 1's child.
run_machine() {
	local name=$1 network=$2 label=${3:-$LABEL} dir=${4:-$RUN} prefix=${5:-berth-tm}
	docker_cli run -d --name "$prefix-$name" --label "$label=1" --network "$network" \
		--hostname "$name" -v "$dir/$name:/berth:ro" "$IMAGE" bash -c "
			set -e
			mkdir -p /etc/berth /run/sshd
			cp /berth/client_id /etc/berth/client_id
			useradd -m -s /bin/bash $USER_NAME
			usermod -p '*' $USER_NAME
			exec /usr/sbin/sshd -D -e -f /berth/sshd_config" >/dev/null ||
		die "cannot start the container for machine $name"
}

pid_of() { docker_cli inspect -f '{{.State.Pid}}' "berth-tm-$1"; }

# in_ns PID CMD... runs CMD in the network namespace of process PID.
in_ns() {
	local pid=$1
	shift
	nsenter --net="/proc/$pid/ns/net" "$@"
}

wire_jump_pair() {
	local jpid hpid
	jpid="$(pid_of jump)" && hpid="$(pid_of hidden)" || die "the jump containers are not running"
	ip link add btm-j0 type veth peer name btm-j1 || die "cannot create veth btm-j0"
	ip link set btm-j1 netns "$jpid"
	ip addr add 10.217.1.1/30 dev btm-j0
	ip link set btm-j0 up
	ip route replace unreachable 10.217.0.0/16
	in_ns "$jpid" ip link set lo up
	in_ns "$jpid" ip addr add 10.217.1.2/30 dev btm-j1
	in_ns "$jpid" ip link set btm-j1 up
	in_ns "$jpid" ip link add btm-h0 type veth peer name btm-h1
	in_ns "$jpid" ip link set btm-h1 netns "$hpid"
	in_ns "$jpid" ip addr add 10.217.2.1/30 dev btm-h0
	in_ns "$jpid" ip link set btm-h0 up
	in_ns "$hpid" ip link set lo up
	in_ns "$hpid" ip addr add 10.217.2.2/30 dev btm-h1
	in_ns "$hpid" ip link set btm-h1 up
}

# banner_from [PID] ADDR answers when an SSH server greets on ADDR:22 (seen from PID's namespace).
banner_from() {
	local probe='exec 3<>"/dev/tcp/$0/22" && read -r -t 2 line <&3 && [[ $line == SSH-* ]]'
	if [ "$#" -eq 2 ]; then
		in_ns "$1" timeout 3 bash -c "$probe" "$2" 2>/dev/null
	else
		timeout 3 bash -c "$probe" "$1" 2>/dev/null
	fi
}

wait_for() {
	local what=$1 deadline=$((SECONDS + START_TIMEOUT))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || die "$what did not answer within ${START_TIMEOUT}s (docker logs berth-tm-...)"
		sleep 0.2
	done
}

# host_key_line NAME [HOSTS_DIR]
host_key_line() { cut -d' ' -f1,2 "${2:-$CACHE/hosts}/$1/ssh_host_ed25519_key.pub"; }

# How many plain machines the machines file lists.
plain_count() { grep -c '^m[0-9]' "$MACHINES_FILE" 2>/dev/null || true; }

status() {
	local file=${1:-$MACHINES_FILE}
	[ -f "$file" ] || return 1
	local name address port user key id jump jpid
	while IFS=$'\t' read -r name address port user key id jump; do
		case "$jump" in
		-) banner_from "$address" || return 1 ;;
		*)
			jpid="$(pid_of jump 2>/dev/null)" || return 1
			banner_from "$jpid" "$address" || return 1
			;;
		esac
	done <"$file"
}

start() {
	require_root
	local count=${1:-3}
	[[ "$count" =~ ^[0-9]+$ ]] && [ "$count" -ge 1 ] && [ "$count" -le 250 ] || die "N must be 1..250"
	# ssh-keygen for the keys; ip and nsenter for the jump pair's veths.
	ensure_packages openssh-client iproute2 util-linux
	require_engine
	docker_cli image inspect "$IMAGE" >/dev/null 2>&1 || die "the test image $IMAGE is missing; run scripts/test-image.sh"
	if status && [ "$(plain_count)" -eq "$count" ]; then return 0; fi
	stop
	mkdir -p "$RUN" "$CACHE"
	chmod 0755 "$RUN"
	client_keys

	local i name address lines=()
	for i in $(seq 1 "$count"); do
		name="m$i" address="127.0.20.$i"
		machine_files "$name" "$address:22"
		run_machine "$name" host
		lines+=("$name	$address	22	$USER_NAME	$(host_key_line "$name")	$(cat "$CACHE/hosts/$name/client_id")	-")
	done
	machine_files jump "0.0.0.0:22"
	machine_files hidden "0.0.0.0:22"
	run_machine jump none
	run_machine hidden none
	wire_jump_pair
	lines+=("jump	10.217.1.2	22	$USER_NAME	$(host_key_line jump)	$(cat "$CACHE/hosts/jump/client_id")	-")
	lines+=("hidden	10.217.2.2	22	$USER_NAME	$(host_key_line hidden)	$(cat "$CACHE/hosts/hidden/client_id")	jump")

	for i in $(seq 1 "$count"); do
		wait_for "machine m$i (127.0.20.$i)" banner_from "127.0.20.$i"
	done
	wait_for "machine jump (10.217.1.2)" banner_from 10.217.1.2
	wait_for "machine hidden (10.217.2.2, from jump)" banner_from "$(pid_of jump)" 10.217.2.2
	printf '%s\n' "${lines[@]}" >"$MACHINES_FILE.tmp"
	mv "$MACHINES_FILE.tmp" "$MACHINES_FILE"
}

stop() {
	require_root
	rm -f "$MACHINES_FILE"
	remove_labelled "$LABEL"
	# The peers die with the containers' namespaces, which takes the host end with them.
	if ip link show btm-j0 >/dev/null 2>&1; then ip link del btm-j0 || true; fi
	ip route del unreachable 10.217.0.0/16 2>/dev/null || true
	rm -rf "$RUN"
}

# remove_labelled LABEL removes the containers that carry LABEL.
remove_labelled() {
	engine_answers || return 0
	local ids
	ids="$(docker_cli ps -aq --filter "label=$1")"
	if [ -n "$ids" ]; then
		# shellcheck disable=SC2086
		docker_cli rm -f $ids >/dev/null || die "cannot remove the containers labelled $1"
	fi
}

start_bench() {
	require_root
	local count=${1:-100}
	[[ "$count" =~ ^[0-9]+$ ]] && [ "$count" -ge 1 ] && [ "$count" -le 250 ] || die "N must be 1..250"
	ensure_packages openssh-client
	require_engine
	docker_cli image inspect "$IMAGE" >/dev/null 2>&1 || die "the test image $IMAGE is missing; run scripts/test-image.sh"
	if status "$BENCH_FILE" && [ "$(wc -l <"$BENCH_FILE")" -eq "$count" ]; then return 0; fi
	stop_bench
	mkdir -p "$BENCH_RUN" "$CACHE"
	chmod 0755 "$BENCH_RUN"
	client_keys
	local i name hosts="$CACHE/bench-hosts" lines=() pids=()
	for i in $(seq 1 "$count"); do
		machine_files "b$i" "127.0.21.$i:22" "$BENCH_RUN" "$hosts"
		lines+=("b$i	127.0.21.$i	22	$USER_NAME	$(host_key_line "b$i" "$hosts")	$(cat "$hosts/b$i/client_id")	-")
	done
	# A few `docker run`s at a time: one after the other, 100 take most of a minute.
	for i in $(seq 1 "$count"); do
		run_machine "b$i" host "$BENCH_LABEL" "$BENCH_RUN" berth-tb &
		pids+=($!)
		if [ "${#pids[@]}" -ge 8 ]; then
			wait "${pids[0]}" || die "cannot start the bench machines"
			pids=("${pids[@]:1}")
		fi
	done
	for i in "${pids[@]}"; do wait "$i" || die "cannot start the bench machines"; done
	for i in $(seq 1 "$count"); do
		wait_for "bench machine b$i (127.0.21.$i)" banner_from "127.0.21.$i"
	done
	printf '%s\n' "${lines[@]}" >"$BENCH_FILE.tmp"
	mv "$BENCH_FILE.tmp" "$BENCH_FILE"
}

stop_bench() {
	require_root
	rm -f "$BENCH_FILE"
	remove_labelled "$BENCH_LABEL"
	rm -rf "$BENCH_RUN"
}

env_() {
	echo "export BERTH_TEST_MACHINES=$MACHINES_FILE"
	echo "export BERTH_TEST_SSH_KEYS=$KEYS"
}

case "${1:-}" in
start) start "${2:-3}" ;;
stop) stop ;;
status) status ;;
env) env_ ;;
start-bench) start_bench "${2:-100}" ;;
stop-bench) stop_bench ;;
status-bench) status "$BENCH_FILE" ;;
env-bench) echo "export BERTH_BENCH_MACHINES=$BENCH_FILE" ;;
*) usage ;;
esac
