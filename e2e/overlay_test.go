package e2e

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// layerImage is a busybox image with a file to change and one to delete.
func layerImage(t *testing.T) string {
	t.Helper()
	return busyboxImage(t, map[string]string{"etc/victim": "orig\n", "usr/share/doc/readme": "image\n"})
}

// wantEngine is what -v must name as the server of a writable layer: root
// gets kernel overlayfs, other users fuse-overlayfs.
func wantEngine() string {
	if isRoot() {
		return "kernel overlayfs"
	}
	return "fuse-overlayfs"
}

func TestWritableTmpfs(t *testing.T) {
	img := layerImage(t)
	r := launch(t, "-v", "exec", "--writable-tmpfs", img, "sh", "-c",
		`echo new > /etc/new && cat /etc/new && echo changed >> /etc/victim && rm /usr/share/doc/readme && mkdir -p /usr/local/lib/py && echo ok > /usr/local/lib/py/x && cat /etc/victim /usr/local/lib/py/x; ls /usr/share/doc | wc -l`)
	wantOK(t, r)
	if got, want := r.Stdout, "new\norig\nchanged\nok\n0\n"; got != want {
		t.Errorf("inside the run got %q, want %q", got, want)
	}
	if !strings.Contains(r.Stderr, "writable layer: tmpfs of size 50%") || !strings.Contains(r.Stderr, wantEngine()) {
		t.Errorf("-v should name the tmpfs size and %s: %q", wantEngine(), r.Stderr)
	}
	// The next run sees the image as it was.
	r = launch(t, "exec", img, "sh", "-c", `test -e /etc/new && echo new-kept; test -e /usr/local/lib && echo dir-kept; cat /etc/victim /usr/share/doc/readme`)
	wantOK(t, r)
	if r.Stdout != "orig\nimage\n" {
		t.Errorf("after the run got %q, want the image unchanged", r.Stdout)
	}
	// Without a writable layer the image stays read-only.
	r = launch(t, "exec", img, "sh", "-c", `echo x > /etc/new 2>/dev/null && echo writable`)
	if strings.Contains(r.Stdout, "writable") {
		t.Errorf("image writable without --writable-tmpfs")
	}
	// LAUNCH_WRITABLE_TMPFS and the size from launch.conf tmpfs.writable.
	env := append(withConf(t, "[tmpfs]\nwritable = \"8m\"\n"), "LAUNCH_WRITABLE_TMPFS=1")
	r = launchWith(t, runOpts{Env: env}, "-v", "exec", img, "sh", "-c",
		`dd if=/dev/zero of=/big bs=1M count=4 2>/dev/null && echo small-ok; dd if=/dev/zero of=/big2 bs=1M count=16 2>/dev/null || echo full`)
	wantOK(t, r)
	if r.Stdout != "small-ok\nfull\n" || !strings.Contains(r.Stderr, "tmpfs of size 8m") {
		t.Errorf("with tmpfs.writable = 8m: stdout %q, stderr %q", r.Stdout, r.Stderr)
	}
}

// upperEntries lists the paths under dir/upper, relative to it.
func upperEntries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	up := filepath.Join(dir, "upper")
	_ = filepath.Walk(up, func(p string, _ os.FileInfo, err error) error {
		if err == nil && p != up {
			out = append(out, strings.TrimPrefix(p, up+"/"))
		}
		return nil
	})
	return out
}

func TestOverlayDirPersists(t *testing.T) {
	img := layerImage(t)
	ov := filepath.Join(t.TempDir(), "ov") // made by launch
	wantOK(t, launch(t, "exec", "--overlay", ov, img, "sh", "-c",
		`echo kept > /etc/new && echo changed > /etc/victim && rm /usr/share/doc/readme && mkdir /opt && echo app > /opt/app`))
	r := launch(t, "exec", "--overlay", ov, img, "sh", "-c",
		`cat /etc/new /etc/victim /opt/app; test -e /usr/share/doc/readme || echo deleted; stat -c %u /opt/app`)
	wantOK(t, r)
	if want := "kept\nchanged\napp\ndeleted\n" + strconv.Itoa(os.Getuid()) + "\n"; r.Stdout != want {
		t.Errorf("second run got %q, want %q", r.Stdout, want)
	}
	// The writes are in DIR/upper, owned by the user; the mount points the
	// container needed (home, /etc/hosts, …) were not written there.
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(ov, "upper", "opt", "app"), &st); err != nil || int(st.Uid) != os.Getuid() {
		t.Errorf("upper/opt/app: %v, uid %d, want owned by %d", err, st.Uid, os.Getuid())
	}
	got := strings.Join(upperEntries(t, ov), " ")
	for _, want := range []string{"etc/new", "etc/victim", "opt/app", "usr/share/doc/readme"} {
		if !strings.Contains(got, want) {
			t.Errorf("upper lacks %s: %s", want, got)
		}
	}
	for _, bad := range []string{"etc/hosts", "etc/passwd", "home", "proc"} {
		for _, e := range upperEntries(t, ov) {
			if e == bad {
				t.Errorf("a mount point polluted the overlay: upper/%s (all: %s)", bad, got)
			}
		}
	}
	// The image itself never changed.
	r = launch(t, "exec", img, "sh", "-c", `cat /etc/victim /usr/share/doc/readme; test -e /opt || echo no-opt`)
	wantOK(t, r)
	if r.Stdout != "orig\nimage\nno-opt\n" {
		t.Errorf("image changed: %q", r.Stdout)
	}
	// LAUNCH_OVERLAY works as --overlay.
	r = launchWith(t, runOpts{Env: []string{"LAUNCH_OVERLAY=" + ov}}, "exec", img, "cat", "/etc/new")
	wantOK(t, r)
	if r.Stdout != "kept\n" {
		t.Errorf("LAUNCH_OVERLAY: got %q", r.Stdout)
	}
}

func TestOverlayReadOnlyStacking(t *testing.T) {
	img := layerImage(t)
	base := filepath.Join(t.TempDir(), "base")
	wantOK(t, launch(t, "exec", "--overlay", base, img, "sh", "-c",
		`echo base > /etc/victim && echo base > /etc/layer && rm /usr/share/doc/readme`))
	plain := hostDir(t, "plain", "plain")
	if err := os.MkdirAll(filepath.Join(plain, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(plain, "etc", "layer"), []byte("plain\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// plain lies above base (later on top), the tmpfs above both.
	r := launch(t, "exec", "--overlay", base+":ro", "--overlay", plain+":ro", "--writable-tmpfs", img, "sh", "-c",
		`cat /etc/victim /etc/layer /file; test -e /usr/share/doc/readme || echo deleted; echo tmp > /etc/layer && cat /etc/layer`)
	wantOK(t, r)
	if want := "base\nplain\nplaindeleted\ntmp\n"; r.Stdout != want { // /file has no newline
		t.Errorf("got %q, want %q", r.Stdout, want)
	}
	// Read-only layers alone leave the root read-only, and unchanged.
	r = launch(t, "exec", "--overlay", plain+":ro", img, "sh", "-c", `cat /etc/layer; echo x > /etc/layer 2>/dev/null && echo writable; true`)
	wantOK(t, r)
	if r.Stdout != "plain\n" {
		t.Errorf("read-only overlay alone: %q", r.Stdout)
	}
	if b, _ := os.ReadFile(filepath.Join(plain, "etc", "layer")); string(b) != "plain\n" {
		t.Errorf("a read-only overlay changed: %q", b)
	}
}

func TestScratchAndWorkdir(t *testing.T) {
	img := layerImage(t)
	uid := strconv.Itoa(os.Getuid())
	r := launch(t, "exec", "--scratch", "/scratch/a,/data", "-S", "/usr/share/doc", img, "sh", "-c",
		`for d in /scratch/a /data /usr/share/doc; do ls -A $d | wc -l; stat -c %u $d; echo x > $d/f || echo not-writable; done`)
	wantOK(t, r)
	if want := strings.Repeat("0\n"+uid+"\n", 3); r.Stdout != want {
		t.Errorf("scratch dirs: got %q, want empty, owned by %s, writable", r.Stdout, uid)
	}
	r = launch(t, "exec", img, "sh", "-c", `test -e /scratch || test -e /data || echo gone; cat /usr/share/doc/readme`)
	if r.Stdout != "gone\nimage\n" {
		t.Errorf("after the run: %q", r.Stdout)
	}
	// With --workdir, scratch and (with --contain) /tmp and /var/tmp live there.
	wd := t.TempDir()
	wantOK(t, launch(t, "exec", "-W", wd, "--contain", "--scratch", "/out/run", img, "sh", "-c",
		`echo t > /tmp/t && echo v > /var/tmp/v && echo s > /out/run/s`))
	for p, want := range map[string]string{"tmp/t": "t\n", "var_tmp/v": "v\n", "scratch/out_run/s": "s\n"} {
		if b, err := os.ReadFile(filepath.Join(wd, p)); err != nil || string(b) != want {
			t.Errorf("workdir %s: %q, %v; want %q", p, b, err, want)
		}
	}
	// Without --contain /tmp stays the host's.
	marker := filepath.Join(os.TempDir(), "launch-workdir-"+strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(marker, []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(marker)
	r = launch(t, "exec", "-W", wd, img, "cat", marker)
	wantOK(t, r)
	if r.Stdout != "host\n" {
		t.Errorf("--workdir without --contain: /tmp is not the host's: %q", r.Stdout)
	}
}

func TestWritableSandbox(t *testing.T) {
	tree := busyboxTree(t)
	if err := os.WriteFile(filepath.Join(tree, "etc", "victim"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := launch(t, "-v", "exec", "--writable", tree, "sh", "-c", `echo in > /etc/new && mkdir -p /usr/local/x && rm /etc/victim`)
	wantOK(t, r)
	if !strings.Contains(r.Stderr, "is writable (--writable)") {
		t.Errorf("-v does not say the sandbox is writable: %q", r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(tree, "etc", "victim")); err == nil {
		t.Errorf("a file deleted inside is still in the sandbox")
	}
	if fi, err := os.Stat(filepath.Join(tree, "usr", "local", "x")); err != nil || !fi.IsDir() {
		t.Errorf("a directory made inside is not in the sandbox: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(tree, "etc", "new")); err != nil || string(b) != "in\n" {
		t.Errorf("--writable did not write into the sandbox: %q, %v", b, err)
	}
	r = launch(t, "exec", tree, "sh", "-c", `echo x > /etc/new2 2>/dev/null && echo writable; true`)
	if strings.Contains(r.Stdout, "writable") {
		t.Errorf("sandbox writable without --writable")
	}
}

// TestOverlayInUse runs one container on a writable overlay and checks that
// a second one on the same directory is refused, then that nothing is left
// behind however the first one ends (fuse-overlayfs included), and that the
// overlay is free again.
func TestOverlayInUse(t *testing.T) {
	img := layerImage(t)
	for _, stop := range []string{"payload-exits", "SIGTERM", "SIGKILL"} {
		t.Run(stop, func(t *testing.T) {
			ov := filepath.Join(t.TempDir(), "ov")
			cmd := exec.Command(launchBin(t), "exec", "--overlay", ov, img, "sh", "-c",
				`echo busy > /etc/busy; sleep 3004 & echo ready; read x; test "$x" = exit && exit 3; exec sleep 3003`)
			in, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
			if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
				t.Fatalf("first container did not start: %q %s", line, stderr.String())
			}
			procs := descendantsOf(cmd.Process.Pid)
			if !isRoot() {
				n := 0
				for _, cl := range procs {
					if strings.Contains(cl, "fuse-overlayfs") {
						n++
					}
				}
				if n != 1 {
					t.Errorf("expected one fuse-overlayfs under the launcher, got %v", procs)
				}
			}
			wantFatal(t, launch(t, "exec", "--overlay", ov, img, "true"), "overlay "+ov+" is in use by another running container")
			wantFatal(t, launch(t, "exec", "--overlay", ov+":ro", img, "true"), "in use read-write")
			switch stop {
			case "payload-exits":
				_, _ = in.Write([]byte("exit\n"))
			case "SIGTERM":
				_, _ = in.Write([]byte("sleep\n"))
				time.Sleep(100 * time.Millisecond)
				_ = cmd.Process.Signal(syscall.SIGTERM)
			default:
				_ = cmd.Process.Kill()
			}
			_ = cmd.Wait()
			waitGone(t, procs, 3*time.Second, stop)
			// Free again, and the first container's write is kept.
			r := launch(t, "exec", "--overlay", ov, img, "cat", "/etc/busy")
			wantOK(t, r)
			if r.Stdout != "busy\n" {
				t.Errorf("after %s: %q", stop, r.Stdout)
			}
		})
	}
}

// roFilesystemDir mounts a SquashFS holding an empty directory of the
// user's with squashfuse on the host and returns that directory: a place on
// a read-only filesystem.
func roFilesystemDir(t *testing.T) string {
	t.Helper()
	tmp := t.TempDir()
	tree, mnt, img := filepath.Join(tmp, "tree"), filepath.Join(tmp, "mnt"), filepath.Join(tmp, "ro.sqfs")
	for _, d := range []string{filepath.Join(tree, "d"), mnt} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("mksquashfs", tree, img, "-noappend", "-quiet", "-no-progress").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v %s", err, out)
	}
	if out, err := exec.Command("squashfuse", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a SquashFS on the host with squashfuse here: %v %s", err, out)
	}
	t.Cleanup(func() {
		if exec.Command("fusermount3", "-u", mnt).Run() != nil {
			_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
	return filepath.Join(mnt, "d")
}

func TestLayersBadInput(t *testing.T) {
	img := layerImage(t)
	sif := buildSIF(t, busyboxTree(t))
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	notMine := filepath.Join(tmp, "notmine")
	if isRoot() {
		if err := os.Mkdir(notMine, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(notMine, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	} else {
		notMine = "/usr" // root's
	}
	ov := filepath.Join(tmp, "ov")
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"--writable on a SIF", []string{"--writable", sif}, []string{"--writable needs a sandbox", sif}},
		{"--writable on a squashfs", []string{"--writable", img}, []string{"--writable needs a sandbox"}},
		{"overlay not owned", []string{"--overlay", notMine, img}, []string{"--overlay " + notMine, "not by you"}},
		{"overlay on a read-only filesystem", []string{"--overlay", "RO", img}, []string{"cannot hold a writable layer"}},
		{"overlay is a file", []string{"--overlay", file, img}, []string{file, "not an ext3 or SquashFS overlay image, nor a directory"}},
		{"overlay bad option", []string{"--overlay", ov + ":rx", img}, []string{"unknown option", "rx"}},
		{"read-only overlay missing", []string{"--overlay", filepath.Join(tmp, "none") + ":ro", img}, []string{"none", "no such file"}},
		{"same overlay twice", []string{"--overlay", ov, "--overlay", ov + ":ro", img}, []string{ov, "twice"}},
		{"two writable overlays", []string{"--overlay", ov, "--overlay", filepath.Join(tmp, "ov2"), img}, []string{"only one writable overlay"}},
		{"writable overlay and tmpfs", []string{"--overlay", ov, "--writable-tmpfs", img}, []string{"--writable-tmpfs", "top layer"}},
		{"--workdir missing", []string{"-W", filepath.Join(tmp, "nowd"), img}, []string{"--workdir", "nowd"}},
		{"--scratch relative", []string{"--scratch", "rel", img}, []string{"--scratch rel", "absolute"}},
	}
	if !isRoot() {
		noWrite := filepath.Join(tmp, "nowrite")
		if err := os.Mkdir(noWrite, 0o500); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct {
			name string
			args []string
			want []string
		}{"overlay not writable", []string{"--overlay", noWrite, img}, []string{noWrite, "permission denied"}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.name == "overlay on a read-only filesystem" {
				args = []string{"--overlay", roFilesystemDir(t), img}
			}
			wantFatal(t, launch(t, append(append([]string{"exec"}, args...), "true")...), tc.want...)
		})
	}
	if _, err := os.Stat(filepath.Join(tmp, "ov2")); err == nil {
		t.Errorf("a refused overlay directory was created")
	}
}

// TestLayersWithBindsAndContain checks the combination table of
// docs/writable.md: binds lie on top of the writable layer, --contain's
// tmpfs mounts too, and neither writes into the overlay directory.
func TestLayersWithBindsAndContain(t *testing.T) {
	img := layerImage(t)
	host := hostDir(t, "host", "host")
	ov := filepath.Join(t.TempDir(), "ov")
	r := launch(t, "exec", "--overlay", ov, "-B", host+":/etc/bound", "--contain", img, "sh", "-c",
		`cat /etc/bound/file; echo b > /etc/bound/new; echo t > /tmp/t; echo h > "$HOME/h"; echo l > /etc/layer; grep -c " /tmp tmpfs" /proc/self/mounts`)
	wantOK(t, r)
	if r.Stdout != "host1\n" {
		t.Errorf("got %q", r.Stdout)
	}
	if b, err := os.ReadFile(filepath.Join(host, "new")); err != nil || string(b) != "b\n" {
		t.Errorf("a write through a bind did not reach the host: %q %v", b, err)
	}
	got := strings.Join(upperEntries(t, ov), " ")
	if got != "etc etc/layer" {
		t.Errorf("overlay upper should hold only etc/layer, has: %s", got)
	}
	// Home is the real home when not contained, and its writes reach the host.
	home, _ := os.UserHomeDir()
	r = launch(t, "exec", "--writable-tmpfs", img, "sh", "-c", `echo "$HOME"; test -w "$HOME" && echo writable-home`)
	wantOK(t, r)
	if r.Stdout != home+"\nwritable-home\n" {
		t.Errorf("home under --writable-tmpfs: %q, want %s", r.Stdout, home)
	}
}

// TestWritableLayerEngineFallback checks what happens without
// fuse-overlayfs: a warning, then kernel overlayfs (root never needs it).
func TestWritableLayerEngineFallback(t *testing.T) {
	img := layerImage(t)
	env := withConf(t, "[tools]\nfuse_overlayfs = \"no-such-fuse-overlayfs\"\n")
	r := launchWith(t, runOpts{Env: env}, "-v", "exec", "--writable-tmpfs", img, "sh", "-c", `echo x > /new && cat /new`)
	wantOK(t, r)
	if r.Stdout != "x\n" || !strings.Contains(r.Stderr, "served by kernel overlayfs") {
		t.Errorf("stdout %q, stderr %q", r.Stdout, r.Stderr)
	}
	if warned := strings.Contains(r.Stderr, `WARNING: fuse-overlayfs program "no-such-fuse-overlayfs" not found`); warned == isRoot() {
		t.Errorf("a warning is due exactly for users other than root; stderr %q", r.Stderr)
	}
	// A fuse-overlayfs that fails: one line, exit 255, nothing left.
	if !isRoot() {
		env = withConf(t, "[tools]\nfuse_overlayfs = \"/bin/false\"\n")
		wantFatal(t, launchWith(t, runOpts{Env: env}, "exec", "--writable-tmpfs", img, "true"), "writable layer on tmpfs", "/bin/false")
	}
}

// TestWritableTmpfsOnOwnSandbox: a sandbox that is the user's own can take
// a kernel overlayfs writable layer, for every user; the sandbox is not
// changed.
func TestWritableTmpfsOnOwnSandbox(t *testing.T) {
	tree := busyboxTree(t)
	r := launch(t, "-v", "exec", "--writable-tmpfs", tree, "sh", "-c", `echo x > /etc/new && rm /bin/ls && cat /etc/new`)
	wantOK(t, r)
	if r.Stdout != "x\n" || !strings.Contains(r.Stderr, "served by kernel overlayfs") {
		t.Errorf("stdout %q, stderr %q", r.Stdout, r.Stderr)
	}
	if _, err := os.Lstat(filepath.Join(tree, "bin", "ls")); err != nil {
		t.Errorf("the sandbox changed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tree, "etc", "new")); err == nil {
		t.Errorf("the sandbox changed: etc/new is there")
	}
}

// TestOverlayBackToBack: containers run one after the other on the same
// overlay directory (a job script's steps) never find it still in use: the
// launcher returns only once the previous container has let go of it.
func TestOverlayBackToBack(t *testing.T) {
	img := layerImage(t)
	ov := filepath.Join(t.TempDir(), "ov")
	for i := 0; i < 10; i++ {
		r := launch(t, "exec", "--overlay", ov, img, "sh", "-c", "sleep 5 & echo $0 >> /etc/steps", strconv.Itoa(i))
		if r.Code != 0 {
			t.Fatalf("step %d: exit %d: %s", i, r.Code, r.Stderr)
		}
	}
	r := launch(t, "exec", "--overlay", ov, img, "wc", "-l", "/etc/steps")
	wantOK(t, r)
	if got := strings.Fields(r.Stdout); len(got) == 0 || got[0] != "10" {
		t.Errorf("steps recorded: %q, want 10 lines", r.Stdout)
	}
}
