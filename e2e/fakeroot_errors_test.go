package e2e

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestFakerootHelperErrors: with subordinate ranges, --fakeroot needs the
// setuid helpers. A newuidmap launch.conf points at a missing path, or a
// newuidmap that refuses the maps (a real copy of the helper, which is not
// set-uid as the user's copy), is one FATAL line naming the helper, for
// exec and for build, and the build leaves nothing behind.
func TestFakerootHelperErrors(t *testing.T) {
	if isRoot() {
		t.Skip("root writes its --fakeroot maps itself: no helper runs")
	}
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

// TestFakerootNoRange: a user without subordinate ranges (in the root run
// nobody, who has none; in the unprivileged run the test user when it has
// none) gets root alone mapped: exec --fakeroot says so in one warning and
// runs as uid 0, and a --fakeroot build whose %post gives a file to
// another id fails with the %post's line, leaving nothing behind.
func TestFakerootNoRange(t *testing.T) {
	var cred *syscall.Credential
	if isRoot() {
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Skip("no user nobody here")
		}
		for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
			if b, _ := os.ReadFile(f); strings.Contains("\n"+string(b), "\nnobody:") || strings.Contains("\n"+string(b), "\n"+u.Uid+":") {
				t.Skipf("nobody has a range in %s here", f)
			}
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	} else if subRanges(t) {
		t.Skip("this user has subordinate ranges; the fallback is tested as nobody in the root run")
	}
	dir := attackerDir(t, cred)
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	chownTo(t, tmp, cred)
	base := filepath.Join(dir, "base.sif")
	wantOK(t, launch(t, "build", "-q", base, busyboxTree(t)))
	chownTo(t, base, cred)
	env := []string{"HOME=" + dir, "TMPDIR=" + tmp, "LAUNCH_TMPDIR=" + tmp, "LAUNCH_CACHEDIR=" + filepath.Join(dir, "cache")}

	r := runAs(t, cred, env, launchBin(t), "exec", "--fakeroot", base, "id", "-u")
	if r.Code != 0 || r.Stdout != "0\n" || strings.Count(r.Stderr, fakerootWarning) != 1 || strings.Count(r.Stderr, "\n") != 1 {
		t.Errorf("exec --fakeroot: exit %d stdout %q stderr %q: want uid 0 and the one warning line", r.Code, r.Stdout, r.Stderr)
	}
	def := filepath.Join(dir, "app.def")
	if err := os.WriteFile(def, []byte("Bootstrap: localimage\nFrom: "+base+"\n\n%post\n    touch /f\n    chown 100:100 /f\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runAs(t, cred, env, launchBin(t), "build", "-q", "--fakeroot", filepath.Join(dir, "out.sif"), def)
	if n := strings.Count(r.Stderr, fakerootWarning); n < 1 {
		t.Errorf("build: stderr has no fallback warning: %q", r.Stderr)
	}
	if last := lastLine(r.Stderr); r.Code != 255 || !strings.Contains(last, "%post failed") || !strings.Contains(last, "chown 100:100 /f") {
		t.Errorf("build: exit %d, last line %q: want the failed %%post and its chown", r.Code, last)
	}
	wantEntries(t, tmp)
	wantEntries(t, dir, "app.def", "base.sif", "tmp")
}
