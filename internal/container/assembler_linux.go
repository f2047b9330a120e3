package container

import (
	"os"
	"sync"

	"github.com/launch-hpc/launch/internal/fuse"
	"github.com/launch-hpc/launch/internal/msg"
	"github.com/launch-hpc/launch/internal/rootplan"
	"github.com/launch-hpc/launch/internal/share"
	"github.com/launch-hpc/launch/internal/timeline"
	"github.com/launch-hpc/launch/internal/warmroot"
)

// deps are what the assembler is given: where it logs, the timeline it
// marks, how it forks a FUSE server (the stage's reaper, on its locked
// thread), and whether it may serve its image mount to other launches (a
// stage that reports its status before it cleans up: see stage).
type deps struct {
	log    *msg.Logger
	tl     *timeline.T // nil unless LAUNCH_TIMELINE is set
	fork   fuse.Forker
	holdOK bool
	// imgLayers collects the servers of overlay images (overlayimg_linux.go).
	imgLayers *imageLayers
}

// started is what assembling the root started or holds and the stage must
// stop or keep: the assembler hands it to the supervisor, which owns it
// from then on (also when the assembly failed half-way).
type started struct {
	server *fuse.Server  // the image's FUSE server; nil when none
	holder *share.Holder // serving the image mount to other launches
	client *share.Client // using another launch's image mount
	// overlay serves a fuse-overlayfs root; it is killed with the
	// payload's leftovers (a descendant like them), after server.
	overlay *fuse.Server
	// held are descriptors kept open while the root is assembled: the
	// image file, the --overlay directories.
	held []*os.File
	// locks are the --overlay directories' locks: plain descriptors (no
	// finalizer may close one), never closed, released when the stage
	// exits, after every process that could write to a layer is gone.
	locks []int
}

// assembler builds the container's root in the staging tmpfs.
type assembler struct {
	cfg *Config
	deps
	mountTable // the new root (a.root) and what is mounted in it
	res        started
	image      string           // the pristine image view
	files      string           // generated files (a tmpfs of their own: mountFiles)
	index      *rootplan.Index  // what the pristine image view holds
	srcs       map[int]*os.File // host sources of bind ops, by op index
	hostDeps   []warmroot.Dep   // the host files the container is made from (warmroot_linux.go)
	imgF       *os.File         // the image file (SIF/squashfs) or dir
	isDir      map[int]bool     // whether each bind source is a directory

	filesDir *os.File        // the tmpfs at files, once mounted (O_PATH)
	bin      fuse.Squashfuse // the squashfuse program, once found

	layerFDs    []*os.File // the --overlay directories, in order
	layerEngine string     // what serves the overlay root, for -v
}

// squashfuse finds the squashfuse program (once).
func (a *assembler) squashfuse() (fuse.Squashfuse, error) {
	if a.bin.Binary == "" {
		bin, err := fuse.FindSquashfuse(a.cfg.Squashfuse)
		if err != nil {
			return bin, err
		}
		a.bin = bin
	}
	return a.bin, nil
}

// imageLayers are the FUSE servers of overlay images. The supervisor makes
// it and the assembler adds to it, so that an abort during the set-up
// knows them too: the fuse2fs ones (graceful) must never be killed
// outright, but stopped with Hangup and waited for.
type imageLayers struct {
	mu    sync.Mutex
	ext3  []*fuse.Server
	other []*fuse.Server
}
