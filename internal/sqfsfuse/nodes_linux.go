package sqfsfuse

import (
	"sync"

	"github.com/launch-hpc/launch/internal/squashfs"
)

// Node ids: the root is FUSE's 1; the inodes that lookups and listings
// return get their reference in the image plus 2 (also an entry that
// names the root: the kernel refuses id 1 there), so the id alone finds
// the inode again (hard links get
// one id) and no table of the kernel's references is kept: a request on
// an id decodes the inode again, from the metadata cache.

// nodeID is the FUSE node id of the inode at ref, as an entry names it.
func nodeID(ref squashfs.Ref) uint64 { return uint64(ref) + 2 }

// refOf is the inode reference of a node id other than 1.
func refOf(nodeid uint64) squashfs.Ref { return squashfs.Ref(nodeid - 2) }

// resumes keeps where the listings of the directories read last stopped
// (squashfs.DirResume), so that the next page of each goes on from there
// instead of decoding its listing again up to that point: what keeps a
// large directory without an index (which mksquashfs always writes, but
// another writer or a hostile image need not) from costing the square of
// its size. A few small values; nothing of the listings themselves.
type resumes struct {
	mu   sync.Mutex
	last [8]resumeAt
	next int
}

type resumeAt struct {
	nodeid uint64
	res    squashfs.DirResume
}

// get returns where the last listing of nodeid stopped, or nothing.
func (r *resumes) get(nodeid uint64) squashfs.DirResume {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.last {
		if e.nodeid == nodeid {
			return e.res
		}
	}
	return squashfs.DirResume{}
}

// put keeps res for nodeid, in place of its last one or of the oldest.
func (r *resumes) put(nodeid uint64, res squashfs.DirResume) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.last {
		if r.last[i].nodeid == nodeid {
			r.last[i].res = res
			return
		}
	}
	r.last[r.next] = resumeAt{nodeid, res}
	r.next = (r.next + 1) % len(r.last)
}
