package sqfsfuse

import (
	"sync"

	"github.com/launch-hpc/launch/internal/squashfs"
)

// Node ids: the root is FUSE's 1; every other inode is its reference in
// the image plus 2, so the id alone finds the inode again (hard links get
// one id) and no table is needed to answer for an id.

// nodeID is the FUSE node id of the inode at ref.
func nodeID(root *squashfs.Inode, ref squashfs.Ref) uint64 {
	if ref == root.Ref {
		return 1
	}
	return uint64(ref) + 2
}

// refOf is the inode reference of a node id other than the root's.
func refOf(nodeid uint64) squashfs.Ref { return squashfs.Ref(nodeid - 2) }

// node is an inode the kernel holds references to.
type node struct {
	ino     *squashfs.Inode
	nlookup uint64
}

// nodeTable keeps the decoded inodes the kernel holds, so that requests on
// them need not decode them again; Forget drops them.
type nodeTable struct {
	mu sync.Mutex
	m  map[uint64]*node
}

// add counts one more kernel reference to ino and returns its node id.
func (t *nodeTable) add(root, ino *squashfs.Inode) uint64 {
	id := nodeID(root, ino.Ref)
	if id == 1 {
		return id
	}
	t.mu.Lock()
	n := t.m[id]
	if n == nil {
		n = &node{ino: ino}
		t.m[id] = n
	}
	n.nlookup++
	t.mu.Unlock()
	return id
}

// get returns the inode of id, or nil when the kernel holds no reference.
func (t *nodeTable) get(id uint64) *squashfs.Inode {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := t.m[id]; n != nil {
		return n.ino
	}
	return nil
}

// forget drops n references to id.
func (t *nodeTable) forget(id, n uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if nd := t.m[id]; nd != nil {
		if nd.nlookup <= n {
			delete(t.m, id)
		} else {
			nd.nlookup -= n
		}
	}
}

// dirTable holds the entries of each open directory handle, read once at
// opendir so that readdir offsets stay valid however it is read.
type dirTable struct {
	mu   sync.Mutex
	next uint64
	m    map[uint64][]squashfs.DirEntry
}

// open stores entries and returns their handle.
func (t *dirTable) open(entries []squashfs.DirEntry) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	t.m[t.next] = entries
	return t.next
}

// get returns the entries of handle fh.
func (t *dirTable) get(fh uint64) ([]squashfs.DirEntry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[fh]
	return e, ok
}

// release forgets handle fh.
func (t *dirTable) release(fh uint64) {
	t.mu.Lock()
	delete(t.m, fh)
	t.mu.Unlock()
}
