package container

import "testing"

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
			[]mountRec{{path: r, origin: fromImage}, underlay(r + "/etc"), {path: r + "/etc/hosts", origin: neverCreate}},
			map[string]origin{r + "/etc/x": fromTmpfs, r + "/usr": fromImage, r + "/etc/hosts": neverCreate, r + "/etcx": fromImage},
			map[string]string{r + "/etc/passwd": "passwd", r + "/etc/hosts": "", r + "/etc": "", r + "/bin/sh": ""}},
		{"the host's /tmp bound over the root (an image's /tmp -> /)",
			[]mountRec{{path: r, origin: fromImage}, underlay(r + "/etc"), {path: r + "/proc", origin: neverCreate}, {path: r, origin: neverCreate}},
			map[string]origin{r + "/etc": neverCreate, r + "/etc/passwd": neverCreate, r + "/proc": neverCreate, r: neverCreate},
			map[string]string{r + "/etc/passwd": ""}},
		{"a host directory bound over /etc covers its underlay",
			[]mountRec{{path: r, origin: fromImage}, underlay(r + "/etc/ssl"), {path: r + "/etc", origin: neverCreate}},
			map[string]origin{r + "/etc/ssl/x": neverCreate},
			map[string]string{r + "/etc/ssl/cert": ""}},
		{"an underlay of the root, a tmpfs in it",
			[]mountRec{underlay(r), {path: r + "/scratch", origin: fromTmpfs}},
			map[string]origin{r + "/home/a": fromTmpfs, r + "/scratch/x": fromTmpfs},
			map[string]string{r + "/etc/passwd": "etc/passwd", r + "/scratch/f": ""}},
		{"nothing recorded", nil, map[string]origin{r: fromImage}, map[string]string{r + "/etc/passwd": ""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := &mountTable{}
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
