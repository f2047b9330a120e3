// Package mountplan turns a run specification into an ordered list of typed
// mount operations: the container's view of the world as plain data. Build is
// pure (no syscalls), so every default and every precedence rule can be unit
// tested; internal/rootplan orders it with the image's underlays and
// internal/container applies it, strictly in order. It must not make system
// calls or look at the image.
package mountplan

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/launch-hpc/launch/internal/paths"
)

// Kind is what an Op mounts.
type Kind string

// The kinds of mount operation.
const (
	// Bind binds the host path Source onto Dest.
	Bind Kind = "bind"
	// Proc mounts a new proc filesystem on Dest (needs a PID namespace).
	Proc Kind = "proc"
	// Tmpfs mounts an empty tmpfs on Dest.
	Tmpfs Kind = "tmpfs"
	// File binds a generated file (named by Gen) onto Dest.
	File Kind = "file"
	// Devpts mounts a new devpts instance on Dest (--contain's /dev/pts).
	Devpts Kind = "devpts"
	// Symlink makes Dest a symbolic link to Source (inside a tmpfs of ours).
	Symlink Kind = "symlink"
)

// Generated files for File ops.
const (
	GenPasswd = "passwd"
	GenGroup  = "group"
)

// UserBind is the Name of the op of a user's bind (-B, --mount).
const UserBind = "bind"

// Op is one mount operation.
type Op struct {
	// Name is the default-mount name this op came from ("home", "tmp", …)
	// or "bind" for a user bind; --no-mount refers to it.
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// Source is the host path for Bind.
	Source string `json:"source,omitempty"`
	// Dest is the absolute path inside the container.
	Dest string `json:"dest"`
	// ReadOnly makes the mount (and its submounts) read-only.
	ReadOnly bool `json:"ro,omitempty"`
	// Optional ops are skipped, without an error, when Source is missing.
	Optional bool `json:"optional,omitempty"`
	// Gen names the generated content of a File op.
	Gen string `json:"gen,omitempty"`
	// Size limits a Tmpfs op (tmpfs size= syntax, "" for the kernel default).
	Size string `json:"size,omitempty"`
	// Mode is a Tmpfs op's root mode in octal ("" for 1777).
	Mode string `json:"mode,omitempty"`
	// Beneath, for a Bind from below a --workdir, is that workdir: the
	// part of Source below it is opened without following a symbolic
	// link and must be the user's own directories.
	Beneath string `json:"beneath,omitempty"`
	// IfAbsent, for a Bind, skips it when the image has Dest already
	// (DeviceMount.IfAbsent).
	IfAbsent bool `json:"if_absent,omitempty"`
}

func (o Op) String() string {
	var b strings.Builder
	b.WriteString(string(o.Kind))
	if o.Source != "" {
		b.WriteString(" " + o.Source + " ->")
	}
	if o.Kind == Tmpfs && o.Size != "" {
		b.WriteString(" size=" + o.Size)
	}
	if o.Gen != "" {
		b.WriteString(" <" + o.Gen + "> ->")
	}
	b.WriteString(" " + o.Dest)
	if o.ReadOnly {
		b.WriteString(" (ro)")
	}
	return b.String()
}

// Plan is the ordered list of mounts that make the container's view.
type Plan struct {
	Ops []Op `json:"ops"`
}

// Spec is what Build needs to know: plain data from the command line, the
// environment and the admin config.
type Spec struct {
	// Home is the user's home directory on the host ("" for none).
	Home string
	// Cwd is the working directory on the host.
	Cwd string
	// PIDNamespace is true when the container gets its own PID namespace,
	// so a fresh /proc can be mounted instead of the host's.
	PIDNamespace bool
	// Disabled names default mounts to leave out (--no-mount).
	Disabled map[string]bool
	// HomeSrc and HomeDst are the host directory bound as home and where
	// it appears inside (-H SRC[:DST]); "" means Home for both.
	HomeSrc, HomeDst string
	// HomeGiven is true when the user named a home with -H, which --contain
	// then binds instead of an empty one.
	HomeGiven bool
	// Contain gives the container a minimal /dev, private /tmp and
	// /var/tmp, and an empty home, and binds no working directory.
	Contain bool
	// ContainSize is the size of the tmpfs mounts of Contain.
	ContainSize string
	// Scratch are the paths of --scratch (checked with CheckDest): each an
	// empty writable directory, a tmpfs of ScratchSize, or with Workdir a
	// directory under it.
	Scratch []string
	// ScratchSize is the size of each Scratch tmpfs.
	ScratchSize string
	// Workdir is the host directory of --workdir ("" for none): it backs
	// Scratch, and with Contain /tmp and /var/tmp (see WorkdirPath).
	Workdir string
	// System are the site's binds (launch.conf mounts.system), applied
	// after the defaults; their sources are optional.
	System []BindSpec
	// Binds are the user's binds in order (from ParseBinds or ParseMount),
	// applied last so they win.
	Binds []BindSpec
	// Devices are what --nv, --rocm and --device bind (devices.go), after
	// System.
	Devices []DeviceMount
}

// defaultMount is one row of the table of default mounts.
type defaultMount struct {
	name     string
	kind     Kind
	src, dst string // "" dst means same as src
	ro       bool
	optional bool
	gen      string
}

// defaults is the table of mounts every container gets, in order. Home and
// the working directory are added after it from the Spec.
var defaults = []defaultMount{
	{name: "proc", kind: Bind, src: "/proc"},
	{name: "sys", kind: Bind, src: "/sys"},
	{name: "dev", kind: Bind, src: "/dev"},
	{name: "tmp", kind: Bind, src: "/tmp"},
	{name: "tmp", kind: Bind, src: "/var/tmp", optional: true},
	{name: "passwd", kind: File, dst: "/etc/passwd", gen: GenPasswd},
	{name: "group", kind: File, dst: "/etc/group", gen: GenGroup},
	{name: "hosts", kind: Bind, src: "/etc/hosts", ro: true, optional: true},
	{name: "resolv", kind: Bind, src: "/etc/resolv.conf", ro: true, optional: true},
	{name: "localtime", kind: Bind, src: "/etc/localtime", ro: true, optional: true},
}

// containDev is the minimal /dev of --contain, mounted in order.
var containDev = []Op{
	{Name: "dev", Kind: Tmpfs, Dest: "/dev", Mode: "0755", Size: "1m"},
	{Name: "dev", Kind: Bind, Source: "/dev/null", Dest: "/dev/null"},
	{Name: "dev", Kind: Bind, Source: "/dev/zero", Dest: "/dev/zero"},
	{Name: "dev", Kind: Bind, Source: "/dev/full", Dest: "/dev/full"},
	{Name: "dev", Kind: Bind, Source: "/dev/random", Dest: "/dev/random"},
	{Name: "dev", Kind: Bind, Source: "/dev/urandom", Dest: "/dev/urandom"},
	{Name: "dev", Kind: Bind, Source: "/dev/tty", Dest: "/dev/tty", Optional: true},
	{Name: "dev", Kind: Devpts, Dest: "/dev/pts"},
	{Name: "dev", Kind: Symlink, Source: "pts/ptmx", Dest: "/dev/ptmx"},
	{Name: "dev", Kind: Tmpfs, Dest: "/dev/shm"},
	{Name: "dev", Kind: Symlink, Source: "/proc/self/fd", Dest: "/dev/fd"},
	{Name: "dev", Kind: Symlink, Source: "/proc/self/fd/0", Dest: "/dev/stdin"},
	{Name: "dev", Kind: Symlink, Source: "/proc/self/fd/1", Dest: "/dev/stdout"},
	{Name: "dev", Kind: Symlink, Source: "/proc/self/fd/2", Dest: "/dev/stderr"},
}

// Build returns the plan for spec. It touches nothing. It checks the
// names of Disabled and the home directory; the destinations of Binds and
// System were checked when they were parsed (ParseBinds, ParseMount), and
// those of Scratch by runspec.Validate, so they are not checked again.
func Build(s Spec) (Plan, error) {
	offDest := map[string]bool{} // site binds left out by destination
	for name := range s.Disabled {
		if !validName(name) {
			return Plan{}, fmt.Errorf("unknown mount %q for --no-mount (known: %s)", name, NoMountHelp())
		}
		if strings.HasPrefix(name, "/") {
			offDest[clean(name)] = true
		}
	}
	var p Plan
	for _, d := range defaults {
		if s.Disabled[d.name] {
			continue
		}
		if s.Contain && (d.name == "dev" || d.name == "tmp") {
			continue
		}
		dst := d.dst
		if dst == "" {
			dst = d.src
		}
		op := Op{Name: d.name, Kind: d.kind, Source: d.src, Dest: dst, ReadOnly: d.ro, Optional: d.optional, Gen: d.gen}
		if d.name == "proc" && s.PIDNamespace {
			op = Op{Name: "proc", Kind: Proc, Dest: "/proc"}
		}
		p.Ops = append(p.Ops, op)
		if d.name == "sys" && s.Contain {
			p.Ops = append(p.Ops, p.containOps(s)...)
		}
	}
	if err := p.addHome(s); err != nil {
		return Plan{}, err
	}
	if c := clean(s.Cwd); c != "" && !s.Disabled["cwd"] && !s.Contain && filepath.IsAbs(c) && !p.covered(c) {
		p.Ops = append(p.Ops, Op{Name: "cwd", Kind: Bind, Source: c, Dest: c, Optional: true})
	}
	for _, b := range s.System {
		if s.Disabled[NoBindPaths] || offDest[clean(b.Dest)] {
			continue
		}
		p.Ops = append(p.Ops, Op{Name: "system", Kind: Bind, Source: b.Source, Dest: b.Dest, ReadOnly: b.ReadOnly, Optional: true})
	}
	p.Ops = append(p.Ops, deviceOps(s.Devices)...)
	for _, d := range s.Scratch {
		d = clean(d)
		if s.Workdir != "" {
			p.Ops = append(p.Ops, Op{Name: "scratch", Kind: Bind, Source: WorkdirPath(s.Workdir, d), Dest: d, Beneath: s.Workdir})
		} else {
			p.Ops = append(p.Ops, Op{Name: "scratch", Kind: Tmpfs, Dest: d, Size: s.ScratchSize, Mode: "0755"})
		}
	}
	for _, b := range s.Binds {
		p.Ops = append(p.Ops, Op{Name: UserBind, Kind: Bind, Source: b.Source, Dest: b.Dest, ReadOnly: b.ReadOnly})
	}
	return p, nil
}

// WorkdirPath is the host directory under the --workdir WD that backs the
// container path dest: WD/tmp, WD/var_tmp, and WD/scratch/NAME for a
// --scratch path (NAME is the path with "/" as "_": /data/out → data_out).
func WorkdirPath(wd, dest string) string {
	switch dest {
	case "/tmp":
		return filepath.Join(wd, "tmp")
	case "/var/tmp":
		return filepath.Join(wd, "var_tmp")
	}
	return filepath.Join(wd, "scratch", strings.ReplaceAll(strings.Trim(dest, "/"), "/", "_"))
}

// containOps are the private /dev, /tmp and /var/tmp of --contain.
func (p Plan) containOps(s Spec) []Op {
	var ops []Op
	if !s.Disabled["dev"] {
		for _, op := range containDev {
			if s.Disabled[NoDevpts] && (op.Kind == Devpts || op.Dest == "/dev/ptmx") {
				continue
			}
			ops = append(ops, op)
		}
	}
	if !s.Disabled["tmp"] && s.Workdir != "" {
		ops = append(ops,
			Op{Name: "tmp", Kind: Bind, Source: WorkdirPath(s.Workdir, "/tmp"), Dest: "/tmp", Beneath: s.Workdir},
			Op{Name: "tmp", Kind: Bind, Source: WorkdirPath(s.Workdir, "/var/tmp"), Dest: "/var/tmp", Beneath: s.Workdir})
	} else if !s.Disabled["tmp"] {
		ops = append(ops,
			Op{Name: "tmp", Kind: Tmpfs, Dest: "/tmp", Size: s.ContainSize},
			Op{Name: "tmp", Kind: Tmpfs, Dest: "/var/tmp", Size: s.ContainSize})
	}
	return ops
}

// addHome adds the home directory: the host's (or -H's) bound, or with
// --contain an empty private one.
func (p *Plan) addHome(s Spec) error {
	src, dst := clean(s.HomeSrc), clean(s.HomeDst)
	if src == "" {
		src = clean(s.Home)
	}
	if dst == "" {
		dst = src
	}
	if src == "" || dst == "/" || s.Disabled["home"] {
		return nil
	}
	if !filepath.IsAbs(src) {
		return fmt.Errorf("home directory %q is not an absolute path", src)
	}
	if err := CheckDest(dst); err != nil {
		return fmt.Errorf("home directory: %w", err)
	}
	if s.Contain && !s.HomeGiven {
		p.Ops = append(p.Ops, Op{Name: "home", Kind: Tmpfs, Dest: dst, Size: s.ContainSize, Mode: "0700"})
		return nil
	}
	if src == dst && p.covered(dst) {
		return nil
	}
	p.Ops = append(p.Ops, Op{Name: "home", Kind: Bind, Source: src, Dest: dst})
	return nil
}

// covered reports whether path is already visible at the same path through
// an earlier identity bind (or is the root), so binding it again is useless.
func (p Plan) covered(path string) bool {
	if path == "/" {
		return true
	}
	for _, op := range p.Ops {
		if (op.Kind == Bind && op.Source == op.Dest || op.Kind == Proc) && paths.Within(path, op.Dest) {
			return true
		}
	}
	return false
}

func clean(p string) string {
	if p == "" {
		return ""
	}
	return filepath.Clean(p)
}
