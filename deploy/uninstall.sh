#!/bin/sh
# Undoes deploy/install.sh: stops and disables berth.service and berth-agent.service, removes
# their units from /etc/systemd/system and /usr/local/bin/berth. The data in /var/lib/berth
# and the user berth are kept, so installing again finds them; --purge removes those too (the
# database, the configuration, recordings, keys: there is no undo).
#
#   deploy/uninstall.sh [--purge]
#
# A second run finds nothing to do and says so. Must run as root.
set -eu

BIN=/usr/local/bin/berth
UNIT_DIR=/etc/systemd/system
HOME_DIR=/var/lib/berth

say() { printf 'uninstall.sh: %s\n' "$*"; }
die() {
	printf 'uninstall.sh: error: %s\n' "$*" >&2
	exit 1
}
usage() { echo "usage: deploy/uninstall.sh [--purge]"; }

purge=no
while [ $# -gt 0 ]; do
	case "$1" in
	--purge)
		purge=yes
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
	die "must run as root: it removes $BIN, units in $UNIT_DIR and (with --purge) the user berth"
if command -v dpkg-query >/dev/null &&
	dpkg-query -W -f='${Status}' berth 2>/dev/null | grep -q 'install ok installed'; then
	die "Berth was installed by the Debian package: apt remove berth (or apt purge berth)"
fi

# userdel refuses a user with processes, and the data should not vanish under a server started
# by hand: a purge waits until it is stopped, before it touches anything.
if [ "$purge" = yes ] && getent passwd berth >/dev/null && command -v pgrep >/dev/null &&
	pgrep -u berth >/dev/null; then
	die "processes of the user berth still run (pgrep -u berth): stop them, then run uninstall.sh --purge again"
fi

changed=no
did() {
	say "$*"
	changed=yes
}

systemd=no
[ -d /run/systemd/system ] && systemd=yes
units_removed=no
for unit in berth.service berth-agent.service; do
	if [ "$systemd" = yes ]; then
		if systemctl is-active --quiet "$unit"; then
			systemctl stop "$unit"
			did "stopped $unit"
		fi
		if systemctl is-enabled --quiet "$unit" 2>/dev/null; then
			systemctl disable --quiet "$unit"
			did "disabled $unit"
		fi
	fi
	if [ -e "$UNIT_DIR/$unit" ]; then
		rm -f "$UNIT_DIR/$unit"
		did "removed $UNIT_DIR/$unit"
		units_removed=yes
	fi
done
if [ "$systemd" = yes ] && [ "$units_removed" = yes ]; then
	systemctl daemon-reload
fi

if [ -e "$BIN" ]; then
	rm -f "$BIN"
	did "removed $BIN"
fi

if [ "$purge" = yes ]; then
	if [ -e "$HOME_DIR" ]; then
		rm -rf "$HOME_DIR"
		did "removed $HOME_DIR (the database, the configuration, recordings and keys)"
	fi
	if getent passwd berth >/dev/null; then
		userdel berth
		did "removed the user berth"
	fi
	if getent group berth >/dev/null; then
		groupdel berth
		did "removed the group berth"
	fi
elif [ -e "$HOME_DIR" ] || getent passwd berth >/dev/null; then
	say "kept $HOME_DIR and the user berth (uninstall.sh --purge removes them)"
fi

if [ "$changed" = no ]; then
	say "nothing to remove: Berth was not installed (or is gone already)"
fi
