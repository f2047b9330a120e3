// Package mountplan turns a run specification into an ordered list of typed
// mount operations: the container's view of the world as plain data. Build is
// pure (no syscalls), so every default and every precedence rule can be unit
// tested; internal/container applies the plan, strictly in order.
package mountplan

import (
	"fmt"
	"path/filepath"
	"strings"
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
)

// Generated files for File ops.
const (
	GenPasswd = "passwd"
	GenGroup  = "group"
)

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
}

func (o Op) String() string {
	var b strings.Builder
	b.WriteString(string(o.Kind))
	if o.Source != "" {
		b.WriteString(" " + o.Source + " ->")
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

// DefaultNames lists the names --no-mount accepts.
func DefaultNames() []string {
	return []string{"proc", "sys", "dev", "tmp", "home", "cwd", "passwd", "group", "hosts", "resolv", "localtime"}
}

// Build returns the plan for spec. It checks its input and touches nothing.
func Build(s Spec) (Plan, error) {
	for name := range s.Disabled {
		if !validName(name) {
			return Plan{}, fmt.Errorf("unknown mount %q for --no-mount (known: %s)", name, strings.Join(DefaultNames(), ","))
		}
	}
	var p Plan
	for _, d := range defaults {
		if s.Disabled[d.name] {
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
	}
	if h := clean(s.Home); h != "" && h != "/" && !s.Disabled["home"] {
		if !filepath.IsAbs(h) {
			return Plan{}, fmt.Errorf("home directory %q is not an absolute path", s.Home)
		}
		if !p.covered(h) {
			p.Ops = append(p.Ops, Op{Name: "home", Kind: Bind, Source: h, Dest: h})
		}
	}
	if c := clean(s.Cwd); c != "" && !s.Disabled["cwd"] && filepath.IsAbs(c) && !p.covered(c) {
		p.Ops = append(p.Ops, Op{Name: "cwd", Kind: Bind, Source: c, Dest: c, Optional: true})
	}
	return p, nil
}

// covered reports whether path is already visible at the same path through
// an earlier identity bind (or is the root), so binding it again is useless.
func (p Plan) covered(path string) bool {
	if path == "/" {
		return true
	}
	for _, op := range p.Ops {
		if (op.Kind == Bind && op.Source == op.Dest || op.Kind == Proc) && within(path, op.Dest) {
			return true
		}
	}
	return false
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/")
}

func clean(p string) string {
	if p == "" {
		return ""
	}
	return filepath.Clean(p)
}

func validName(n string) bool {
	for _, k := range DefaultNames() {
		if k == n {
			return true
		}
	}
	return false
}
