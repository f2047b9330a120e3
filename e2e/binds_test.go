package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// hostDir makes a directory with one file in it and returns the directory.
func hostDir(t *testing.T, name, content string) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "file"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestBindForms(t *testing.T) {
	img := busyboxImage(t, nil)
	a := hostDir(t, "a", "A")
	b := hostDir(t, "with,comma:colon", "B")
	c := hostDir(t, "c", "C")
	cases := []struct {
		name string
		env  []string
		args []string
		want string // stdout of `cat`ing the listed paths
		cat  []string
	}{
		{"identity", nil, []string{"-B", a}, "A", []string{a + "/file"}},
		{"src:dst", nil, []string{"--bind", a + ":/mnt/a"}, "A", []string{"/mnt/a/file"}},
		{"comma list and repeat", nil, []string{"-B", a + ":/x/a," + c + ":/x/c", "-B", a + ":/y"}, "ACA", []string{"/x/a/file", "/x/c/file", "/y/file"}},
		{"--mount with comma and colon in the source", nil, []string{"--mount", `type=bind,"src=` + b + `",dst=/b`}, "B", []string{"/b/file"}},
		{"LAUNCH_BIND and LAUNCH_BINDPATH add to --bind", []string{"LAUNCH_BIND=" + a + ":/e1", "LAUNCH_BINDPATH=" + c + ":/e2"},
			[]string{"-B", a + ":/e3"}, "ACA", []string{"/e1/file", "/e2/file", "/e3/file"}},
		{"APPTAINER_BIND honoured", []string{"APPTAINER_BIND=" + c + ":/app"}, nil, "C", []string{"/app/file"}},
		{"a file onto a missing file", nil, []string{"-B", a + "/file:/opt/new/one.txt"}, "A", []string{"/opt/new/one.txt"}},
		{"later bind wins", nil, []string{"-B", a + ":/w", "-B", c + ":/w"}, "C", []string{"/w/file"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"exec"}, tc.args...), img, "cat")
			r := launchWith(t, runOpts{Env: tc.env}, append(args, tc.cat...)...)
			wantOK(t, r)
			if r.Stdout != tc.want {
				t.Errorf("got %q, want %q", r.Stdout, tc.want)
			}
		})
	}
	// The image was never touched: the mount points made for binds are gone.
	r := launch(t, "exec", img, "sh", "-c", "test -e /opt/new || test -e /mnt/a || test -e /x || echo clean")
	wantOK(t, r)
	if strings.TrimSpace(r.Stdout) != "clean" {
		t.Errorf("mount points made for binds are visible in a later run: %q", r.Stdout)
	}
}

func TestBindReadOnlyIsRecursiveAndWritesLandOnHost(t *testing.T) {
	img := busyboxImage(t, nil)
	scratch := hostDir(t, "scratch", "x")
	r := launch(t, "exec", "-B", scratch+":/scratch", "-B", scratch+":/ro:ro", "-B", "/dev:/hostdev:ro", img, "sh", "-c",
		`echo data > /scratch/out && stat -c '%u:%g' /scratch/out; echo more > /ro/new 2>/dev/null && echo ro-writable;
		 awk '$5 ~ "^/hostdev" { if ($6 !~ /(^|,)ro(,|$)/) print "rw:", $5; n++ } END { print n+0, "mounts" }' /proc/self/mountinfo`)
	wantOK(t, r)
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	ids := strconv.Itoa(os.Getuid()) + ":" + strconv.Itoa(os.Getgid())
	if len(lines) != 2 || lines[0] != ids {
		t.Fatalf("got %q, want the file owned by %s inside, no writable read-only bind, and a mount count", lines, ids)
	}
	if n, _ := strconv.Atoi(strings.Fields(lines[1])[0]); n < 2 {
		t.Errorf("expected /dev and its submounts under /hostdev, got %q", lines[1])
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(scratch, "out"), &st); err != nil {
		t.Fatalf("file written in the bind is not on the host: %v", err)
	}
	if int(st.Uid) != os.Getuid() || int(st.Gid) != os.Getgid() {
		t.Errorf("file on the host owned by %d:%d, want %s", st.Uid, st.Gid, ids)
	}
	if _, err := os.Stat(filepath.Join(scratch, "new")); err == nil {
		t.Error("a write through the read-only bind reached the host")
	}
}

// TestBindOfTmpOrRootShowsHost: the stage builds the container in a tmpfs
// it mounts on /tmp in its own mount namespace. The default bind of /tmp,
// and a bind of /, must show the host's /tmp there, with nothing of that
// staging area (no extra mounts, no image or root directories).
func TestBindOfTmpOrRootShowsHost(t *testing.T) {
	img := busyboxImage(t, nil)
	marker, err := os.MkdirTemp("/tmp", "launch-e2e-staging-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(marker) })
	if err := os.Chmod(marker, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(marker, "file"), []byte("M"), 0o644); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat("/tmp", &st); err != nil {
		t.Fatal(err)
	}
	hostTmp := strconv.FormatUint(st.Ino, 10)
	hostMounts := 0
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(mi), "\n") {
			if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], "/tmp/") {
				hostMounts++
			}
		}
	}
	for _, tc := range []struct {
		name string
		args []string
		tmp  string // where the host's /tmp is inside
	}{
		{"default bind of /tmp", nil, "/tmp"},
		{"bind of / on /host", []string{"-B", "/:/host"}, "/host/tmp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := `cat ` + tc.tmp + strings.TrimPrefix(marker, "/tmp") + `/file; echo; stat -c %i ` + tc.tmp + `;
				awk -v p="` + tc.tmp + `/" 'index($5, p) == 1 { n++ } END { print n+0 }' /proc/self/mountinfo`
			args := append(append([]string{"exec"}, tc.args...), img, "sh", "-c", script)
			r := launch(t, args...)
			wantOK(t, r)
			want := "M\n" + hostTmp + "\n" + strconv.Itoa(hostMounts)
			if got := strings.TrimSpace(r.Stdout); got != want {
				t.Errorf("got %q, want %q (the marker file, the inode of the host's /tmp, the host's mounts below it)", got, want)
			}
		})
	}
}

// TestBindSymlinkInImageCannotEscape: the image holds /evil, a symlink to
// an absolute host path. A bind onto /evil/x must land inside the container
// root (where /evil points to inside the container), never on the host.
func TestBindSymlinkInImageCannotEscape(t *testing.T) {
	target := t.TempDir() // a host directory, not visible in the container below
	tree := busyboxTree(t)
	if err := os.Symlink(target, filepath.Join(tree, "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../.."+target, filepath.Join(tree, "evil2")); err != nil {
		t.Fatal(err)
	}
	img := squashImage(t, tree)
	src := hostDir(t, "src", "S")
	r := launch(t, "exec", "--no-mount", "tmp,cwd,home", "-B", src+":/evil/x", "-B", src+":/evil2/y", img,
		"cat", "/evil/x/file", "/evil2/y/file")
	wantOK(t, r)
	if r.Stdout != "SS" {
		t.Errorf("bind through the image symlink: got %q, want SS", r.Stdout)
	}
	entries, err := os.ReadDir(target)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("the bind escaped to the host: %s now holds %v", target, entries)
	}
}

func TestHomeAndPwd(t *testing.T) {
	img := busyboxImage(t, nil)
	h := hostDir(t, "myhome", "H")
	r := launch(t, "exec", "-H", h+":/home/me", "--pwd", "/home/me", img, "sh", "-c",
		`echo "$HOME"; pwd; cat file; echo; grep -c ":/home/me:" /etc/passwd`)
	wantOK(t, r)
	if got := strings.Fields(r.Stdout); strings.Join(got, " ") != "/home/me /home/me H 1" {
		t.Errorf("got %q", got)
	}
	r = launch(t, "exec", "--no-home", "--no-mount", "cwd", "--pwd", "/etc", img, "sh", "-c", `pwd; test -d "$HOME" || echo no-home`)
	wantOK(t, r)
	if got := strings.Fields(r.Stdout); strings.Join(got, " ") != "/etc no-home" && !isRoot() {
		t.Errorf("got %q", got)
	}
}

func TestContain(t *testing.T) {
	img := busyboxImage(t, nil)
	work := t.TempDir()
	marker := filepath.Join(os.TempDir(), "launch-e2e-contain-"+strconv.Itoa(os.Getpid()))
	r := launchWith(t, runOpts{Dir: work, Env: []string{"FOO=host", "SLURM_JOB_ID=42"}}, "exec", "--contain", img, "sh", "-c",
		`ls /dev | tr '\n' ' '; echo; ls -A "$HOME" | wc -l; touch /tmp/`+filepath.Base(marker)+`; test -d `+work+` && echo cwd-bound;
		 echo "$FOO"; test -c /dev/fuse && echo has-fuse; echo end`)
	wantOK(t, r)
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if len(lines) != 4 || lines[1] != "0" || lines[2] != "host" || lines[3] != "end" {
		t.Fatalf("contain: got %q (want minimal /dev, an empty home, no cwd, host env kept)", lines)
	}
	for _, d := range []string{"null", "zero", "urandom", "pts", "ptmx", "shm", "fd"} {
		if !strings.Contains(" "+lines[0], " "+d+" ") {
			t.Errorf("minimal /dev lacks %s: %q", d, lines[0])
		}
	}
	if _, err := os.Stat(marker); err == nil {
		os.Remove(marker)
		t.Error("a file written in /tmp under --contain reached the host's /tmp")
	}

	r = launchWith(t, runOpts{Dir: work, Env: []string{"FOO=host", "SLURM_JOB_ID=42"}}, "exec", "--containall", img, "sh", "-c",
		`echo "FOO=$FOO SLURM=$SLURM_JOB_ID"; readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc`)
	wantOK(t, r)
	lines = strings.Split(strings.TrimSpace(r.Stdout), "\n")
	pidNS, _ := os.Readlink("/proc/self/ns/pid")
	ipcNS, _ := os.Readlink("/proc/self/ns/ipc")
	if len(lines) != 3 || lines[0] != "FOO= SLURM=42" || lines[1] == pidNS || lines[2] == ipcNS {
		t.Errorf("containall: got %q (host pid %s ipc %s); want a clean env keeping SLURM_*, new pid and ipc namespaces", lines, pidNS, ipcNS)
	}
}

func TestBindBadInput(t *testing.T) {
	img := busyboxImage(t, nil)
	a := hostDir(t, "a", "A")
	cases := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"missing source", nil, []string{"-B", "/no/such/dir:/x"}, []string{"--bind /no/such/dir:/x", "does not exist"}},
		{"relative destination", nil, []string{"-B", a + ":rel"}, []string{"rel", "not an absolute path"}},
		{"dotdot destination", nil, []string{"-B", a + ":/x/../etc"}, []string{"/x/../etc", "'..'"}},
		{"unknown option", nil, []string{"-B", a + ":/x:rx"}, []string{`unknown bind option "rx"`}},
		{"over /proc", nil, []string{"-B", a + ":/proc"}, []string{"cannot bind over /proc"}},
		{"over /dev", nil, []string{"-B", a + ":/dev"}, []string{"cannot bind over /dev"}},
		{"under /proc", nil, []string{"-B", a + ":/proc/sys"}, []string{"cannot bind under /proc"}},
		{"bad LAUNCH_BIND", []string{"LAUNCH_BIND=" + a + ":/x:bogus"}, nil, []string{"LAUNCH_BIND", "bogus"}},
		{"--mount without type", nil, []string{"--mount", "src=" + a + ",dst=/x"}, []string{"--mount", "type="}},
		{"--mount unknown field", nil, []string{"--mount", "type=bind,src=" + a + ",dst=/x,bogus=1"}, []string{`unknown field "bogus"`}},
		{"missing home", nil, []string{"-H", "/no/such/home"}, []string{"--home /no/such/home", "does not exist"}},
		{"home and no-home", nil, []string{"-H", a, "--no-home"}, []string{"--home and --no-home"}},
		{"relative pwd", nil, []string{"--pwd", "rel"}, []string{"--pwd rel", "not an absolute path"}},
		{"missing pwd", nil, []string{"--pwd", "/no/such/dir"}, []string{"--pwd /no/such/dir"}},
		{"file onto a directory", nil, []string{"-B", a + "/file:/etc"}, []string{"/etc", "directory"}},
		{"unknown no-mount", nil, []string{"--no-mount", "homer"}, []string{`"homer"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"exec"}, tc.args...), img, "true")
			wantFatal(t, launchWith(t, runOpts{Env: tc.env}, args...), tc.want...)
		})
	}
}

// TestBindCoversEarlierBindsParent: a later bind that covers the directory
// an earlier bind's missing mount point would be made in wins, as the order
// of the binds says (-B a:/opt/app/data -B b:/opt on an image with
// /opt/app), also when other mount points force an underlay of /.
func TestBindCoversEarlierBindsParent(t *testing.T) {
	tree := busyboxTree(t)
	if err := os.MkdirAll(filepath.Join(tree, "opt", "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	img := squashImage(t, tree)
	a, b := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(b, "from-b"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := launch(t, "exec", "-B", a+":/opt/app/data", "-B", b+":/opt", "-B", a+":/scratch", img, "ls", "/opt")
	wantOK(t, r)
	if strings.TrimSpace(r.Stdout) != "from-b" {
		t.Errorf("ls /opt: %q, want the second bind's from-b", r.Stdout)
	}
}
