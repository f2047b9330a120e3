package e2e

// Attacks on launch build, pull and build --sandbox (issue 14, items 2 and
// 11): set-uid files and device nodes carried from a user's tree or image
// into an image or onto the host, and temporary trees and helpers left by a
// killed build. The layer attacks (sparse files, bombs, long names) are in
// attack_layer_test.go.

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sylabs/sif/v2/pkg/sif"
	"golang.org/x/sys/unix"
)

// attacker is the user who makes the hostile tree or image: in the root run
// the unprivileged test user (LAUNCH_E2E_USER), as whom attacker commands
// run; nil in the unprivileged run, where the attacker is the caller itself.
func attacker(t *testing.T) *syscall.Credential {
	t.Helper()
	if !isRoot() {
		return nil
	}
	name := os.Getenv("LAUNCH_E2E_USER")
	if name == "" {
		name = "launchtest"
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Skipf("the unprivileged test user %s does not exist (scripts/test creates it; or set LAUNCH_E2E_USER): %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
}

// attackerDir is a new directory owned by the attacker: in the root run,
// below a directory every user can reach, so that the attacker can use it.
func attackerDir(t *testing.T, cred *syscall.Credential) string {
	t.Helper()
	if cred == nil {
		return t.TempDir()
	}
	d, err := os.MkdirTemp(sharedBase(), "launch-e2e-attack.")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeAllForce(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	chownTo(t, d, cred)
	return d
}

// chownTo gives the tree p to the attacker (root run only).
func chownTo(t *testing.T, p string, cred *syscall.Credential) {
	t.Helper()
	if cred == nil {
		return
	}
	err := filepath.WalkDir(p, func(q string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(q, int(cred.Uid), int(cred.Gid))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// removeAllForce removes a tree that may hold read-only directories.
func removeAllForce(p string) {
	_ = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(q, 0o700)
		}
		return nil
	})
	_ = os.RemoveAll(p)
}

// runAs runs argv[0] with argv[1:] as cred (nil: as the caller) and returns
// what it printed and its exit status.
func runAs(t *testing.T, cred *syscall.Credential, env []string, argv ...string) result {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	return runProcess(t, cmd, 3*time.Minute)
}

// squashList lists the SquashFS of a SIF or bare SquashFS image with
// unsquashfs -lln: one "MODE UID/GID SIZE DATE TIME PATH" line per entry.
func squashList(t *testing.T, img string) []string {
	t.Helper()
	off := int64(0)
	if f, err := sif.LoadContainerFromPath(img, sif.OptLoadWithFlag(os.O_RDONLY)); err == nil {
		d, err := f.GetDescriptor(sif.WithPartitionType(sif.PartPrimSys))
		if err != nil {
			t.Fatal(err)
		}
		off = d.Offset()
		f.UnloadContainer()
	}
	out, err := exec.Command("unsquashfs", "-lln", "-o", strconv.FormatInt(off, 10), img).CombinedOutput()
	if err != nil {
		t.Fatalf("unsquashfs -lln %s: %v: %s", img, err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// privilegedLines are the entries of a squashList that are set-uid,
// set-gid or device nodes.
func privilegedLines(lines []string) []string {
	var bad []string
	for _, l := range lines {
		mode, _, _ := strings.Cut(l, " ")
		if len(mode) == 10 && (mode[0] == 'c' || mode[0] == 'b' || strings.ContainsAny(mode[1:], "sS")) {
			bad = append(bad, l)
		}
	}
	return bad
}

// privilegedFiles are the set-uid, set-gid and device files under root.
func privilegedFiles(t *testing.T, root string) []string {
	t.Helper()
	var bad []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeDevice|fs.ModeCharDevice) != 0 {
			bad = append(bad, p+" "+fi.Mode().String())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return bad
}

// listed reports whether a squashList line for the path ends in name has mode.
func listed(lines []string, name, mode string) bool {
	for _, l := range lines {
		if strings.HasSuffix(l, "/"+name) && strings.HasPrefix(l, mode+" ") {
			return true
		}
	}
	return false
}

// TestAttackBuildUserPackNoSetuid: an unprivileged user's build makes every
// file root's (-all-root); a set-uid file of the user's tree must not become
// a set-uid-root file in the image.
func TestAttackBuildUserPackNoSetuid(t *testing.T) {
	cred := attacker(t)
	dir := attackerDir(t, cred)
	tree := filepath.Join(dir, "tree")
	for _, d := range []string{"bin", "gdir"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"bin/rootsh", "bin/gsh"} {
		if err := os.WriteFile(filepath.Join(tree, f), []byte("#!/bin/sh\nid\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	chownTo(t, tree, cred)
	// After the chown, which clears the bits: the user's own set-uid files.
	for f, m := range map[string]fs.FileMode{"bin/rootsh": 0o755 | fs.ModeSetuid, "bin/gsh": 0o755 | fs.ModeSetgid, "gdir": 0o775 | fs.ModeDir | fs.ModeSetgid} {
		if err := os.Chmod(filepath.Join(tree, f), m&^fs.ModeDir); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "img.sif")
	wantOK(t, runAs(t, cred, nil, launchBin(t), "build", "-q", out, tree))
	ls := squashList(t, out)
	if bad := privilegedLines(ls); len(bad) > 0 {
		t.Errorf("the image an unprivileged user packed has set-uid/set-gid entries: %q", bad)
	}
	if !listed(ls, "bin/rootsh", "-rwxr-xr-x") || !listed(ls, "bin/gsh", "-rwxr-xr-x") {
		t.Errorf("bin/rootsh and bin/gsh should be in the image as -rwxr-xr-x: %q", ls)
	}
}

// hostileImage is a SquashFS image the attacker made with mksquashfs, no
// privilege needed: bin/rootsh set-uid root, bin/gsh set-gid root, and the
// device nodes dev/null and dev/sda.
func hostileImage(t *testing.T, cred *syscall.Credential, dir string) string {
	t.Helper()
	tree := filepath.Join(dir, "htree")
	for _, d := range []string{"bin", "dev"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"bin/rootsh", "bin/gsh"} {
		if err := os.WriteFile(filepath.Join(tree, f), []byte("#!/bin/sh\nid\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	chownTo(t, tree, cred)
	img := filepath.Join(dir, "hostile.sqfs")
	r := runAs(t, cred, nil, "mksquashfs", tree, img, "-noappend", "-no-progress", "-quiet", "-all-root",
		"-p", "bin/rootsh m 4755 0 0", "-p", "bin/gsh m 2755 0 0",
		"-p", "dev/null c 666 0 0 1 3", "-p", "dev/sda b 660 0 6 8 0")
	if r.Code != 0 {
		t.Fatalf("mksquashfs: %d: %s", r.Code, r.Stderr)
	}
	if bad := privilegedLines(squashList(t, img)); len(bad) != 4 {
		t.Fatalf("the hostile image should have 4 privileged entries, has %q", bad)
	}
	return img
}

// TestAttackBuildSandboxOfHostileImage: unpacking (--sandbox) or repacking
// a user's image must not create set-uid/set-gid files or device nodes on
// the host, nor keep them in the repacked image, unless --keep-privileged
// asks. The attack needs root's unpack (a set-uid-root shell, /dev/sda
// open to all); unprivileged, unsquashfs itself makes neither, and the test
// checks that this stays so.
func TestAttackBuildSandboxOfHostileImage(t *testing.T) {
	cred := attacker(t)
	img := hostileImage(t, cred, attackerDir(t, cred))
	dir := t.TempDir()

	sb := filepath.Join(dir, "sandbox")
	wantOK(t, launch(t, "build", "-q", "--sandbox", sb, img))
	if bad := privilegedFiles(t, sb); len(bad) > 0 {
		t.Errorf("--sandbox created privileged files: %q", bad)
	}
	for _, f := range []string{"bin/rootsh", "bin/gsh"} {
		if fi, err := os.Lstat(filepath.Join(sb, f)); err != nil || fi.Mode() != 0o755 {
			t.Errorf("%s should be unpacked with mode 0755: %v %v", f, fi, err)
		}
	}
	for _, f := range []string{"dev/null", "dev/sda"} {
		if _, err := os.Lstat(filepath.Join(sb, f)); err == nil {
			t.Errorf("%s was unpacked", f)
		}
	}

	// Asked for, root gets them (unsquashfs as another user makes neither).
	kept := filepath.Join(dir, "kept")
	wantOK(t, launch(t, "build", "-q", "--sandbox", "--keep-privileged", kept, img))
	if isRoot() {
		if fi, err := os.Lstat(filepath.Join(kept, "bin/rootsh")); err != nil || fi.Mode()&fs.ModeSetuid == 0 {
			t.Errorf("--keep-privileged should keep bin/rootsh set-uid: %v %v", fi, err)
		}
		if fi, err := os.Lstat(filepath.Join(kept, "dev/null")); err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
			t.Errorf("--keep-privileged should keep dev/null: %v %v", fi, err)
		}
	}

	rep := filepath.Join(dir, "repacked.sif")
	wantOK(t, launch(t, "build", "-q", rep, img))
	if bad := privilegedLines(squashList(t, rep)); len(bad) > 0 {
		t.Errorf("the repacked image has privileged entries: %q", bad)
	}
}

// TestAttackBuildSandboxFileCapabilities: a file capability
// (security.capability) is privilege too; root's --sandbox must not restore
// it. Only root can make such an image here (a user can write the same bytes
// by hand), so the test needs root.
func TestAttackBuildSandboxFileCapabilities(t *testing.T) {
	if !isRoot() {
		t.Skip("making a file with a capability xattr needs root")
	}
	tree := filepath.Join(t.TempDir(), "tree")
	if err := os.MkdirAll(filepath.Join(tree, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	capsh := filepath.Join(tree, "bin", "capsh")
	if err := os.WriteFile(capsh, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// vfs_cap_data revision 2, effective, permitted CAP_SYS_ADMIN (21).
	capData := []byte{1, 0, 0, 2, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if err := unix.Setxattr(capsh, "security.capability", capData, 0); err != nil {
		t.Skipf("cannot set a file capability here: %v", err)
	}
	img := filepath.Join(t.TempDir(), "caps.sqfs")
	if b, err := exec.Command("mksquashfs", tree, img, "-noappend", "-no-progress", "-quiet").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v: %s", err, b)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want bool
	}{{"default", nil, false}, {"keep-privileged", []string{"--keep-privileged"}, true}} {
		sb := filepath.Join(dir, tc.name)
		wantOK(t, launch(t, append(append([]string{"build", "-q", "--sandbox"}, tc.args...), sb, img)...))
		_, err := unix.Getxattr(filepath.Join(sb, "bin", "capsh"), "security.capability", make([]byte, 64))
		if got := err == nil; got != tc.want {
			t.Errorf("%s: bin/capsh has a file capability: %v, want %v (%v)", tc.name, got, tc.want, err)
		}
	}
}

// gatedTool writes a stand-in for the helper program real: it runs real,
// then writes its pid into the file mark and sleeps, so that a build using it
// stops, every time, with its temporary files in place and its helper
// running.
func gatedTool(t *testing.T, real string) (tool, mark string) {
	t.Helper()
	p, err := exec.LookPath(real)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tool, mark = filepath.Join(dir, "gated-"+real), filepath.Join(dir, "mark")
	script := fmt.Sprintf("#!/bin/sh\n%q \"$@\" || exit $?\necho $$ >%q && mv %q %q\nexec sleep 600\n",
		p, mark+".new", mark+".new", mark)
	if err := os.WriteFile(tool, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return tool, mark
}

// startGated starts launch with args and env and waits until its gated
// helper wrote mark; it returns the command and the helper's pid.
func startGated(t *testing.T, env []string, mark string, args ...string) (*exec.Cmd, int) {
	t.Helper()
	cmd := exec.Command(launchBin(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if b, err := os.ReadFile(mark); err == nil {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("mark %q: %v", b, err)
			}
			return cmd, pid
		}
		select {
		case <-exited:
			t.Fatalf("launch %v ended before its helper was reached: %s", args, errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("launch %v did not reach its helper", args)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// killAndCheck SIGKILLs launch and checks that its helper (pid) dies too.
func killAndCheck(t *testing.T, cmd *exec.Cmd, helper int) {
	t.Helper()
	cl, _ := os.ReadFile("/proc/" + strconv.Itoa(helper) + "/cmdline")
	// All of launch's processes (launch-oci, which holds the temporary
	// trees' locks, too) must be gone before the next build sweeps.
	procs := descendantsOf(cmd.Process.Pid)
	procs[helper] = strings.ReplaceAll(string(cl), "\x00", " ")
	_ = cmd.Process.Kill()
	waitGone(t, procs, 10*time.Second, "SIGKILL of launch (the helper and launch's other processes)")
}

// stale lists the names in dir that have prefix.
func stale(t *testing.T, dir, prefix string) []string {
	t.Helper()
	var out []string
	for _, n := range entries(t, dir) {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

// TestAttackBuildKilled SIGKILLs a --sandbox, a repack and an OCI build while
// their helper (unsquashfs, mksquashfs) runs: the helper must die with
// launch, and the next build must remove the temporary trees left behind,
// but not those of a build still running, nor another user's.
func TestAttackBuildKilled(t *testing.T) {
	img := buildSIF(t, busyboxTree(t))

	t.Run("sandbox", func(t *testing.T) {
		tool, mark := gatedTool(t, "unsquashfs")
		conf := withConf(t, fmt.Sprintf("[tools]\nunsquashfs = %q\n", tool))
		dir := t.TempDir()
		cmd, helper := startGated(t, conf, mark, "build", "-q", "--sandbox", filepath.Join(dir, "sb"), img)
		if len(stale(t, dir, ".sb.")) != 1 {
			t.Fatalf("the killed build's temporary tree should be in %s: %v", dir, entries(t, dir))
		}
		// Another build meanwhile leaves the running build's tree alone.
		wantOK(t, launch(t, "build", "-q", "--sandbox", filepath.Join(dir, "other"), img))
		if len(stale(t, dir, ".sb.")) != 1 {
			t.Errorf("a build removed the temporary tree of a running build: %v", entries(t, dir))
		}
		killAndCheck(t, cmd, helper)
		wantOK(t, launch(t, "build", "-q", "--sandbox", filepath.Join(dir, "sb2"), img))
		wantEntries(t, dir, "other", "sb2")
	})

	t.Run("repack", func(t *testing.T) {
		tool, mark := gatedTool(t, "mksquashfs")
		conf := withConf(t, fmt.Sprintf("[tools]\nmksquashfs = %q\n", tool))
		e := newOCIEnv(t)
		dir := t.TempDir()
		cmd, helper := startGated(t, append(conf, e.env()...), mark, "build", "-q", filepath.Join(dir, "out.sif"), img)
		left := stale(t, e.tmp, "launch-build-")
		if len(left) != 1 {
			t.Fatalf("the killed build's temporary tree should be in TMPDIR: %v", entries(t, e.tmp))
		}
		killAndCheck(t, cmd, helper)
		foreign := ""
		if cred := attacker(t); cred != nil {
			// An unlocked tree of another user is not root's to remove.
			foreign = left[0] + "-of-" + strconv.Itoa(int(cred.Uid))
			if err := os.Mkdir(filepath.Join(e.tmp, foreign), 0o700); err != nil {
				t.Fatal(err)
			}
			chownTo(t, filepath.Join(e.tmp, foreign), cred)
		}
		wantOK(t, e.launch(t, "build", "-q", filepath.Join(dir, "out2.sif"), img))
		wantEntries(t, dir, "out2.sif")
		if foreign != "" {
			wantEntries(t, e.tmp, foreign)
			os.Remove(filepath.Join(e.tmp, foreign))
		}
		noTempLeft(t, e.tmp)
	})

	t.Run("oci-archive", func(t *testing.T) {
		src := busyboxOCI(t)
		lay := filepath.Join(t.TempDir(), "layout")
		writeLayout(t, lay, "v1", src)
		archive := filepath.Join(t.TempDir(), "image.oci.tar")
		tarDir(t, lay, archive)
		tool, mark := gatedTool(t, "mksquashfs")
		// Without tar2sqfs: the extraction path (the streaming one is in
		// TestPullStreamKilled).
		conf := withConf(t, fmt.Sprintf("[tools]\nmksquashfs = %q\ntar2sqfs = \"/nonexistent/tar2sqfs\"\n", tool))
		e := newOCIEnv(t)
		dir := t.TempDir()
		cmd, helper := startGated(t, append(conf, e.env()...), mark, "build", "-q", filepath.Join(dir, "out.sif"), "oci-archive:"+archive)
		if len(stale(t, e.tmp, "launch-")) != 2 {
			t.Fatalf("the killed build's unpacked archive and tree should be in TMPDIR: %v", entries(t, e.tmp))
		}
		killAndCheck(t, cmd, helper)
		wantOK(t, e.launch(t, "pull", "-q", filepath.Join(dir, "out2.sif"), "oci-archive:"+archive))
		wantEntries(t, dir, "out2.sif")
		noTempLeft(t, e.tmp)
	})
}
