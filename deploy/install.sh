#!/bin/sh
# Installs Berth on a systemd host without dpkg (a Debian host takes the package instead:
# docs/install.md). It makes what the package makes: the system user and group berth (added to
# the group docker when there is one), /var/lib/berth owned by it with mode 0700, the binary as
# /usr/local/bin/berth, the units deploy/berth.service and deploy/berth-agent.service in
# /etc/systemd/system, and, when systemd runs, enables and starts berth.service (not the agent,
# which needs the machine's login first).
#
#   deploy/install.sh [--binary PATH] [--no-start]
#
# PATH defaults to target/release/berth of the clone this script is in. Each step first looks
# whether its work is done, so a second run changes nothing and says so; a new binary or unit
# restarts a running server. Must run as root. deploy/uninstall.sh undoes it.
set -eu

BIN=/usr/local/bin/berth
UNIT_DIR=/etc/systemd/system
HOME_DIR=/var/lib/berth

here="$(cd "$(dirname "$0")" && pwd)"

say() { printf 'install.sh: %s\n' "$*"; }
die() {
	printf 'install.sh: error: %s\n' "$*" >&2
	exit 1
}
usage() { echo "usage: deploy/install.sh [--binary PATH] [--no-start]"; }

binary="$here/../target/release/berth"
start=yes
while [ $# -gt 0 ]; do
	case "$1" in
	--binary)
		[ $# -ge 2 ] || die "--binary needs a path ($(usage))"
		binary="$2"
		shift 2
		;;
	--no-start)
		start=no
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	*) die "unknown argument: $1 ($(usage))" ;;
	esac
done

[ "$(id -u)" -eq 0 ] ||
	die "must run as root: it creates the user berth and writes to $BIN and $UNIT_DIR"
[ -f "$binary" ] && [ -x "$binary" ] ||
	die "$binary is not an executable file (build it with \`cargo build --release -p berth\` or pass --binary PATH)"
for tool in getent groupadd useradd usermod install cmp stat; do
	command -v "$tool" >/dev/null || die "$tool is not installed (it comes with the distribution's shadow/passwd and coreutils)"
done
# Two owners of one installation would undo each other's files.
if command -v dpkg-query >/dev/null &&
	dpkg-query -W -f='${Status}' berth 2>/dev/null | grep -q 'install ok installed'; then
	die "the Debian package berth is installed: upgrade it with apt, or remove it first (apt remove berth)"
fi

changed=no
did() {
	say "$*"
	changed=yes
}

# The system user, as adduser --system would make it: no password, no login shell, its
# home the data directory.
if ! getent group berth >/dev/null; then
	groupadd --system berth
	did "created the system group berth"
fi
if ! getent passwd berth >/dev/null; then
	shell=/bin/false
	for nologin in /usr/sbin/nologin /sbin/nologin; do
		if [ -x "$nologin" ]; then
			shell="$nologin"
			break
		fi
	done
	useradd --system --gid berth --home-dir "$HOME_DIR" --no-create-home --shell "$shell" \
		--comment 'Berth server' berth
	did "created the system user berth"
fi
# The docker group owns the engine's socket: membership is root-equivalent (docs/install.md).
# The unit asks for it too (SupplementaryGroups=docker); this covers `runuser -u berth` by hand.
if getent group docker >/dev/null; then
	if ! id -nG berth | tr ' ' '\n' | grep -qx docker; then
		usermod -a -G docker berth
		did "added berth to the group docker (root-equivalent: it reaches the Docker Engine)"
	fi
else
	say "note: there is no group docker yet; berth.service needs it, so install the Docker Engine before starting Berth"
fi

# The home holds the database, the login token key and recordings: the user's alone.
if [ ! -d "$HOME_DIR" ]; then
	install -d -o berth -g berth -m 0700 "$HOME_DIR"
	did "created $HOME_DIR (berth:berth, mode 0700)"
else
	owner="$(stat -c %U:%G "$HOME_DIR")"
	mode="$(stat -c %a "$HOME_DIR")"
	if [ "$owner" = root:root ] && [ $((0$mode & 077)) -eq 0 ]; then
		# The home of the unit of before, which ran Berth as root (mode 0700): all of it goes to
		# berth, or the server could not open its own database. Recursive only here: in a
		# directory only root could enter, nobody can have planted a hard link for this chown
		# to hand over.
		chown -R berth:berth "$HOME_DIR"
		did "gave $HOME_DIR and everything in it to berth:berth"
	elif [ "$owner" != berth:berth ]; then
		die "$HOME_DIR belongs to $owner (mode $mode): if it is Berth's home, check its contents, give them to berth (chown -R berth:berth $HOME_DIR) and run install.sh again"
	fi
	if [ "$(stat -c %a "$HOME_DIR")" != 700 ]; then
		chmod 0700 "$HOME_DIR"
		did "set the mode of $HOME_DIR to 0700"
	fi
fi

# Replaced by a rename, so a running server keeps its old binary until it restarts.
restart=no
if ! cmp -s "$binary" "$BIN"; then
	install -d -m 0755 "$(dirname "$BIN")"
	install -m 0755 "$binary" "$BIN.new"
	mv -f "$BIN.new" "$BIN"
	did "installed $BIN ($("$BIN" --version))"
	restart=yes
fi

reload=no
install -d -m 0755 "$UNIT_DIR"
for unit in berth.service berth-agent.service; do
	[ -f "$here/$unit" ] || die "$here/$unit is missing: run the script from a clone of Berth"
	if ! cmp -s "$here/$unit" "$UNIT_DIR/$unit"; then
		install -m 0644 "$here/$unit" "$UNIT_DIR/$unit"
		did "installed $UNIT_DIR/$unit"
		reload=yes
		restart=yes
	fi
done

by_hand="runuser -u berth -- $BIN serve --home $HOME_DIR"
if [ -d /run/systemd/system ]; then
	if [ "$reload" = yes ]; then
		systemctl daemon-reload
	fi
	if [ "$start" = no ]; then
		say "not enabling or starting berth.service (--no-start): systemctl enable --now berth"
	else
		if ! systemctl is-enabled --quiet berth.service; then
			systemctl enable --quiet berth.service
			did "enabled berth.service"
		fi
		if ! systemctl is-active --quiet berth.service; then
			systemctl start berth.service ||
				die "berth.service did not start: see journalctl -u berth"
			did "started berth.service; the admin password: journalctl -u berth | grep -A1 username:"
		elif [ "$restart" = yes ]; then
			systemctl restart berth.service ||
				die "berth.service did not restart: see journalctl -u berth"
			did "restarted berth.service on the new files"
		fi
	fi
elif [ "$start" = yes ]; then
	say "systemd is not running here, so nothing was started; start the server as the user berth: $by_hand"
fi

if [ "$changed" = no ]; then
	say "nothing changed: Berth was already installed like this"
fi
