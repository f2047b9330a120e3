package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ownedPost is a %post that makes files of a subordinate id (100 inside),
// among them directories the user cannot empty from outside the namespace
// (owned by subordinate start+99, mode 0700: one in a directory of that id,
// one in the user's own tree root, as Debian's /var/cache/apt/archives/
// partial is), and a file of the user's (0 inside).
const ownedPost = `    mkdir -p /owned/sub /locked
    touch /owned/sub/f /userfile /locked/f
    chown -R 100:100 /owned /locked
    chmod 700 /owned/sub /locked
`

// needRanges skips a test that needs the user's subordinate id ranges.
func needRanges(t *testing.T) {
	t.Helper()
	if !subRanges(t) {
		t.Skipf("uid %d has no /etc/subuid and /etc/subgid ranges here (root has none by default)", os.Getuid())
	}
}

// TestFakerootPackIDs: a --fakeroot build by a user packs its SIF inside
// the fakeroot namespace, so the ids %post gave stay as Apptainer's
// fakeroot build records them: a file chowned to 100:100 is 100:100 in the
// SquashFS, the user's own files are 0:0, and the build leaves nothing in
// its TMPDIR although the tree held a directory of a subordinate id.
func TestFakerootPackIDs(t *testing.T) {
	needRanges(t)
	base := buildSIF(t, busyboxTree(t))
	dir, tmp := t.TempDir(), t.TempDir()
	def := writeDef(t, dir, "Bootstrap: localimage\nFrom: "+base+"\n\n%post\n"+ownedPost)
	out := filepath.Join(dir, "out.sif")
	wantOK(t, defLaunch(t, dir, tmp, "build", "-q", "--fakeroot", out, def))
	want := map[string]string{
		"squashfs-root/owned":          "100/100",
		"squashfs-root/owned/sub":      "100/100",
		"squashfs-root/owned/sub/f":    "100/100",
		"squashfs-root/userfile":       "0/0",
		"squashfs-root/bin/busybox":    "0/0",
		"squashfs-root/.singularity.d": "0/0",
	}
	for _, l := range squashList(t, out) {
		f := strings.Fields(l)
		if len(f) < 6 {
			continue
		}
		if w, ok := want[f[len(f)-1]]; ok {
			if f[1] != w {
				t.Errorf("%s is %s in the SIF, want %s", f[len(f)-1], f[1], w)
			}
			delete(want, f[len(f)-1])
		}
	}
	for p := range want {
		t.Errorf("%s is not in the SIF", p)
	}
	wantEntries(t, tmp)
	// The image runs, and its /owned is 100's inside a --fakeroot run.
	r := launch(t, "exec", "--fakeroot", out, "stat", "-c", "%u:%g", "/owned/sub/f")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "100:100" {
		t.Errorf("exec --fakeroot stat /owned/sub/f: exit %d, %q %q; want 100:100", r.Code, r.Stdout, r.Stderr)
	}
}

// TestFakerootBuildLeavesNothing: a --fakeroot build whose tree holds a
// directory of a subordinate id leaves nothing behind when %post fails or
// the build gets SIGTERM (it removes the tree inside the namespace), and a
// tree left by a SIGKILLed build is removed by the next build's sweep.
func TestFakerootBuildLeavesNothing(t *testing.T) {
	needRanges(t)
	base := buildSIF(t, busyboxTree(t))

	t.Run("post fails", func(t *testing.T) {
		dir, tmp := t.TempDir(), t.TempDir()
		def := writeDef(t, dir, "Bootstrap: localimage\nFrom: "+base+"\n\n%post\n"+ownedPost+"    false\n")
		r := defLaunch(t, dir, tmp, "build", "-q", "--fakeroot", filepath.Join(dir, "out.sif"), def)
		if last := lastLine(r.Stderr); r.Code != 255 || !strings.HasPrefix(last, "FATAL: ") || !strings.Contains(last, "%post failed (exit status 1); last command: + false") {
			t.Errorf("exit %d, last line %q: want the FATAL line of the failed %%post", r.Code, last)
		}
		wantEntries(t, tmp)
		wantEntries(t, dir, "app.def")
	})

	// started runs a build whose %post makes the owned tree, then waits;
	// it returns when that point is reached.
	started := func(t *testing.T, dir, tmp string) *exec.Cmd {
		def := writeDef(t, dir, "Bootstrap: localimage\nFrom: "+base+"\n\n%post\n"+ownedPost+"    touch /ready\n    sleep 60\n")
		cmd := exec.Command(launchBin(t), "build", "-q", "--fakeroot", filepath.Join(dir, "out.sif"), def)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "LAUNCH_TMPDIR="+tmp)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for end := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
			if m, _ := filepath.Glob(filepath.Join(tmp, "launch-build-*", "stage-1", "ready")); len(m) > 0 {
				return cmd
			}
			if time.Now().After(end) {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("%%post did not get to its sleep: %s", errb.String())
			}
		}
	}

	t.Run("SIGTERM", func(t *testing.T) {
		dir, tmp := t.TempDir(), t.TempDir()
		cmd := started(t, dir, tmp)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err == nil {
			t.Fatal("the build succeeded after SIGTERM")
		}
		wantEntries(t, tmp)
		wantEntries(t, dir, "app.def")
	})

	t.Run("SIGKILL then sweep", func(t *testing.T) {
		dir, tmp := t.TempDir(), t.TempDir()
		cmd := started(t, dir, tmp)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		left, _ := filepath.Glob(filepath.Join(tmp, "launch-build-*"))
		if len(left) != 1 {
			t.Fatalf("after SIGKILL the build's tree should still be there to sweep, found %q", left)
		}
		// The next build sweeps it (once the killed build's lock is gone,
		// which it is as soon as the process is).
		def := writeDef(t, dir, "Bootstrap: localimage\nFrom: "+base+"\n")
		wantOK(t, defLaunch(t, dir, tmp, "build", "-q", "--fakeroot", filepath.Join(dir, "next.sif"), def))
		wantEntries(t, tmp)
	})
}
