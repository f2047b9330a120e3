package container

import (
	"strings"

	"github.com/launch-hpc/launch/internal/paths"
)

// origin says where the content at a path of the new root comes from, which
// decides how a missing mount point below it can be made.
type origin int

const (
	fromImage   origin = iota // read-only image: underlay to add entries
	fromTmpfs                 // our own tmpfs: create entries directly
	neverCreate               // a host bind, proc, devpts, a generated file: nothing is ever created there
	fromLayers                // overlay layers that must not get mount points
	fromSandbox               // a --writable sandbox: mount points made in it where it can
)

// mountRec remembers one mount made in the new root, while nothing
// covers it (see record).
type mountRec struct {
	path     string // absolute path on the staging side
	origin   origin
	underlay bool   // an underlay tmpfs (made read-only at the end)
	dev      uint64 // an underlay's device: writes into it must reach it
}

// mountTable tracks the mounts made in the new root at root (staging side)
// while nothing covers them, to answer where the content at a path comes
// from (originOf) and whether a file lies in an underlay (inUnderlay).
type mountTable struct {
	root   string     // the new root being assembled
	mounts []mountRec // see record
}

// record notes a mount made on m.path. It lies on top of every mount
// made before on that path or below it, which can no longer be reached by
// path: their records go, so that originOf and inUnderlay never answer for
// a mount that is covered (an image's /tmp -> / once had the host's /tmp
// bound over the root, and the stale record of the /etc underlay below it
// sent the generated /etc/passwd into a host file).
func (a *mountTable) record(m mountRec) {
	kept := a.mounts[:0]
	for _, o := range a.mounts {
		if !paths.Within(o.path, m.path) {
			kept = append(kept, o)
		}
	}
	a.mounts = append(kept, m)
}

// deepest returns the record of the deepest mount holding p (of two on
// the same path, which record never leaves, the later).
func (a *mountTable) deepest(p string) (mountRec, bool) {
	best, found := mountRec{}, false
	for _, m := range a.mounts {
		if paths.Within(p, m.path) && (!found || len(m.path) >= len(best.path)) {
			best, found = m, true
		}
	}
	return best, found
}

// inUnderlay reports whether p, a mount point ensure returned for a file,
// is a file of an underlay tmpfs (not itself a mount), and returns that
// underlay and p's path below it. The file is only written through
// writeInTmpfs, which checks all of that again on descriptors.
func (a *mountTable) inUnderlay(p string) (mountRec, string, bool) {
	m, ok := a.deepest(p)
	if !ok || !m.underlay || p == m.path {
		return mountRec{}, "", false
	}
	return m, strings.TrimPrefix(p, m.path+"/"), true
}

// originOf returns the origin of the deepest mount holding path.
func (a *mountTable) originOf(path string) origin {
	if m, ok := a.deepest(path); ok {
		return m.origin
	}
	return fromImage
}

// inside turns a staging-side path into the path the container will see.
func (a *mountTable) inside(p string) string {
	rel := strings.TrimPrefix(p, a.root)
	if rel == "" {
		return "/"
	}
	return rel
}
