// Package share lets the launches that one user starts at the same time
// on one node, from one image and in one job step, use a single squashfuse
// mount of the image instead of one each.
//
// The first launch to claim an image's rendezvous (an abstract unix socket
// named after the user and the image, with a secret of the user's mixed
// in: see Identity.Name) becomes its holder: it mounts the
// image as usual and, once the mount is up, hands every launch that
// connects a clone of that mount (open_tree(2) and SCM_RIGHTS), which the
// other launch attaches in its own namespaces (move_mount(2)). The image's
// pages are then read and decompressed once, by one squashfuse process,
// and stay in the page cache for all of them.
//
// Each client keeps its connection open for as long as it lives, and the
// kernel closes it however the client ends. When the holder's own payload
// is done, the holder stops taking new clients (a later launch claims the
// rendezvous anew), reports its exit status so that its launcher exits at
// once, and then waits for its clients' connections to close before it
// stops squashfuse: nothing is left running once the last one is gone.
//
// Sharing is limited to launches that a batch system or a service manager
// would kill together (see Scope): a holder killed with its job step must
// not take the image away from a launch of another step.
//
// It must not mount the image or start a FUSE server itself: internal/container does, and
// hands it the mount to clone.
package share

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/launch-hpc/launch/internal/jobenv"
)

// Version is the protocol version carried in every request; a holder that
// speaks another version is not used.
const Version = "launch-share/1"

// Identity is what a mount must agree on to be shared: the same image file
// and filesystem in it, served by the same program to the same user, in
// the same kill domain.
type Identity struct {
	UID, GID int
	// Dev, Ino, Size, MtimeNs and CtimeNs identify the image file: a file
	// replaced or rewritten in place gets another key.
	Dev, Ino         uint64
	Size             int64
	MtimeNs, CtimeNs int64
	// Offset is where the SquashFS starts in the file.
	Offset int64
	// Server is the squashfuse program serving the mount.
	Server string
	// Scope is the kill domain (Scope).
	Scope string
	// Secret is the user's share key (UserKey), mixed into the rendezvous
	// names so that other users cannot compute them; nil when there is
	// none (the names are then only a hash of the key).
	Secret []byte
}

// Key is the identity as one string, sent with every request and compared
// by the holder. The secret is not part of it.
func (id Identity) Key() string {
	return fmt.Sprintf("%s uid=%d gid=%d dev=%d ino=%d size=%d mtime=%d ctime=%d offset=%d server=%q scope=%q",
		Version, id.UID, id.GID, id.Dev, id.Ino, id.Size, id.MtimeNs, id.CtimeNs, id.Offset, id.Server, id.Scope)
}

// Generations is how many rendezvous names an identity has. Abstract
// socket names are visible to all users (/proc/net/unix), and anyone may
// bind one that is free: a name another user holds is passed over for the
// next one, so that squatting a name once seen in use does not end the
// sharing of that image.
const Generations = 4

// Name is the abstract socket name of the rendezvous generation gen (0 to
// Generations-1) for id: per user, so the name says whose it is, and an
// HMAC of the key under the user's secret, so that no other user can
// compute it (a name cannot be squatted before it is first used), and
// short.
func (id Identity) Name(gen int) string {
	m := hmac.New(sha256.New, id.Secret)
	m.Write([]byte(id.Key()))
	fmt.Fprintf(m, "\x00generation=%d", gen)
	return fmt.Sprintf("@launch/share/%d/%s", id.UID, hex.EncodeToString(m.Sum(nil)[:16]))
}

// Scope names the kill domain of the calling process: the cgroups it is in
// (what systemd and Slurm's cgroup plugins kill as one), with the tasks of
// one Slurm step taken together, and the batch system's job (and Slurm
// step) from the environment (what a batch system that tracks process
// trees or sessions kills as one). cgroup is the content of
// /proc/self/cgroup.
func Scope(cgroup string, getenv func(string) string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(cgroup), "\n") {
		// hierarchy-ID:controllers:path
		if i := strings.LastIndexByte(line, ':'); i >= 0 {
			line = line[:i+1] + stepOf(line[i+1:])
		}
		b.WriteString(line)
		b.WriteByte(';')
	}
	for _, v := range jobenv.ScopeVars() {
		if s := getenv(v); s != "" {
			b.WriteString(v + "=" + s + ";")
		}
	}
	return b.String()
}

// stepOf drops the per-task part of a Slurm cgroup path ("…/step_0/task_3"
// with cgroup v1, "…/step_0/user/task_3" with v2): every task of a step is
// killed with the step. Other paths are returned as they are.
func stepOf(p string) string {
	dir, task := path.Split(p)
	digits := strings.TrimPrefix(task, "task_")
	if digits == task || digits == "" || strings.Trim(digits, "0123456789") != "" {
		return p
	}
	dir = strings.TrimSuffix(dir, "/")
	if step := strings.TrimSuffix(dir, "/user"); strings.HasPrefix(path.Base(step), "step_") {
		return step
	}
	return p
}

// KernelSupports reports whether a kernel release ("6.18.44-fc", from
// uname) clones detached mounts, as a holder must: Linux 6.15 or later.
// Earlier kernels only clone mounts of the caller's own mount namespace.
func KernelSupports(release string) bool {
	maj, rest, _ := strings.Cut(release, ".")
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(rest)
	}
	major, err1 := strconv.Atoi(maj)
	minor, err2 := strconv.Atoi(rest[:end])
	if err1 != nil || err2 != nil {
		return false
	}
	return major > 6 || major == 6 && minor >= 15
}
