#!/usr/bin/env bash
# A throwaway PostgreSQL for Berth's tests: its own cluster (initdb) under the test run
# directory, listening only on 127.0.0.1 and on a unix socket in that directory, with `trust`
# authentication (no passwords: it is reachable from this host only and holds test data only).
#
#   scripts/postgres.sh start    install Debian's postgresql if missing, create and start the
#                                cluster and the database berth_test (nothing to do when it runs)
#   scripts/postgres.sh stop     stop it and delete its data directory
#   scripts/postgres.sh status   exit 0 when it answers, 1 otherwise
#   scripts/postgres.sh env      print `export BERTH_TEST_POSTGRES_URL=...` for eval
#
# BERTH_TEST_RUN (default /run/berth-test) moves the run directory ($BERTH_TEST_RUN/postgres);
# BERTH_TEST_PG_PORT (default 55432) the TCP port. Run as root, the server runs as the
# `postgres` user (initdb refuses root); run as another user, it runs as that user.
# Durability is off (fsync=off): a crash loses the cluster, which `start` then recreates.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_RUN="$BERTH_TEST_RUN/postgres"
PG_DATA="$PG_RUN/data"
PG_LOG="$PG_RUN/postgres.log"
PG_PORT="${BERTH_TEST_PG_PORT:-55432}"
PG_DB=berth_test
PG_SUPERUSER=postgres
START_TIMEOUT="${BERTH_TEST_PG_TIMEOUT:-60}"

# The newest installed server version's binaries (/usr/lib/postgresql/<version>/bin).
pg_bin() {
	local dir
	dir="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)"
	[ -n "$dir" ] && [ -x "$dir/initdb" ] || return 1
	echo "$dir"
}

# as_server CMD... runs CMD as the user that owns the cluster.
as_server() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

answers() {
	local bin
	bin="$(pg_bin)" || return 1
	[ -f "$PG_DATA/postmaster.pid" ] &&
		"$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -d "$PG_DB" -U "$PG_SUPERUSER" -t 2
}

psql_admin() {
	"$(pg_bin)/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$PG_PORT" -U "$PG_SUPERUSER" -d postgres "$@"
}

start() {
	if [ "$(id -u)" -eq 0 ]; then
		ensure_packages postgresql
	else
		pg_bin >/dev/null || die "PostgreSQL is not installed; run as root once, or: apt-get install postgresql"
	fi
	local bin
	bin="$(pg_bin)" || die "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"
	if answers; then return 0; fi

	mkdir -p "$PG_RUN" || die "cannot create $PG_RUN; set BERTH_TEST_RUN to a writable directory"
	if [ "$(id -u)" -eq 0 ]; then
		id postgres >/dev/null 2>&1 || die "the postgres user is missing; reinstall the postgresql package"
		chown postgres: "$PG_RUN"
	fi
	chmod 0755 "$PG_RUN"

	# A server of ours that runs but does not answer (wrong port, half started) is stopped;
	# a data directory without a completed initdb is thrown away.
	if [ -f "$PG_DATA/postmaster.pid" ]; then
		as_server "$bin/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	if [ ! -f "$PG_DATA/PG_VERSION" ]; then
		rm -rf "$PG_DATA"
		as_server "$bin/initdb" -D "$PG_DATA" -U "$PG_SUPERUSER" --auth=trust \
			--encoding=UTF8 --locale=C.UTF-8 >"$PG_RUN/initdb.log" 2>&1 ||
			{ cat "$PG_RUN/initdb.log" >&2; die "initdb failed"; }
		# Later settings win: the run directory gets the socket, loopback gets the port.
		as_server tee -a "$PG_DATA/postgresql.conf" >/dev/null <<-CONF
			listen_addresses = '127.0.0.1'
			unix_socket_directories = '$PG_RUN'
			fsync = off
			synchronous_commit = off
			full_page_writes = off
			max_connections = 200
		CONF
	fi

	as_server "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -o "-p $PG_PORT" -w -t "$START_TIMEOUT" start >/dev/null ||
		{
			printf '%s: error: PostgreSQL did not start on 127.0.0.1:%s; last log lines (%s):\n' \
				"${0##*/}" "$PG_PORT" "$PG_LOG" >&2
			tail -n 20 "$PG_LOG" >&2
			exit 1
		}
	if [ -z "$(psql_admin -tA -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" ]; then
		psql_admin -c "CREATE DATABASE $PG_DB" || die "could not create the database $PG_DB"
	fi
	answers || die "PostgreSQL started but does not answer on 127.0.0.1:$PG_PORT"
}

stop() {
	local bin
	if [ -f "$PG_DATA/postmaster.pid" ] && bin="$(pg_bin)"; then
		as_server "$bin/pg_ctl" -D "$PG_DATA" -m fast -w -t "$START_TIMEOUT" stop >/dev/null ||
			die "pg_ctl stop failed; see $PG_LOG"
	fi
	rm -rf "$PG_RUN"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) answers || exit 1 ;;
env) echo "export BERTH_TEST_POSTGRES_URL=postgres://$PG_SUPERUSER@127.0.0.1:$PG_PORT/$PG_DB" ;;
*)
	echo "usage: $0 start|stop|status|env" >&2
	exit 2
	;;
esac
