package container

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/share"
)

// shareWait is how long a launch waits for the holder of a shared mount
// before it mounts the image itself (a holder answers as soon as its mount
// reads, or at once when it cannot share).
const shareWait = 5 * time.Second

// claimShare looks for a launch that already mounts this image, or
// becomes the one that does (internal/share). It returns true when the
// image will come from another launch's mount (attachShared), and false
// when this launch mounts the image itself. Only a stage that reports its
// status before cleaning up (holdOK) may hold: a holder lingers until its
// clients are done, and its launcher must not wait for that. Launches with
// --overlay or --writable-tmpfs neither hold nor join.
func (a *assembler) claimShare(holdOK bool) bool {
	if !a.cfg.Share || a.cfg.Layers != nil {
		// With layers the image mount is an overlay's lower layer: kept
		// to this launch's own mount.
		return false
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil || !share.KernelSupports(unix.ByteSliceToString(uts.Release[:])) {
		a.log.Debugf("not sharing the image mount: it needs Linux 6.15 or later")
		return false
	}
	bin, err := a.squashfuse()
	if err != nil {
		return false // startImage reports it
	}
	id, err := a.shareIdentity(bin.Binary)
	if err != nil {
		a.log.Debugf("not sharing the image mount: %v", err)
		return false
	}
	h, c, err := share.Claim(id, holdOK)
	a.tl.Mark("share-claimed")
	switch {
	case err != nil:
		a.log.Debugf("not sharing the image mount: %v", err)
	case h != nil:
		a.res.holder = h
		a.log.Debugf("serving the image mount to this user's other launches of it (%s)", h.Name)
	case c != nil:
		a.res.client = c
		a.log.Debugf("using the image mount of pid %d (%s)", c.HolderPid, c.Name)
		return true
	}
	return false
}

// shareIdentity says which mount this launch wants.
func (a *assembler) shareIdentity(bin string) (share.Identity, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(a.imgF.Fd()), &st); err != nil {
		return share.Identity{}, fmt.Errorf("stat %s: %w", a.cfg.Image.Path, err)
	}
	cg, err := readFile("/proc/self/cgroup")
	if err != nil {
		return share.Identity{}, err
	}
	// The user's secret keeps other users from computing (and binding
	// first) the rendezvous names; without one, names are still checked
	// by peer credentials, only guessable.
	// The host's home ($HOME), not the container's (--home may move it).
	key, err := share.UserKey(a.cfg.User.UID, os.Getenv("HOME"), os.Getenv)
	if err != nil {
		a.log.Debugf("sharing with names other users can compute: %v", err)
	}
	return share.Identity{
		UID: a.cfg.User.UID, GID: a.cfg.User.GID,
		Dev: st.Dev, Ino: st.Ino, Size: st.Size,
		MtimeNs: st.Mtim.Nano(), CtimeNs: st.Ctim.Nano(),
		Offset: a.cfg.Image.Offset, Server: bin,
		Scope:  share.Scope(string(cg), os.Getenv),
		Secret: key,
	}, nil
}

// attachShared attaches the holder's mount at target. On failure the
// caller mounts the image itself.
func (a *assembler) attachShared(target string) error {
	c := a.res.client
	mnt, err := c.Mount(shareWait)
	if err != nil {
		a.res.client = nil
		return err
	}
	defer mnt.Close()
	if err := unix.MoveMount(int(mnt.Fd()), "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		c.Close()
		a.res.client = nil
		return fmt.Errorf("attaching the shared image mount on %s: %w", target, err)
	}
	if c.Warm {
		a.log.Verbosef("using the warm image mount of pid %d, kept after its own launch ended (--linger)", c.HolderPid)
	}
	a.tl.Mark("image-shared")
	return nil
}

// sharePrepare readies the image mount at path, which reads, to be handed
// out once the payload has started (supervisor.run calls holder.Open).
// The clones are made later by the holder's other goroutines, on threads
// that keep CAP_SYS_ADMIN in the user namespace: dropPrivileges empties the
// capability sets of the locked thread only (capset is per thread), which
// is the thread that forks the payload.
func (a *assembler) sharePrepare(path string) {
	if h := a.res.holder; h != nil {
		if err := h.Prepare(path); err != nil {
			a.log.Debugf("not sharing the image mount: %v", err)
		}
	}
}
