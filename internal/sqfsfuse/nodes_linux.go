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

// listings keeps the entries of the directories read last, so that a
// large directory, which the kernel reads a page of entries at a time, is
// decoded once and not once a page. The kernel keeps what it read for the
// mount's life (FOPEN_CACHE_DIR), so a directory is rarely read twice.
type listings struct {
	mu   sync.Mutex
	last [4]listing
	next int
}

type listing struct {
	nodeid  uint64
	entries []squashfs.DirEntry
}

// get returns the entries of nodeid if they are kept.
func (l *listings) get(nodeid uint64) ([]squashfs.DirEntry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.last {
		if e.nodeid == nodeid && e.entries != nil {
			return e.entries, true
		}
	}
	return nil, false
}

// put keeps the entries of nodeid, in place of the oldest kept.
func (l *listings) put(nodeid uint64, entries []squashfs.DirEntry) {
	l.mu.Lock()
	l.last[l.next] = listing{nodeid, entries}
	l.next = (l.next + 1) % len(l.last)
	l.mu.Unlock()
}
