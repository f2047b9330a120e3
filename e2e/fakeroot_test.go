package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// subRanges reports whether the test user has ranges in both /etc/subuid
// and /etc/subgid (then --fakeroot maps 1…65536 through newuidmap), and
// skips the test where the helpers are not installed. Root counts as
// having them: it maps its ids 0…65535 itself.
func subRanges(t *testing.T) bool {
	t.Helper()
	if isRoot() {
		return true // root maps 0…65535 itself (no helper, no range needed)
	}
	for _, h := range []string{"newuidmap", "newgidmap"} {
		if _, err := exec.LookPath(h); err != nil {
			if _, err := os.Stat("/usr/bin/" + h); err != nil {
				t.Skipf("%s is not installed (package uidmap; scripts/install-deps installs it)", h)
			}
		}
	}
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	has := func(path, id string) bool {
		f, err := os.Open(path)
		if err != nil {
			return false
		}
		defer f.Close()
		for sc := bufio.NewScanner(f); sc.Scan(); {
			fl := strings.Split(strings.TrimSpace(sc.Text()), ":")
			if len(fl) == 3 && (fl[0] == name || fl[0] == id) && fl[2] != "0" {
				return true
			}
		}
		return false
	}
	return has("/etc/subuid", strconv.Itoa(os.Getuid())) && has("/etc/subgid", strconv.Itoa(os.Getgid()))
}

// fakerootWarning is the start of the one line said when there are no
// ranges.
const fakerootWarning = "WARNING: --fakeroot: /etc/sub"

// TestFakerootExec: uid and gid 0 inside, root's passwd entry and /root as
// home, the image's root-owned files shown as root's; with ranges no
// warning, without them one. The environment variable works as the flag.
func TestFakerootExec(t *testing.T) {
	ranges := subRanges(t)
	img := buildSIF(t, busyboxTree(t))
	for _, c := range []struct {
		name string
		env  []string
		args []string
	}{
		{"flag", nil, []string{"exec", "--fakeroot", img}},
		{"-f", nil, []string{"exec", "-f", img}},
		{"-fB with a value", nil, []string{"exec", "-fB/tmp", img}},
		{"LAUNCH_FAKEROOT", []string{"LAUNCH_FAKEROOT=1"}, []string{"exec", img}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := launchWith(t, runOpts{Env: c.env}, append(c.args, "sh", "-c",
				`id -u; id -g; id -un; echo "$HOME"; stat -c %u:%g /bin/busybox; grep '^root:' /etc/passwd | cut -d: -f3,6`)...)
			if r.Code != 0 {
				t.Fatalf("exit %d, stderr %q", r.Code, r.Stderr)
			}
			if want := "0\n0\nroot\n/root\n0:0\n0:/root\n"; r.Stdout != want {
				t.Errorf("stdout %q, want %q", r.Stdout, want)
			}
			if n := strings.Count(r.Stderr, fakerootWarning); ranges && n != 0 || !ranges && n != 1 {
				t.Errorf("ranges %v: stderr %q has %d fallback warnings", ranges, r.Stderr, n)
			}
		})
	}
	// Without --fakeroot nothing changes.
	r := launch(t, "exec", img, "id", "-u")
	if want := strconv.Itoa(os.Getuid()) + "\n"; r.Code != 0 || r.Stdout != want {
		t.Errorf("without --fakeroot: exit %d stdout %q, want %q", r.Code, r.Stdout, want)
	}
}

// TestFakerootChown: with ranges, root inside gives a file of its writable
// layer to another id; without them the chown fails (the warning said so).
func TestFakerootChown(t *testing.T) {
	ranges := subRanges(t)
	img := buildSIF(t, busyboxTree(t))
	r := launch(t, "exec", "--fakeroot", "--writable-tmpfs", img, "sh", "-c",
		"touch /x && chown 1000:1000 /x && stat -c %u:%g /x")
	if !ranges {
		if r.Code == 0 || !strings.Contains(r.Stderr, fakerootWarning) {
			t.Errorf("without ranges: exit %d stdout %q stderr %q, want a failed chown after the warning", r.Code, r.Stdout, r.Stderr)
		}
		return
	}
	if r.Code != 0 || r.Stdout != "1000:1000\n" {
		t.Errorf("exit %d stdout %q stderr %q, want 1000:1000", r.Code, r.Stdout, r.Stderr)
	}
}

// TestFakerootTimeline: a --fakeroot run has no namespaces from the
// constructor (its stage is cloned by the launcher, whose maps the helpers
// write), and a plain run still has them.
func TestFakerootTimeline(t *testing.T) {
	subRanges(t)
	img := buildSIF(t, busyboxTree(t))
	env := runOpts{Env: []string{"LAUNCH_TIMELINE=1"}}
	plain := launchWith(t, env, "exec", img, "true")
	fake := launchWith(t, env, "exec", "--fakeroot", img, "true")
	if plain.Code != 0 || !strings.Contains(plain.Stderr, " stage namespaces") {
		t.Errorf("plain run: exit %d, stderr %q: want the constructor's namespaces", plain.Code, plain.Stderr)
	}
	if fake.Code != 0 || strings.Contains(fake.Stderr, " stage namespaces") || !strings.Contains(fake.Stderr, " launcher clone") {
		t.Errorf("--fakeroot run: exit %d, stderr %q: want the launcher's clone and no constructor namespaces", fake.Code, fake.Stderr)
	}
}

// TestFakerootBuild: `launch build --fakeroot` runs %post as root; with
// ranges a chown to another id works; the SIF is the user's; nothing is
// left in the build's TMPDIR. Without --fakeroot %post runs as the user.
func TestFakerootBuild(t *testing.T) {
	ranges := subRanges(t)
	base := buildSIF(t, busyboxTree(t))
	post := "    id -u > /marker\n"
	if ranges {
		post += "    touch /somefile\n    chown 1:1 /somefile\n"
	}
	dir, tmp := t.TempDir(), t.TempDir()
	def := writeDef(t, dir, "Bootstrap: localimage\nFrom: "+base+"\n\n%post\n"+post)
	out := filepath.Join(dir, "out.sif")
	wantOK(t, defLaunch(t, dir, tmp, "build", "-q", "--fakeroot", out, def))
	r := launch(t, "exec", out, "cat", "/marker")
	if r.Code != 0 || r.Stdout != "0\n" {
		t.Errorf("%%post's id -u: exit %d stdout %q stderr %q, want 0", r.Code, r.Stdout, r.Stderr)
	}
	if fi, err := os.Stat(out); err != nil {
		t.Fatal(err)
	} else if uid := int(fi.Sys().(*syscall.Stat_t).Uid); uid != os.Getuid() {
		t.Errorf("%s is owned by uid %d, want yours (%d)", out, uid, os.Getuid())
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("the build left %d entries in its TMPDIR", len(left))
	}
	out2 := filepath.Join(dir, "user.sif")
	wantOK(t, defLaunch(t, dir, tmp, "build", "-q", out2, writeDef(t, dir, "Bootstrap: localimage\nFrom: "+base+"\n\n%post\n    id -u > /marker\n")))
	r = launch(t, "exec", out2, "cat", "/marker")
	if want := strconv.Itoa(os.Getuid()) + "\n"; r.Stdout != want {
		t.Errorf("without --fakeroot %%post ran as %q, want %q", r.Stdout, want)
	}
}
