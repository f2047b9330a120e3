package container

// Layers are the extra filesystem layers over the image: read-only overlay
// directories stacked below, and at most one writable layer on top (a tmpfs
// for --writable-tmpfs, or an --overlay directory). With Layers the
// container's root is an overlay of them over the image, instead of the
// image itself.
type Layers struct {
	// Tmpfs puts a memory-backed writable layer on top (--writable-tmpfs).
	Tmpfs bool `json:"tmpfs,omitempty"`
	// TmpfsSize is that tmpfs's size (tmpfs size= syntax).
	TmpfsSize string `json:"tmpfs_size,omitempty"`
	// Overlays are the --overlay directories in command-line order: a later
	// one lies above an earlier one. At most one is writable; it lies on top
	// of all the read-only ones.
	Overlays []Overlay `json:"overlays,omitempty"`
	// FuseOverlayfs is the fuse-overlayfs program (launch.conf
	// tools.fuse_overlayfs), used for writable layers of users other than
	// root.
	FuseOverlayfs string `json:"fuse_overlayfs,omitempty"`
}

// Overlay is one --overlay directory on the host.
type Overlay struct {
	// Dir is the host directory (absolute). A writable one holds the layer
	// in Dir/upper, overlayfs's work area in Dir/work and the lock file
	// Dir/launch.lock; a read-only one is used as Dir/upper when that
	// exists, else as Dir itself.
	Dir string `json:"dir"`
	// ReadOnly stacks the directory below the writable layer, unchanged.
	ReadOnly bool `json:"ro,omitempty"`
	// Image is set when Dir is an overlay image file rather than a
	// directory: the filesystem in it (ImageExt3, ImageSquashFS), which
	// lies at Offset (a SIF's overlay partition). Dev and Ino identify the
	// file the launcher checked (overlayimg_linux.go).
	Image  string `json:"image,omitempty"`
	Offset int64  `json:"offset,omitempty"`
	Dev    uint64 `json:"dev,omitempty"`
	Ino    uint64 `json:"ino,omitempty"`
}

// The filesystems of overlay images (Overlay.Image).
const (
	ImageExt3     = "ext3"
	ImageSquashFS = "squashfs"
)

// Writable reports whether the layers include a writable one.
func (l *Layers) Writable() bool {
	if l == nil {
		return false
	}
	if l.Tmpfs {
		return true
	}
	for _, o := range l.Overlays {
		if !o.ReadOnly {
			return true
		}
	}
	return false
}

// Overlay directory layout, shared by the launcher (which creates it) and
// the stage (which mounts it).
const (
	OverlayUpper = "upper"
	OverlayWork  = "work"
	OverlayLock  = "launch.lock"
)

// hasImage reports whether an overlay is an image of the filesystem kind.
func (l *Layers) hasImage(kind string) bool {
	for _, o := range l.Overlays {
		if o.Image == kind {
			return true
		}
	}
	return false
}
