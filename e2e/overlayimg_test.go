package e2e

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needOverlayImageTools skips a test when fuse2fs or e2fsprogs are missing
// (scripts/install-deps installs them).
func needOverlayImageTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"fuse2fs", "mkfs.ext3", "e2fsck"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err := os.Stat("/usr/sbin/" + tool); err != nil {
				t.Skipf("%s not installed (scripts/install-deps installs it)", tool)
			}
		}
	}
}

// e2fsckClean fails the test unless e2fsck -fn finds the ext3 image
// consistent and its superblock says it was cleanly unmounted (fuse2fs
// marks it so only once it has written everything back).
func e2fsckClean(t *testing.T, img string) {
	t.Helper()
	env := append(os.Environ(), "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
	cmd := exec.Command("e2fsck", "-fn", img)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn %s: %v\n%s", img, err, out)
	}
	cmd = exec.Command("dumpe2fs", "-h", img)
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil || !regexp.MustCompile(`(?m)^Filesystem state:\s+clean$`).Match(out) {
		t.Errorf("dumpe2fs -h %s: %v; the image is not marked cleanly unmounted:\n%s", img, err, out)
	}
}

// newOverlayImage makes an ext3 overlay image with launch overlay create.
func newOverlayImage(t *testing.T, args ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ov.img")
	wantOK(t, launch(t, append(append([]string{"overlay", "create"}, args...), p)...))
	return p
}

// TestOverlayImageCreateAndPersist: overlay create makes a file of the
// user's own, of the size asked, with /upper and --create-dir directories
// in it; a run writes into it, a second run reads it back (read-write and
// :ro), and the image is clean for e2fsck after each.
func TestOverlayImageCreateAndPersist(t *testing.T) {
	needOverlayImageTools(t)
	img := layerImage(t)
	ov := newOverlayImage(t, "--size", "80", "--sparse", "--create-dir", "/opt/env")
	fi, err := os.Stat(ov)
	if err != nil || fi.Size() != 80<<20 || int(fi.Sys().(*syscall.Stat_t).Uid) != os.Getuid() {
		t.Fatalf("overlay create: %v, size %d, want 80 MiB owned by uid %d", err, fi.Size(), os.Getuid())
	}
	r := launch(t, "-v", "exec", "--overlay", ov, img, "sh", "-c",
		`test -d /opt/env && echo dir-made; echo new > /etc/new && echo changed >> /etc/victim && rm /usr/share/doc/readme && echo pkg > /opt/env/x && echo done`)
	wantOK(t, r)
	if r.Stdout != "dir-made\ndone\n" || !strings.Contains(r.Stderr, "writable layer: overlay image "+ov) {
		t.Errorf("first run: stdout %q, stderr %q", r.Stdout, r.Stderr)
	}
	e2fsckClean(t, ov)
	for _, spec := range []string{ov, ov + ":ro"} {
		r = launch(t, "exec", "--overlay", spec, img, "sh", "-c",
			`cat /etc/new /etc/victim /opt/env/x; test -e /usr/share/doc/readme && echo not-deleted; ls -ln /opt/env/x | awk '{print $3}'`)
		wantOK(t, r)
		want := "new\norig\nchanged\npkg\n" + map[bool]string{true: "0", false: strconv.Itoa(os.Getuid())}[isRoot()] + "\n"
		if r.Stdout != want {
			t.Errorf("--overlay %s: got %q, want %q", spec, r.Stdout, want)
		}
	}
	// :ro leaves / read-only.
	r = launch(t, "exec", "--overlay", ov+":ro", img, "sh", "-c", `echo x > /etc/y 2>/dev/null && echo writable`)
	if strings.Contains(r.Stdout, "writable") {
		t.Errorf("a :ro overlay image was writable")
	}
	e2fsckClean(t, ov)
}

// TestOverlayImageStacking: a :ro SquashFS, a :ro directory and a writable
// ext3 image stack in command-line order (a later one on top), the
// writable one on top of all.
func TestOverlayImageStacking(t *testing.T) {
	needOverlayImageTools(t)
	img := layerImage(t)
	sqTree := filepath.Join(t.TempDir(), "sq")
	for name, c := range map[string]string{"upper/etc/who": "sqfs\n", "upper/etc/sqonly": "s\n"} {
		p := filepath.Join(sqTree, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sq := squashImage(t, sqTree)
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	_ = os.WriteFile(filepath.Join(dir, "etc", "who"), []byte("dir\n"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "etc", "dironly"), []byte("d\n"), 0o644)
	ov := newOverlayImage(t)
	script := `cat /etc/who /etc/sqonly /etc/dironly /etc/victim; echo top > /etc/top && cat /etc/top`
	r := launch(t, "exec", "--overlay", sq+":ro", "--overlay", dir+":ro", "--overlay", ov, img, "sh", "-c", script)
	wantOK(t, r)
	if r.Stdout != "dir\ns\nd\norig\ntop\n" {
		t.Errorf("sqfs below dir: got %q", r.Stdout)
	}
	r = launch(t, "exec", "--overlay", ov, "--overlay", dir+":ro", "--overlay", sq+":ro", img, "sh", "-c", "cat /etc/who /etc/top")
	wantOK(t, r)
	if r.Stdout != "sqfs\ntop\n" {
		t.Errorf("dir below sqfs, writable image given first: got %q", r.Stdout)
	}
	e2fsckClean(t, ov)
}

// TestOverlayImageInSIF: overlay create on a SIF appends an ext3 overlay
// partition (listed by sif list), --writable writes into it, a plain exec
// reads it read-only, sif del detaches it; a signed SIF is refused.
func TestOverlayImageInSIF(t *testing.T) {
	needOverlayImageTools(t)
	sif := buildSIF(t, busyboxTree(t))
	wantOK(t, launch(t, "overlay", "create", "--size", "64", sif))
	r := launch(t, "sif", "list", sif)
	wantOK(t, r)
	if !strings.Contains(r.Stdout, "FS (Ext3/Overlay/") {
		t.Fatalf("sif list does not show the overlay partition:\n%s", r.Stdout)
	}
	wantFatal(t, launch(t, "overlay", "create", sif), "has an overlay partition already", "launch sif del")
	wantOK(t, launch(t, "exec", "--writable", sif, "sh", "-c", "echo insif > /etc/insif"))
	r = launch(t, "exec", sif, "sh", "-c", `cat /etc/insif; echo x > /etc/other 2>/dev/null && echo writable; true`)
	wantOK(t, r)
	if r.Stdout != "insif\n" {
		t.Errorf("exec of the SIF: %q, want its overlay's file, read-only", r.Stdout)
	}
	// With a writable layer over it, the partition stays read-only below.
	r = launch(t, "exec", "--writable-tmpfs", sif, "sh", "-c", "cat /etc/insif && echo t > /etc/t && cat /etc/t")
	wantOK(t, r)
	if r.Stdout != "insif\nt\n" {
		t.Errorf("--writable-tmpfs over the partition: %q", r.Stdout)
	}
	id := ""
	for _, l := range strings.Split(r.Stdout+launch(t, "sif", "list", sif).Stdout, "\n") {
		if strings.Contains(l, "Ext3/Overlay") {
			id = strings.Fields(l)[0]
		}
	}
	wantOK(t, launch(t, "sif", "del", id, sif))
	r = launch(t, "exec", sif, "sh", "-c", "test -e /etc/insif && echo still")
	if strings.Contains(r.Stdout, "still") || strings.Contains(launch(t, "sif", "list", sif).Stdout, "Overlay") {
		t.Errorf("the overlay partition is still there after sif del")
	}
	wantFatal(t, launch(t, "exec", "--writable", sif, "true"), "without one", "launch overlay create")
	// A signature makes overlay create refuse, unless --force.
	sig := filepath.Join(t.TempDir(), "sig")
	_ = os.WriteFile(sig, []byte("not really a signature"), 0o644)
	wantOK(t, launch(t, "sif", "add", "--datatype", "5", sif, sig))
	wantFatal(t, launch(t, "overlay", "create", sif), "is signed", "--force")
	wantOK(t, launch(t, "overlay", "create", "--force", sif))
}

// TestOverlayImageInUse: a writable overlay image serves one container at
// a time; readers share it with each other but not with a writer.
func TestOverlayImageInUse(t *testing.T) {
	needOverlayImageTools(t)
	img := layerImage(t)
	ov := newOverlayImage(t)
	hold := func(spec string) (*exec.Cmd, func()) {
		cmd := exec.Command(launchBin(t), "exec", "--overlay", spec, img, "sh", "-c", "echo ready; read x")
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
			t.Fatalf("holding container did not start: %q %s", line, stderr.String())
		}
		return cmd, func() { _, _ = in.Write([]byte("x\n")); _ = cmd.Wait() }
	}
	_, done := hold(ov)
	wantFatal(t, launch(t, "exec", "--overlay", ov, img, "true"), "overlay "+ov+" is in use by another running container")
	wantFatal(t, launch(t, "exec", "--overlay", ov+":ro", img, "true"), "in use read-write")
	done()
	_, done = hold(ov + ":ro")
	wantOK(t, launch(t, "exec", "--overlay", ov+":ro", img, "true"))
	wantFatal(t, launch(t, "exec", "--overlay", ov, img, "true"), "is in use by another running container")
	done()
	wantOK(t, launch(t, "exec", "--overlay", ov, img, "true"))
	e2fsckClean(t, ov)
}

// TestOverlayImageKilledWriter: SIGKILL or SIGTERM of the launcher, or
// SIGKILL of the container's stage (fuse2fs's parent: its parent-death
// signal), while the payload writes, leaves nothing running and an image
// e2fsck finds clean, which the next run reads.
func TestOverlayImageKilledWriter(t *testing.T) {
	needOverlayImageTools(t)
	img := layerImage(t)
	for _, kill := range []string{"launcher-SIGKILL", "launcher-SIGTERM", "stage-SIGKILL"} {
		t.Run(kill, func(t *testing.T) {
			ov := newOverlayImage(t)
			cmd := exec.Command(launchBin(t), "exec", "--overlay", ov, img, "sh", "-c",
				`mkdir -p /data; echo ready; i=0; while :; do echo $i > /data/f$i; i=$((i+1)); done`)
			out, _ := cmd.StdoutPipe()
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
				t.Fatalf("writer did not start: %q %s", line, stderr.String())
			}
			time.Sleep(300 * time.Millisecond)
			procs := descendantsOf(cmd.Process.Pid)
			switch kill {
			case "launcher-SIGKILL":
				_ = cmd.Process.Kill()
			case "launcher-SIGTERM":
				_ = cmd.Process.Signal(syscall.SIGTERM)
			default:
				stage := 0
				for pid, cl := range procs {
					if strings.HasPrefix(cl, launchBin(t)) && (stage == 0 || pid < stage) {
						stage = pid
					}
				}
				if stage == 0 {
					t.Fatalf("no stage process below the launcher: %v", procs)
				}
				_ = syscall.Kill(stage, syscall.SIGKILL)
			}
			_ = cmd.Wait()
			waitGone(t, procs, 10*time.Second, kill)
			e2fsckClean(t, ov)
			r := launch(t, "exec", "--overlay", ov, img, "sh", "-c", "ls /data | wc -l; cat /data/f0")
			wantOK(t, r)
			if f := strings.Fields(r.Stdout); len(f) != 2 || f[0] == "0" || f[1] != "0" {
				t.Errorf("after %s: %q, want the files written", kill, r.Stdout)
			}
			if strings.Contains(r.Stderr, "not cleanly unmounted") {
				t.Errorf("after %s the image needed e2fsck: %s", kill, r.Stderr)
			}
			e2fsckClean(t, ov)
		})
	}
}

// TestOverlayImageBadInput: one FATAL line each, and a full image reports
// ENOSPC to the payload and stays clean and usable.
func TestOverlayImageBadInput(t *testing.T) {
	needOverlayImageTools(t)
	img := layerImage(t)
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.img")
	_ = os.WriteFile(junk, bytes.Repeat([]byte("x"), 4096), 0o644)
	wantFatal(t, launch(t, "exec", "--overlay", junk, img, "true"), junk, "not an ext3 or SquashFS overlay image")
	// A SquashFS image without :ro: used read-only with a warning, as
	// Apptainer does, even when the file is not writable.
	sqTree := busyboxTree(t)
	if err := os.WriteFile(filepath.Join(sqTree, "from-squash"), []byte("sq\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sq := squashImage(t, sqTree)
	if err := os.Chmod(sq, 0o444); err != nil {
		t.Fatal(err)
	}
	r := launch(t, "exec", "--overlay", sq, img, "sh", "-c", "cat /from-squash; touch /x 2>/dev/null || echo ro")
	if wantOK(t, r); r.Stdout != "sq\nro\n" || !strings.Contains(r.Stderr, "WARNING") || !strings.Contains(r.Stderr, "read-only") {
		t.Errorf("--overlay SQUASHFS without :ro: stdout %q, stderr %q; want its file, no writes and a warning", r.Stdout, r.Stderr)
	}
	// It is a lower layer: it stacks with a writable one, as Apptainer's does.
	r = launch(t, "exec", "--overlay", sq, "--writable-tmpfs", img, "sh", "-c", "cat /from-squash; touch /x && echo rw")
	if wantOK(t, r); r.Stdout != "sq\nrw\n" {
		t.Errorf("--overlay SQUASHFS --writable-tmpfs: stdout %q, stderr %q", r.Stdout, r.Stderr)
	}
	ov := newOverlayImage(t)
	link := filepath.Join(dir, "link.img")
	_ = os.Symlink(ov, link)
	wantFatal(t, launch(t, "exec", "--overlay", link, img, "true"), "symbolic link")
	wantFatal(t, launch(t, "exec", "--overlay", ov, "--overlay", t.TempDir(), img, "true"), "only one writable overlay")
	wantFatal(t, launch(t, "overlay", "create", "--size", "8", filepath.Join(dir, "small.img")), "at least 64 MiB")
	wantFatal(t, launch(t, "overlay", "create", junk), "not a SIF file")
	// Corrupt: a superblock with no inodes.
	bad := newOverlayImage(t)
	f, _ := os.OpenFile(bad, os.O_WRONLY, 0)
	_, _ = f.WriteAt(make([]byte, 4), 1024)
	f.Close()
	wantFatal(t, launch(t, "exec", "--overlay", bad, img, "true"), bad, "superblock is corrupt")
	// A SIF overlay partition of a type that cannot be used.
	sif := buildSIF(t, busyboxTree(t))
	raw := filepath.Join(dir, "raw")
	_ = os.WriteFile(raw, make([]byte, 4096), 0o644)
	wantOK(t, launch(t, "sif", "add", "--datatype", "4", "--parttype", "4", "--partfs", "4", sif, raw))
	wantFatal(t, launch(t, "exec", sif, "true"), "overlay partition", "of type Raw")
	// Full: ENOSPC reaches the payload; the image stays clean and usable,
	// in the same run and the next.
	r = launch(t, "exec", "--overlay", ov, img, "sh", "-c",
		`dd if=/dev/zero of=/big bs=1M count=100 2>&1 | grep -o "No space left on device"; echo full > /etc/full`)
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "No space left on device\n") {
		t.Errorf("writing past the image's size: %q, %q", r.Stdout, r.Stderr)
	}
	e2fsckClean(t, ov)
	r = launch(t, "exec", "--overlay", ov, img, "sh", "-c", "test -s /big && rm /big && echo again > /etc/again && cat /etc/again")
	wantOK(t, r)
	if r.Stdout != "again\n" {
		t.Errorf("after filling it: %q", r.Stdout)
	}
	e2fsckClean(t, ov)
}
