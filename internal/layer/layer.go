// Package layer applies OCI/Docker image layers (tar streams) to a root
// filesystem directory, the way an overlay of the layers would look:
// whiteouts (.wh.NAME) remove what lower layers put there and opaque markers
// (.wh..wh..opq) hide a lower directory's whole content.
//
// Layers are untrusted input. Whatever a tar contains, nothing is created,
// changed or removed outside the root: names are confined lexically (a name
// or hard-link target that climbs above the root with ../ is refused as
// hostile), every parent directory is resolved inside the root with
// RESOLVE_IN_ROOT semantics (a symlink in the image, absolute or relative,
// can only lead to another place in the image), and the last component is
// never followed (O_NOFOLLOW, *at calls on the parent's file descriptor).
// Regular files keep their holes (GNU and PAX sparse entries, and any run of
// zero blocks, are written as holes), and Options.MaxSize bounds what a
// layer may unpack, against decompression bombs and sparse entries that
// claim terabytes. Errors name paths inside the layer, never the root's.
// Device nodes are skipped, set-uid and set-gid bits are cleared, and every
// directory is made readable, writable and searchable by its owner and every
// file readable, so that the tree can be packed and removed by the user who
// made it. Ownership is kept only when running as root; otherwise files
// belong to the caller.
//
// Tree applies layers by the same rules in memory, names and attributes
// only, and writes the flattened tree as one tar stream (Plan, or
// StreamLayer for an image of one layer), so that launch pull packs it with
// no tree on disk; what only a tree on disk reproduces exactly (a parent
// reached through a symbolic link, ...) is ErrNotStreamable, and the
// caller then uses Apply.
//
// The package never mounts, never runs anything from the image and owns no
// temporary files: the caller gives it a root and removes it.
package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"path"
	"strings"
)

// Options change how a layer is applied.
type Options struct {
	// KeepOwner applies the tar's uid/gid to what is created (only works
	// as root). Otherwise everything belongs to the caller.
	KeepOwner bool
	// MaxSize, when above zero, is the most bytes of file content the
	// layer may unpack (sparse files count at their full size): an entry
	// that would pass it fails with ErrTooLarge before it is written.
	MaxSize int64
}

// Stats count what applying a layer did.
type Stats struct {
	// Entries is the number of tar entries read.
	Entries int
	// SkippedDevices are the device nodes left out (up to 10 names).
	SkippedDevices []string
	// Devices is the number of device nodes left out.
	Devices int
	// Skipped is the number of other entries left out (unknown types,
	// extended attributes-only records).
	Skipped int
	// Bytes is the size of the regular files unpacked, holes included.
	Bytes int64
}

// Whiteout markers, as the OCI image spec defines them.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
	whiteoutMeta   = ".wh..wh."
)

// ErrHostile is wrapped by the errors for entries that try to reach outside
// the root.
var ErrHostile = errors.New("hostile layer")

// ErrTooLarge is wrapped by the error for the entry that would take the
// layer past Options.MaxSize.
var ErrTooLarge = errors.New("over the size limit")

// cleanName turns a tar entry name (or hard-link target) into a clean path
// relative to the root ("" for the root itself). A leading "/" is taken as
// the root, as tar does; a name that climbs above the root is refused.
func cleanName(name string) (string, error) {
	depth := 0
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return "", fmt.Errorf("%w: %q points outside the root filesystem", ErrHostile, name)
			}
		default:
			depth++
		}
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%w: name %q contains a NUL byte", ErrHostile, name)
	}
	p := path.Clean("/" + name)
	return strings.TrimPrefix(p, "/"), nil
}

// split returns the parent directory ("" for the root) and the base name of
// a clean relative path.
func split(p string) (string, string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

// admit is the one rule, for the extraction (applier) and the streamed Tree
// alike, of which entries of a layer are applied: device nodes are counted
// in st and left out, entries of other unknown types are skipped, regular
// files are charged to the size budget (maxSize, 0 for none), and a hard
// link's target is cleaned and checked. keep false leaves the entry out;
// target is a hard link's cleaned target ("" for other entries).
func admit(hdr *tar.Header, name string, st *Stats, maxSize int64) (keep bool, target string, err error) {
	switch hdr.Typeflag {
	case tar.TypeChar, tar.TypeBlock:
		st.Devices++
		if len(st.SkippedDevices) < 10 {
			st.SkippedDevices = append(st.SkippedDevices, "/"+name)
		}
		return false, "", nil
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		// archive/tar reads a GNU sparse entry as its full content, holes
		// as zeros: it is a regular file.
		if hdr.Size < 0 {
			return false, "", fmt.Errorf("extracting /%s: negative size %d", name, hdr.Size)
		}
		if maxSize > 0 && hdr.Size > maxSize-st.Bytes {
			return false, "", fmt.Errorf("extracting /%s (%d bytes): %w", name, hdr.Size, ErrTooLarge)
		}
		st.Bytes += hdr.Size
	case tar.TypeDir, tar.TypeSymlink, tar.TypeFifo:
	case tar.TypeLink:
		t, err := cleanName(hdr.Linkname)
		if err != nil {
			return false, "", fmt.Errorf("hard link %s: %w", name, err)
		}
		if t == "" {
			return false, "", fmt.Errorf("%w: hard link %s points to the root directory", ErrHostile, name)
		}
		if t == name { // a link to itself: nothing to do
			return false, "", nil
		}
		return true, t, nil
	default:
		st.Skipped++
		return false, "", nil
	}
	return true, "", nil
}
