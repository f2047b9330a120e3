#!/usr/bin/env bash
# scripts/bench.d/overlayimg.sh — many small files in an overlay image
# (docs/performance.md, "Overlay images"). A benchmark, not a test.
#
#   scripts/bench.d/overlayimg.sh [N [DIRS]]   (N files in DIRS directories,
#                                              default 50000 in 100)
#
# Builds nothing: uses builddir/launch and a busybox-static SquashFS image it
# makes. For each of three places, in one run so that load hits them alike:
# an ext3 overlay image (launch overlay create, fuse2fs + fuse-overlayfs), an
# overlay directory on the host filesystem of $TMPDIR, and the bare host
# filesystem bound into the container (-B), it times (wall clock, one run
# each) a container that creates N small files, then a second container that
# lists them and reads them all, and prints the times and the ratios to the
# bare host filesystem. Run it as the user who will use it (root gets
# fuse-overlayfs too: kernel overlayfs cannot take a FUSE upper layer).
set -euo pipefail
N=${1:-50000}
DIRS=${2:-100}
here=$(cd "$(dirname "$0")/../.." && pwd)
L=$here/builddir/launch
work=$(mktemp -d "${TMPDIR:-/tmp}/launch-bench-ovimg.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tree/bin" "$work/tree/etc"
cp "$(command -v busybox)" "$work/tree/bin/busybox"
for a in sh ls cat wc find xargs mkdir; do ln -s busybox "$work/tree/bin/$a"; done
mksquashfs "$work/tree" "$work/img.sqfs" -quiet -no-progress -noappend -all-root >/dev/null
size=$(( (N * 5 / 1024) + 128 )) # MiB: a 1 KiB block and an inode per file, and room
"$L" overlay create --size "$size" "$work/ov.img"
mkdir -p "$work/hostdir" "$work/ovdir"
create='d=0; while [ $d -lt '"$DIRS"' ]; do mkdir -p /data/d$d; i=0; while [ $i -lt '"$((N / DIRS))"' ]; do echo $i > /data/d$d/f$i; i=$((i+1)); done; d=$((d+1)); done'
read='ls /data | wc -l >/dev/null; find /data -type f | xargs cat | wc -l'
now() { date +%s.%N; }
declare -A t
for case in image dir host; do
	case $case in
	image) args=(--overlay "$work/ov.img") ;;
	dir) args=(--overlay "$work/ovdir") ;;
	host) args=(-B "$work/hostdir:/data") ;;
	esac
	t0=$(now)
	"$L" exec "${args[@]}" "$work/img.sqfs" sh -c "$create"
	t1=$(now)
	got=$("$L" exec "${args[@]}" "$work/img.sqfs" sh -c "$read")
	t2=$(now)
	[ "$got" = "$((N / DIRS * DIRS))" ] || { echo "overlayimg bench: $case read $got files, want $N" >&2; exit 1; }
	t[$case.create]=$(echo "$t1 - $t0" | bc)
	t[$case.read]=$(echo "$t2 - $t1" | bc)
done
echo "| $N small files in $DIRS directories ($(id -un)) | create (s) | list + read (s) | create vs host | read vs host |"
echo "|---|---|---|---|---|"
for case in image dir host; do
	printf '| %s | %.2f | %.2f | %.2fx | %.2fx |\n' "$case" "${t[$case.create]}" "${t[$case.read]}" \
		"$(echo "${t[$case.create]} / ${t[host.create]}" | bc -l)" "$(echo "${t[$case.read]} / ${t[host.read]}" | bc -l)"
done
