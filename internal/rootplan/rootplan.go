// Package rootplan plans the container's root: from the mount plan
// (internal/mountplan) and an index of the image (an io/fs.FS view of it) it
// makes the full ordered list of steps that build the root — the root
// itself, the underlays (small tmpfs copies of image directories that lack a
// mount point), every op of the plan, and making the underlays read-only —
// so that no mount ever has to be saved and put back on top of a later
// underlay.
//
// It owns the decisions of which image directories get an underlay, which
// image entries an op mounts on (created, not bound, in an underlay), and
// which ops cannot be planned ahead: those whose mount point depends on what
// an earlier step mounted, or lies behind a symbolic link in the image, are
// Mount steps marked ResolveAtApply, resolved by the executor when applied.
//
// It must not mount, open host paths or create anything: it reads the image
// only through the fs.FS it is given, and makes no system call of its own.
// The executor (internal/container, assemble_linux.go: assembler.step) applies the steps in
// order and keeps the security checks of applying them (resolving inside the
// root, never creating on a host path, never writing through a link).
package rootplan

import (
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/launch-hpc/launch/internal/mountplan"
)

// Root is what the container's root is made of.
type Root int

const (
	// ImageRoot: the read-only image, with underlays where mount points
	// are missing.
	ImageRoot Root = iota
	// SandboxRoot: a --writable sandbox directory, where mount points are
	// made in place when it can take them (no underlays planned).
	SandboxRoot
	// LayersRoot: an overlay of layers over the image, made before the
	// plan (its mount points come from a mount point layer): only the ops
	// are planned.
	LayersRoot
)

// StepKind says what a step does.
type StepKind int

const (
	// BindImage binds the image view on the root (the root is the image).
	BindImage StepKind = iota
	// UnderlayRoot makes the root itself an underlay: that tmpfs is the
	// new root, nothing needs to be bound below it.
	UnderlayRoot
	// Underlay replaces the image directory Dir with an underlay (its
	// planned subdirectories are filled in the same tmpfs).
	Underlay
	// Mount applies op Op of the mount plan.
	Mount
	// Seal makes the underlays still in sight read-only.
	Seal
)

// Step is one step of building the root.
type Step struct {
	Kind StepKind
	// Dir is the image directory of an Underlay step ("/etc").
	Dir string
	// Op is the index in the mount plan of a Mount step.
	Op int
	// ResolveAtApply: the mount point of a Mount step was not planned
	// (it depends on an earlier mount, or on a symbolic link in the image,
	// or the root is not the image): the executor finds it, and makes an
	// underlay for it if one is needed, when the step is applied.
	ResolveAtApply bool
}

// Target is what op i of the mount plan mounts: whether anything (a bind
// whose optional source is missing, a symlink, mount nothing) and whether
// on a directory.
type Target struct {
	Mounts, Dir bool
}

// Plan is the ordered list of steps, with what the Underlay steps need.
type Plan struct {
	Steps []Step
	// Under are the image directories that get an underlay, as a set
	// (the UnderlayRoot and Underlay steps, and those filled in them).
	Under map[string]bool
	// Covered are the image entries a planned op mounts on: an underlay
	// creates them empty instead of binding them from the image.
	Covered map[string]bool
}

// Make plans the root for ops (targets[i] says what op i mounts) on root,
// reading the image through x.
func Make(ops []mountplan.Op, targets []Target, root Root, x *Index) Plan {
	p := Plan{Under: map[string]bool{}, Covered: map[string]bool{}}
	var dirs []string
	planned := map[int]bool{}
	if root == ImageRoot {
		dirs = planUnderlays(ops, targets, x, &p, planned)
	}
	if root != LayersRoot {
		if p.Under["/"] {
			p.Steps = append(p.Steps, Step{Kind: UnderlayRoot, Dir: "/"})
		} else {
			p.Steps = append(p.Steps, Step{Kind: BindImage})
		}
	}
	for _, d := range dirs {
		if d == "/" || p.Under[path.Dir(d)] {
			continue // the root's, or filled in its parent's underlay
		}
		p.Steps = append(p.Steps, Step{Kind: Underlay, Dir: d})
	}
	for i := range ops {
		p.Steps = append(p.Steps, Step{Kind: Mount, Op: i, ResolveAtApply: !planned[i]})
	}
	p.Steps = append(p.Steps, Step{Kind: Seal})
	return p
}

// plannable reports whether op i's mount point can be planned ahead: it
// mounts something on an absolute destination other than "/", and no
// earlier op mounts on that destination or a directory above it. (A path
// through a symbolic link is found while planning: see planUnderlays.)
func plannable(ops []mountplan.Op, targets []Target, i int) bool {
	if !targets[i].Mounts || !path.IsAbs(ops[i].Dest) {
		return false
	}
	dest := path.Clean(ops[i].Dest)
	if dest == "/" {
		return false
	}
	for j := 0; j < i; j++ {
		if !targets[j].Mounts || !path.IsAbs(ops[j].Dest) {
			continue
		}
		if below(dest, path.Clean(ops[j].Dest)) {
			return false
		}
	}
	return true
}

// below reports whether p is dir or lies below it.
func below(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// planUnderlays finds, before any mount is made, every image directory in
// which the plan needs a mount point that the image lacks: each gets its
// underlay at once, so no mount of the plan ever has to be saved and put
// back on top of a later underlay, and an underlay does not bind from the
// image what an op mounts on anyway, nor a directory that gets its own
// underlay. It fills p.Under and p.Covered, sets planned[i] for each op
// whose mount point it found or placed in an underlay, and returns the
// directories, parents first.
//
// An op is planned only when no earlier op mounts on its destination or a
// directory above it (plannable), and when its destination does not lead
// through a symbolic link in the image: such mount points depend on what is
// mounted by then, and the executor finds them when the op is applied.
func planUnderlays(ops []mountplan.Op, targets []Target, x *Index, p *Plan, planned map[int]bool) []string {
	var dirs []string
	need := map[int]string{} // op → the directory whose underlay it needs
	for i, op := range ops {
		if !plannable(ops, targets, i) {
			continue
		}
		dest := path.Clean(op.Dest)
		cur := "/"
		for rest := dest[1:]; ; {
			name, more, _ := strings.Cut(rest, "/")
			next := path.Join(cur, name)
			t, found, err := x.Lookup(next)
			if err != nil {
				break // the executor reports what is wrong, if anything
			}
			if !found {
				// An unreadable directory is left to the executor, which reports it.
				if _, err := x.List(cur); err == nil {
					if !p.Under[cur] {
						p.Under[cur] = true
						dirs = append(dirs, cur)
					}
					planned[i], need[i] = true, cur
				}
				break
			}
			if t&fs.ModeSymlink != 0 {
				break
			}
			if more == "" {
				if t.IsDir() == targets[i].Dir {
					p.Covered[next] = true
					planned[i] = true
				}
				break
			}
			if !t.IsDir() {
				break
			}
			cur, rest = next, more
		}
	}
	// A later op that covers a directory (or one of its parents) makes an
	// underlay there pointless, and impossible when the covered entry sits
	// in another underlay, where it is only created, empty: the mount
	// points below it are left to the executor, when their ops are applied.
	kept := dirs[:0]
	for _, d := range dirs {
		if underCovered(d, p.Covered) {
			delete(p.Under, d)
			continue
		}
		kept = append(kept, d)
	}
	for i, d := range need {
		if !p.Under[d] {
			planned[i] = false // its underlay is made when it is applied
		}
	}
	sort.SliceStable(kept, func(i, j int) bool { return depth(kept[i]) < depth(kept[j]) })
	return kept
}

// underCovered reports whether d or one of its parents is in covered.
func underCovered(d string, covered map[string]bool) bool {
	for c := d; ; c = path.Dir(c) {
		if covered[c] {
			return true
		}
		if c == "/" {
			return false
		}
	}
}

// depth is the number of components of an absolute clean path ("/" has 0).
func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}
