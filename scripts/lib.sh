# shellcheck shell=bash
# scripts/lib.sh — helpers shared by scripts/test, scripts/demo and scripts/e2e-user.
# Source it; it defines functions and sets nothing else but ROOT and PATH.

# ROOT is the repository root (the parent of this file's directory).
# shellcheck disable=SC2034 # used by the scripts that source this file
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Go lives in /usr/local/go/bin on our machines and is often not on PATH.
if [[ -x /usr/local/go/bin/go && ":$PATH:" != *":/usr/local/go/bin:"* ]]; then
	PATH=/usr/local/go/bin:$PATH
	export PATH
fi

# The unprivileged user the root runs of the tests and the demo use.
LAUNCH_TEST_USER=${LAUNCH_TEST_USER:-launchtest}

# The PATH given to that user (env -i clears everything else).
LAUNCH_TEST_USER_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# header FILE: print the comment block at the top of a script (its usage).
header() { awk 'NR > 1 && /^# shellcheck/ { next } NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$1"; }

log() { printf '%s\n' "$*" >&2; }
die() { printf 'FATAL: %s\n' "$*" >&2; exit 1; }

is_root() { [[ $(id -u) -eq 0 ]]; }

# world_tmpdir PREFIX: a fresh temporary directory other users can read and
# traverse (mode 0755), under /tmp unless LAUNCH_TEST_TMPDIR says otherwise,
# so it is reachable wherever the checkout lives (CI clones under /root).
world_tmpdir() {
	local d
	d=$(mktemp -d "${LAUNCH_TEST_TMPDIR:-/tmp}/$1.XXXXXX") || return 1
	chmod 0755 "$d"
	printf '%s\n' "$d"
}

# setup_test_user: as root, make sure $LAUNCH_TEST_USER exists (useradd -m also
# gives it /etc/subuid and /etc/subgid ranges on Debian) and that /dev/fuse is
# usable by everyone, as it is on real clusters (a fresh Debian ships 0600).
setup_test_user() {
	is_root || die "setup_test_user needs root"
	if ! id -u "$LAUNCH_TEST_USER" >/dev/null 2>&1; then
		log "creating user $LAUNCH_TEST_USER (useradd -m)"
		useradd -m -s /bin/bash "$LAUNCH_TEST_USER" || die "useradd $LAUNCH_TEST_USER failed"
	fi
	if [[ -c /dev/fuse ]]; then
		if [[ $(stat -c %a /dev/fuse) != 666 ]]; then
			log "chmod 0666 /dev/fuse (was $(stat -c %a /dev/fuse)), as on real clusters"
			chmod 0666 /dev/fuse
		fi
	else
		log "WARNING: /dev/fuse does not exist; squashfuse cannot work on this machine"
	fi
}

# as_test_user [NAME=VALUE ...] CMD [ARG ...]: run CMD as $LAUNCH_TEST_USER in
# the current directory with a clean environment (PATH, HOME, USER, LOGNAME,
# plus the NAME=VALUE pairs given), the way a fresh login would see it.
as_test_user() {
	local home
	home=$(getent passwd "$LAUNCH_TEST_USER" | cut -d: -f6)
	runuser -u "$LAUNCH_TEST_USER" -- env -i \
		PATH="$LAUNCH_TEST_USER_PATH" HOME="$home" \
		USER="$LAUNCH_TEST_USER" LOGNAME="$LAUNCH_TEST_USER" \
		"$@"
}

# remove_tmpdir DIR: delete a directory this script made, first detaching
# anything still mounted below it, and never crossing into another file
# system (a leaked bind mount must not lead rm into the host's files).
remove_tmpdir() {
	local d=$1 m
	[[ -n $d && -d $d ]] || return 0
	# /proc/mounts escapes spaces as \040; our temp dirs have none.
	while read -r m; do
		log "WARNING: $m is still mounted; detaching it"
		umount -l "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null || true
	done < <(awk -v d="$d" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r)
	rm -rf --one-file-system "$d"
}
