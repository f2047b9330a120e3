package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFakerootHelperErrors: with subordinate ranges, --fakeroot needs the
// setuid helpers. A newuidmap launch.conf points at a missing path, or a
// newuidmap that refuses the maps (a real copy of the helper, which is not
// set-uid as the user's copy), is one FATAL line naming the helper, for
// exec and for build, and the build leaves nothing behind.
func TestFakerootHelperErrors(t *testing.T) {
	needRanges(t)
	img := buildSIF(t, busyboxTree(t))
	real, err := exec.LookPath("newuidmap")
	if err != nil {
		real = "/usr/bin/newuidmap"
	}
	data, err := os.ReadFile(real)
	if err != nil {
		t.Skipf("cannot read %s to make a copy that is not set-uid: %v", real, err)
	}
	unset := filepath.Join(t.TempDir(), "newuidmap")
	if err := os.WriteFile(unset, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, tool string
		want       []string
	}{
		{"missing", "/nonexistent/newuidmap", []string{"/nonexistent/newuidmap", "tools.newuidmap", "uidmap"}},
		{"refused", unset, []string{unset, "refused the subordinate ids", "/etc/subuid"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conf := withConf(t, "[tools]\nnewuidmap = \""+c.tool+"\"\n")
			wantFatal(t, launchWith(t, runOpts{Env: conf}, "exec", "--fakeroot", img, "true"), c.want...)
			dir, tmp := t.TempDir(), t.TempDir()
			def := writeDef(t, dir, "Bootstrap: localimage\nFrom: "+img+"\n\n%post\n    true\n")
			r := launchWith(t, runOpts{Dir: dir, Env: append(conf, "TMPDIR="+tmp, "LAUNCH_TMPDIR="+tmp)},
				"build", "-q", "--fakeroot", filepath.Join(dir, "out.sif"), def)
			if last := lastLine(r.Stderr); r.Code != 255 || !strings.HasPrefix(last, "FATAL: ") || !strings.Contains(last, c.tool) {
				t.Errorf("build: exit %d, last line %q: want a FATAL line naming %s", r.Code, last, c.tool)
			}
			wantEntries(t, tmp)
			wantEntries(t, dir, "app.def")
		})
	}
}

// TestFakerootNoRangeBuild: without subordinate ranges (root has none
// here), a --fakeroot build says once that only root is mapped, and a
// %post that gives a file to another id fails with the %post line, leaving
// nothing behind.
func TestFakerootNoRangeBuild(t *testing.T) {
	if subRanges(t) {
		t.Skip("this user has subordinate ranges; the fallback is tested where there are none (as root)")
	}
	base := buildSIF(t, busyboxTree(t))
	dir, tmp := t.TempDir(), t.TempDir()
	def := writeDef(t, dir, "Bootstrap: localimage\nFrom: "+base+"\n\n%post\n    touch /f\n    chown 100:100 /f\n")
	r := defLaunch(t, dir, tmp, "build", "-q", "--fakeroot", filepath.Join(dir, "out.sif"), def)
	if n := strings.Count(r.Stderr, fakerootWarning); n != 1 {
		t.Errorf("stderr has %d fallback warnings, want 1: %q", n, r.Stderr)
	}
	if last := lastLine(r.Stderr); r.Code != 255 || !strings.Contains(last, "%post failed") || !strings.Contains(last, "chown 100:100 /f") {
		t.Errorf("exit %d, last line %q: want the failed %%post and its chown", r.Code, last)
	}
	wantEntries(t, tmp)
	wantEntries(t, dir, "app.def")
}
