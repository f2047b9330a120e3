package rootplan

import (
	"errors"
	"io/fs"
	"reflect"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/launch-hpc/launch/internal/mountplan"
)

// image makes an fs.FS of entries: "d/" a directory, "f" an empty file,
// "l->target" a symbolic link.
func image(entries []string) fstest.MapFS {
	m := fstest.MapFS{}
	for _, e := range entries {
		name, target, link := strings.Cut(e, "->")
		switch {
		case link:
			m[name] = &fstest.MapFile{Data: []byte(target), Mode: fs.ModeSymlink | 0o777}
		case strings.HasSuffix(e, "/"):
			m[strings.TrimSuffix(e, "/")] = &fstest.MapFile{Mode: fs.ModeDir | 0o755}
		default:
			m[e] = &fstest.MapFile{Mode: 0o644}
		}
	}
	return m
}

// lockedFS refuses to list the directory "locked".
type lockedFS struct{ fstest.MapFS }

func (l lockedFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if name == "locked" {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrPermission}
	}
	return l.MapFS.ReadDir(name)
}

func (l lockedFS) Lstat(name string) (fs.FileInfo, error) { return l.MapFS.Lstat(name) }
func (l lockedFS) ReadLink(name string) (string, error)   { return l.MapFS.ReadLink(name) }

func TestPlanUnderlays(t *testing.T) {
	busybox := []string{"bin/", "bin/sh", "dev/", "etc/", "etc/passwd", "etc/group", "home/", "proc/", "root/", "sys/", "tmp/"}
	bind := func(dest string) mountplan.Op { return mountplan.Op{Kind: mountplan.Bind, Source: dest, Dest: dest} }
	cases := []struct {
		name    string
		image   []string
		locked  bool
		ops     []mountplan.Op
		fileOps map[int]bool // binds of a file (default: a directory)
		missing map[int]bool // binds whose source is missing
		dirs    []string
		covered []string
		resolve []int // ops left to resolve at apply time
	}{
		{
			name:  "default mounts on a busybox image",
			image: busybox,
			ops: []mountplan.Op{
				bind("/proc"), bind("/sys"), bind("/dev"), bind("/tmp"), bind("/var/tmp"),
				{Kind: mountplan.File, Dest: "/etc/passwd"}, {Kind: mountplan.File, Dest: "/etc/group"},
				bind("/etc/hosts"), bind("/etc/resolv.conf"), bind("/home/alice"),
			},
			fileOps: map[int]bool{7: true, 8: true},
			dirs:    []string{"/", "/etc", "/home"},
			covered: []string{"/dev", "/etc/group", "/etc/passwd", "/proc", "/sys", "/tmp"},
		},
		{
			// -B /data:/opt/app/data -B /sw:/opt: the second covers the
			// directory the first needs an underlay in.
			name:    "a later op covers the directory an underlay would go to",
			image:   append([]string{"opt/", "opt/app/"}, busybox...),
			ops:     []mountplan.Op{bind("/opt/app/data"), bind("/opt"), bind("/scratch")},
			dirs:    []string{"/"},
			covered: []string{"/opt"},
			resolve: []int{0},
		},
		{
			name:    "nothing missing",
			image:   busybox,
			ops:     []mountplan.Op{bind("/proc"), {Kind: mountplan.Tmpfs, Dest: "/tmp"}},
			covered: []string{"/proc", "/tmp"},
		},
		{
			name:  "below an earlier mount: left to ensure",
			image: busybox,
			ops:   []mountplan.Op{{Kind: mountplan.Tmpfs, Dest: "/data"}, bind("/data/in"), bind("/tmp"), bind("/tmp/x/y")},
			dirs:  []string{"/"},
			// /tmp is covered by the bind of /tmp; /tmp/x/y lies below it.
			covered: []string{"/tmp"},
			resolve: []int{1, 3},
		},
		{
			name:    "a missing source mounts nothing and blocks nothing",
			image:   busybox,
			ops:     []mountplan.Op{bind("/etc"), bind("/etc/hosts")},
			missing: map[int]bool{0: true},
			fileOps: map[int]bool{1: true},
			dirs:    []string{"/etc"},
			resolve: []int{0},
		},
		{
			name:    "through a symbolic link: left to ensure",
			image:   append([]string{"var/", "var/run->/run", "run/"}, busybox...),
			ops:     []mountplan.Op{bind("/var/run/x"), bind("/run/y")},
			dirs:    []string{"/run"},
			resolve: []int{0},
		},
		{
			name:    "through a file, or the wrong kind: not planned",
			image:   busybox,
			ops:     []mountplan.Op{bind("/etc/passwd/x"), bind("/etc/group"), bind("/bin/sh")},
			fileOps: map[int]bool{2: true},
			covered: []string{"/bin/sh"},
			resolve: []int{0, 1},
		},
		{
			name:    "parents first",
			image:   []string{"a/", "a/b/", "a/b/c"},
			ops:     []mountplan.Op{bind("/a/b/new"), bind("/top"), bind("/a/b/c")},
			fileOps: map[int]bool{2: true},
			dirs:    []string{"/", "/a/b"},
			covered: []string{"/a/b/c"},
		},
		{
			name:    "an unreadable directory is left to ensure",
			image:   []string{"locked/"},
			locked:  true,
			ops:     []mountplan.Op{bind("/locked/x")},
			resolve: []int{0},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var fsys fs.FS = image(tc.image)
			if tc.locked {
				fsys = lockedFS{image(tc.image)}
			}
			targets := make([]Target, len(tc.ops))
			for i, op := range tc.ops {
				switch {
				case tc.missing[i]:
				case op.Kind == mountplan.File:
					targets[i] = Target{Mounts: true}
				default:
					targets[i] = Target{Mounts: true, Dir: !tc.fileOps[i]}
				}
			}
			x := NewIndex(fsys)
			if _, err := x.List("/"); err != nil {
				t.Fatal(err)
			}
			p := Make(tc.ops, targets, ImageRoot, x)
			var dirs, covered []string
			var resolve []int
			for _, s := range p.Steps {
				switch s.Kind {
				case UnderlayRoot, Underlay:
					dirs = append(dirs, s.Dir)
					if !p.Under[s.Dir] {
						t.Errorf("underlay step %s not in the set", s.Dir)
					}
				case Mount:
					if s.ResolveAtApply {
						resolve = append(resolve, s.Op)
					}
				}
			}
			// Underlays filled in their parent's have no step of their own.
			for d := range p.Under {
				if d != "/" && p.Under[parent(d)] {
					dirs = append(dirs, d)
				}
			}
			for c := range p.Covered {
				covered = append(covered, c)
			}
			sort.Strings(covered)
			sortByDepth(dirs)
			if !reflect.DeepEqual(dirs, tc.dirs) {
				t.Errorf("underlays %q, want %q", dirs, tc.dirs)
			}
			if !reflect.DeepEqual(covered, tc.covered) {
				t.Errorf("covered %q, want %q", covered, tc.covered)
			}
			if !reflect.DeepEqual(resolve, tc.resolve) {
				t.Errorf("resolved at apply time: ops %v, want %v", resolve, tc.resolve)
			}
		})
	}
}

func parent(d string) string {
	i := strings.LastIndex(d, "/")
	if i <= 0 {
		return "/"
	}
	return d[:i]
}

func sortByDepth(d []string) {
	sort.SliceStable(d, func(i, j int) bool {
		if depth(d[i]) != depth(d[j]) {
			return depth(d[i]) < depth(d[j])
		}
		return d[i] < d[j]
	})
}

// TestSteps checks the order of the steps for each kind of root.
func TestSteps(t *testing.T) {
	img := image([]string{"etc/", "etc/passwd", "usr/", "usr/share/"})
	ops := []mountplan.Op{
		{Kind: mountplan.Bind, Source: "/a", Dest: "/etc/hosts"},
		{Kind: mountplan.File, Dest: "/etc/passwd"},
		{Kind: mountplan.Bind, Source: "/b", Dest: "/usr/share/x"},
		{Kind: mountplan.Symlink, Source: "t", Dest: "/dev/ptmx"},
	}
	targets := []Target{{Mounts: true}, {Mounts: true}, {Mounts: true, Dir: true}, {}}
	str := func(p Plan) string {
		var out []string
		for _, s := range p.Steps {
			w := [...]string{"bind-image", "underlay-root", "underlay", "mount", "seal"}[s.Kind]
			switch s.Kind {
			case Underlay, UnderlayRoot:
				w += " " + s.Dir
			case Mount:
				w += " " + ops[s.Op].Dest
				if s.ResolveAtApply {
					w += " (at apply)"
				}
			}
			out = append(out, w)
		}
		return strings.Join(out, ", ")
	}
	for _, tc := range []struct {
		root Root
		want string
	}{
		{ImageRoot, "bind-image, underlay /etc, underlay /usr/share, mount /etc/hosts, mount /etc/passwd, mount /usr/share/x, mount /dev/ptmx (at apply), seal"},
		{SandboxRoot, "bind-image, mount /etc/hosts (at apply), mount /etc/passwd (at apply), mount /usr/share/x (at apply), mount /dev/ptmx (at apply), seal"},
		{LayersRoot, "mount /etc/hosts (at apply), mount /etc/passwd (at apply), mount /usr/share/x (at apply), mount /dev/ptmx (at apply), seal"},
	} {
		if got := str(Make(ops, targets, tc.root, NewIndex(img))); got != tc.want {
			t.Errorf("root %d:\n got %s\nwant %s", tc.root, got, tc.want)
		}
	}
	// A destination missing at the top makes the root an underlay.
	p := Make([]mountplan.Op{{Kind: mountplan.Tmpfs, Dest: "/scratch"}}, []Target{{Mounts: true, Dir: true}}, ImageRoot, NewIndex(img))
	if got := str(p); !strings.HasPrefix(got, "underlay-root /, mount") {
		t.Errorf("missing at the top: %s", got)
	}
}

func TestIndexLookup(t *testing.T) {
	x := NewIndex(image([]string{"etc/", "etc/passwd", "lib->usr/lib", "usr/", "usr/lib/"}))
	for _, listed := range []bool{false, true} {
		if listed {
			for _, d := range []string{"/", "/etc", "/usr"} {
				if _, err := x.List(d); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, tc := range []struct {
			path  string
			found bool
			mode  fs.FileMode
		}{
			{"/etc", true, fs.ModeDir},
			{"/etc/passwd", true, 0},
			{"/etc/hosts", false, 0},
			{"/lib", true, fs.ModeSymlink},
			{"/usr/lib", true, fs.ModeDir},
			{"/var", false, 0},
		} {
			mode, found, err := x.Lookup(tc.path)
			if err != nil || found != tc.found || mode != tc.mode {
				t.Errorf("listed %v: Lookup(%s) = %v, %v, %v; want %v, %v", listed, tc.path, mode, found, err, tc.mode, tc.found)
			}
		}
	}
	if _, err := NewIndex(lockedFS{image([]string{"locked/"})}).List("/locked"); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("an unreadable directory listed: %v", err)
	}
}
