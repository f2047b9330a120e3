package sqfsfuse

import "github.com/launch-hpc/launch/internal/squashfs"

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
