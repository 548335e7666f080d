#!/usr/bin/env bash
# `make deb`: builds the Debian package target/debian/berth_VERSION_ARCH.deb with plain
# dpkg-deb (no debhelper, no cargo tool): /usr/bin/berth, the systemd units of deploy/, the docs
# and the maintainer scripts of deploy/debian/ (which make the berth user and /var/lib/berth).
#
#   scripts/deb.sh [--binary PATH] [--out DIR]
#
# --binary packages that binary instead of a fresh `cargo build --release` (the package test
# uses its debug binary); --out writes the .deb to DIR. VERSION is the workspace's version
# (deploy/debian/changelog must have an entry for it), ARCH is `dpkg --print-architecture`, and
# Depends is what dpkg-shlibdeps finds the binary linked against. Prints the .deb's path.
set -euo pipefail

usage() {
	echo "usage: scripts/deb.sh [--binary PATH] [--out DIR]" >&2
	exit 2
}

binary=
out=
while [ $# -gt 0 ]; do
	case "$1" in
	--binary)
		[ $# -ge 2 ] || usage
		binary="$(realpath -e -- "$2" 2>/dev/null)" || {
			echo "deb.sh: error: --binary $2: no such file" >&2
			exit 1
		}
		shift 2
		;;
	--out)
		[ $# -ge 2 ] || usage
		out="$(realpath -m -- "$2")"
		shift 2
		;;
	-h | --help) usage ;;
	*)
		echo "deb.sh: error: unknown argument: $1" >&2
		usage
		;;
	esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
# dpkg-shlibdeps (dpkg-dev) for Depends, strip (binutils) as dh_strip would.
ensure_packages dpkg-dev binutils

# `key = "value"` of the [workspace.package] table of Cargo.toml.
workspace_field() {
	awk -v key="$1" '
		/^\[/ { in_table = ($0 == "[workspace.package]") }
		in_table && $1 == key && $2 == "=" { gsub(/"/, "", $3); print $3; exit }
	' Cargo.toml
}
version="$(workspace_field version)"
homepage="$(workspace_field repository)"
[ -n "$version" ] || die "no version in [workspace.package] of Cargo.toml"
[ -n "$homepage" ] || die "no repository in [workspace.package] of Cargo.toml"
# The changelog is the package's history: a version without an entry is a forgotten entry.
changelog_version="$(sed -n '1s/^berth (\([^)]*\)).*/\1/p' deploy/debian/changelog)"
[ "$changelog_version" = "$version" ] ||
	die "deploy/debian/changelog starts with version '$changelog_version', Cargo.toml says $version: add an entry"
arch="$(dpkg --print-architecture)"

if [ -z "$binary" ]; then
	cargo build --release --locked -p berth
	binary="$(realpath "${CARGO_TARGET_DIR:-target}")/release/berth"
fi
[ -x "$binary" ] || die "$binary is not an executable"
out="${out:-$PWD/target/debian}"
mkdir -p "$out"

work="$(mktemp -d "$out/.build.XXXXXX")"
# shellcheck disable=SC2064 # expand now: $work is fixed
trap "rm -rf '$work'" EXIT
root="$work/root"
install -d "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/usr/share/doc/berth" \
	"$root/usr/share/man/man1" "$root/usr/share/lintian/overrides"

# The binary without its symbols, as dh_strip leaves it (a debug build shrinks by two thirds).
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
	-o "$root/usr/bin/berth" "$binary"
chmod 0755 "$root/usr/bin/berth"

# The units name /usr/local/bin for deploy/install.sh; the package's binary is in /usr/bin.
for unit in berth.service berth-agent.service; do
	sed 's|/usr/local/bin/berth|/usr/bin/berth|g' "deploy/$unit" >"$root/lib/systemd/system/$unit"
	chmod 0644 "$root/lib/systemd/system/$unit"
done

doc="$root/usr/share/doc/berth"
sed "s|@HOMEPAGE@|$homepage|g" deploy/debian/copyright >"$doc/copyright"
# A native package (Berth is its own upstream): its changelog is changelog.gz, not
# changelog.Debian.gz, which lintian would call wrong-name-for-changelog-of-native-package.
gzip -9n <deploy/debian/changelog >"$doc/changelog.gz"
gzip -9n <README.md >"$doc/README.md.gz"
# Uncompressed: the units' Documentation= name them, and `systemctl help` opens them as files.
install -m 0644 docs/install.md docs/cli.md "$doc/"
gzip -9n <deploy/debian/berth.1 >"$root/usr/share/man/man1/berth.1.gz"
chmod 0644 "$doc"/* "$root/usr/share/man/man1/berth.1.gz"

install -m 0644 deploy/debian/lintian-overrides "$root/usr/share/lintian/overrides/berth"

for script in postinst prerm postrm; do
	install -m 0755 "deploy/debian/$script" "$root/DEBIAN/$script"
done

# Depends as dpkg-shlibdeps computes it for the binary: it wants a debian/control to read.
mkdir -p "$work/shlibs/debian"
printf 'Source: berth\n\nPackage: berth\nArchitecture: any\n' >"$work/shlibs/debian/control"
shlibs="$(cd "$work/shlibs" && dpkg-shlibdeps -O "$root/usr/bin/berth" 2>/dev/null |
	sed -n 's/^shlibs:Depends=//p')"
[ -n "$shlibs" ] || die "dpkg-shlibdeps found no dependencies of $binary"

installed_size="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@SHLIBS@|$shlibs|" \
	-e "s|@INSTALLED_SIZE@|$installed_size|" -e "s|@HOMEPAGE@|$homepage|" \
	deploy/debian/control >"$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
	xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"

deb="$out/berth_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
echo "$deb"
