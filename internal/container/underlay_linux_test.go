package container

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/launch-hpc/launch/internal/mountplan"
)

// makeTree creates entries under root: "d/" a directory, "f" an empty file,
// "l->target" a symbolic link.
func makeTree(t *testing.T, root string, entries []string) {
	t.Helper()
	for _, e := range entries {
		p := filepath.Join(root, strings.TrimSuffix(strings.Split(e, "->")[0], "/"))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.Contains(e, "->"):
			err = os.Symlink(strings.Split(e, "->")[1], p)
		case strings.HasSuffix(e, "/"):
			err = os.Mkdir(p, 0o755)
		default:
			err = os.WriteFile(p, nil, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestPlanUnderlays(t *testing.T) {
	busybox := []string{"bin/", "bin/sh", "dev/", "etc/", "etc/passwd", "etc/group", "home/", "proc/", "root/", "sys/", "tmp/"}
	bind := func(dest string) mountplan.Op { return mountplan.Op{Kind: mountplan.Bind, Source: dest, Dest: dest} }
	cases := []struct {
		name    string
		image   []string
		ops     []mountplan.Op
		fileOps map[int]bool // binds of a file (default: a directory)
		missing map[int]bool // binds whose source is missing
		dirs    []string
		covered []string
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
		},
		{
			name:    "a missing source mounts nothing and blocks nothing",
			image:   busybox,
			ops:     []mountplan.Op{bind("/etc"), bind("/etc/hosts")},
			missing: map[int]bool{0: true},
			fileOps: map[int]bool{1: true},
			dirs:    []string{"/etc"},
		},
		{
			name:  "through a symbolic link: left to ensure",
			image: append([]string{"var/", "var/run->/run", "run/"}, busybox...),
			ops:   []mountplan.Op{bind("/var/run/x"), bind("/run/y")},
			dirs:  []string{"/run"},
		},
		{
			name:    "through a file, or the wrong kind: not planned",
			image:   busybox,
			ops:     []mountplan.Op{bind("/etc/passwd/x"), bind("/etc/group"), bind("/bin/sh")},
			fileOps: map[int]bool{2: true},
			covered: []string{"/bin/sh"},
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
			name:  "an unreadable directory is left to ensure",
			image: []string{"locked/"},
			ops:   []mountplan.Op{bind("/locked/x")},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			makeTree(t, root, tc.image)
			if tc.name == "an unreadable directory is left to ensure" {
				if os.Getuid() == 0 {
					t.Skip("root reads any directory")
				}
				if err := os.Chmod(filepath.Join(root, "locked"), 0o311); err != nil {
					t.Fatal(err)
				}
			}
			mounts := func(i int) (bool, bool) {
				if tc.missing[i] {
					return false, false
				}
				if tc.ops[i].Kind == mountplan.File {
					return true, false
				}
				return true, !tc.fileOps[i]
			}
			x := newImageIndex(root)
			if _, err := x.list("/"); err != nil {
				t.Fatal(err)
			}
			p := planUnderlays(tc.ops, mounts, x)
			var covered []string
			for c := range p.covered {
				covered = append(covered, c)
			}
			sort.Strings(covered)
			if !reflect.DeepEqual(p.dirs, tc.dirs) {
				t.Errorf("underlays %q, want %q", p.dirs, tc.dirs)
			}
			if !reflect.DeepEqual(covered, tc.covered) {
				t.Errorf("covered %q, want %q", covered, tc.covered)
			}
			for _, d := range p.dirs {
				if !p.under[d] {
					t.Errorf("%s in dirs but not in the set", d)
				}
			}
		})
	}
}

func TestImageIndexLookup(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, []string{"etc/", "etc/passwd", "lib->usr/lib", "usr/", "usr/lib/"})
	x := newImageIndex(root)
	for _, listed := range []bool{false, true} {
		if listed {
			for _, d := range []string{"/", "/etc", "/usr"} {
				if _, err := x.list(d); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, tc := range []struct {
			path  string
			found bool
			mode  os.FileMode
		}{
			{"/etc", true, os.ModeDir},
			{"/etc/passwd", true, 0},
			{"/etc/hosts", false, 0},
			{"/lib", true, os.ModeSymlink},
			{"/usr/lib", true, os.ModeDir},
			{"/var", false, 0},
		} {
			mode, found, err := x.lookup(tc.path)
			if err != nil || found != tc.found || mode != tc.mode {
				t.Errorf("listed %v: lookup(%s) = %v, %v, %v; want %v, %v", listed, tc.path, mode, found, err, tc.mode, tc.found)
			}
		}
	}
}

// TestMountRecords checks that the records originOf and inUnderlay answer
// from follow the mounts as they are: a mount covers what was mounted at or
// below its path before, so those records go.
func TestMountRecords(t *testing.T) {
	const r = "/s/root"
	underlay := func(p string) mountRec { return mountRec{path: p, origin: fromTmpfs, underlay: true, dev: 7} }
	cases := []struct {
		name      string
		mounts    []mountRec
		origins   map[string]origin // path → origin wanted
		underlays map[string]string // file path → its path in an underlay, "" for none
	}{
		{"image with an /etc underlay",
			[]mountRec{{path: r, origin: fromImage}, underlay(r + "/etc"), {path: r + "/etc/hosts", origin: fromHost}},
			map[string]origin{r + "/etc/x": fromTmpfs, r + "/usr": fromImage, r + "/etc/hosts": fromHost, r + "/etcx": fromImage},
			map[string]string{r + "/etc/passwd": "passwd", r + "/etc/hosts": "", r + "/etc": "", r + "/bin/sh": ""}},
		{"the host's /tmp bound over the root (an image's /tmp -> /)",
			[]mountRec{{path: r, origin: fromImage}, underlay(r + "/etc"), {path: r + "/proc", origin: fromHost}, {path: r, origin: fromHost}},
			map[string]origin{r + "/etc": fromHost, r + "/etc/passwd": fromHost, r + "/proc": fromHost, r: fromHost},
			map[string]string{r + "/etc/passwd": ""}},
		{"a host directory bound over /etc covers its underlay",
			[]mountRec{{path: r, origin: fromImage}, underlay(r + "/etc/ssl"), {path: r + "/etc", origin: fromHost}},
			map[string]origin{r + "/etc/ssl/x": fromHost},
			map[string]string{r + "/etc/ssl/cert": ""}},
		{"an underlay of the root, a tmpfs in it",
			[]mountRec{underlay(r), {path: r + "/scratch", origin: fromTmpfs}},
			map[string]origin{r + "/home/a": fromTmpfs, r + "/scratch/x": fromTmpfs},
			map[string]string{r + "/etc/passwd": "etc/passwd", r + "/scratch/f": ""}},
		{"nothing recorded", nil, map[string]origin{r: fromImage}, map[string]string{r + "/etc/passwd": ""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := &assembler{}
			for _, m := range c.mounts {
				a.record(m)
			}
			for p, want := range c.origins {
				if got := a.originOf(p); got != want {
					t.Errorf("originOf(%s) = %v, want %v (records %+v)", p, got, want, a.mounts)
				}
			}
			for p, want := range c.underlays {
				m, rel, ok := a.inUnderlay(p)
				if ok != (want != "") || rel != want || (ok && m.dev != 7) {
					t.Errorf("inUnderlay(%s) = %+v, %q, %v; want %q", p, m, rel, ok, want)
				}
			}
		})
	}
}
