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
	"time"
)

// debianTree returns the Debian minbase tree named by LAUNCH_E2E_DEBIAN_TREE
// (scripts/test makes it with debootstrap and caches it per machine), or skips.
func debianTree(t *testing.T) string {
	t.Helper()
	tree := os.Getenv("LAUNCH_E2E_DEBIAN_TREE")
	if tree == "" {
		why := "LAUNCH_E2E_DEBIAN_TREE not set: scripts/test prepares it when run as root"
		if u := os.Getenv("LAUNCH_E2E_DEBIAN_UNAVAILABLE"); u != "" {
			why = "LAUNCH_E2E_DEBIAN_TREE not set: " + u
		}
		t.Skip(why)
	}
	if _, err := os.Stat(filepath.Join(tree, "etc", "debian_version")); err != nil {
		t.Fatalf("LAUNCH_E2E_DEBIAN_TREE=%s is not a Debian tree: %v", tree, err)
	}
	return tree
}

// debianSIF returns the SIF of tree: LAUNCH_E2E_DEBIAN_SIF (scripts/test
// builds it once, as root, with the launch under test), else one built here
// with launch build into t's temp dir. As an unprivileged user that build
// fails on the files of a root-owned tree only root can read (/etc/shadow),
// and the test skips.
func debianSIF(t *testing.T, tree string) string {
	t.Helper()
	if sif := os.Getenv("LAUNCH_E2E_DEBIAN_SIF"); sif != "" {
		if _, err := os.Stat(sif); err != nil {
			t.Fatalf("LAUNCH_E2E_DEBIAN_SIF: %v", err)
		}
		return sif
	}
	out := filepath.Join(t.TempDir(), "debian.sif")
	r := launchWith(t, runOpts{Timeout: 5 * time.Minute}, "build", "-q", out, tree)
	if r.Code != 0 && !isRoot() && strings.Contains(r.Stderr, "permission denied") {
		// As it should (TestDebianBuildAsUserUnreadable): no image to test.
		t.Skipf("cannot pack the root-owned %s as uid %d (run scripts/test as root, or set LAUNCH_E2E_DEBIAN_SIF): %s",
			tree, os.Getuid(), strings.TrimSpace(r.Stderr))
	}
	wantOK(t, r)
	return out
}

// TestDebian runs a real distribution, a debootstrap'ed Debian minbase packed
// by launch build, through exec, shell and --pid. Its subtests share the one
// image, which lives as long as this test.
func TestDebian(t *testing.T) {
	tree := debianTree(t)
	img := debianSIF(t, tree)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	// run runs a bash command line in the image and returns its stdout.
	run := func(t *testing.T, o runOpts, script string) string {
		t.Helper()
		r := launchWith(t, o, "exec", img, "/bin/bash", "-o", "pipefail", "-c", script)
		wantOK(t, r)
		return r.Stdout
	}

	t.Run("DebianVersion", func(t *testing.T) {
		want, err := os.ReadFile(filepath.Join(tree, "etc", "debian_version"))
		if err != nil {
			t.Fatal(err)
		}
		if got := run(t, runOpts{}, "cat /etc/debian_version"); got != string(want) {
			t.Errorf("/etc/debian_version: got %q, want %q (the tree's)", got, want)
		}
	})

	t.Run("Identity", func(t *testing.T) {
		got := strings.Split(strings.TrimSpace(run(t, runOpts{},
			`id -un; id -u; id -g; getent passwd root; getent passwd daemon | cut -d: -f1,3; getent passwd "$(id -un)" | cut -d: -f1,3,4,6; getent group "$(id -g)" | cut -d: -f3`)), "\n")
		want := []string{
			me.Username, me.Uid, me.Gid,
			"root:x:0:0:root:/root:/bin/bash", // the image's entries are kept...
			"daemon:1",
			me.Username + ":" + me.Uid + ":" + me.Gid + ":" + me.HomeDir, // ...and the user's added
			me.Gid,
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("identity inside:\n got %q\nwant %q", got, want)
		}
	})

	t.Run("Bash", func(t *testing.T) {
		got := strings.TrimSpace(run(t, runOpts{}, `echo "$BASH_VERSION"`))
		if !strings.HasPrefix(got, "5.") {
			t.Errorf("BASH_VERSION %q, want bash 5", got)
		}
	})

	t.Run("Dpkg", func(t *testing.T) {
		out := strings.TrimSpace(run(t, runOpts{}, "dpkg -l | wc -l"))
		if n, err := strconv.Atoi(out); err != nil || n <= 50 {
			t.Errorf("dpkg -l | wc -l = %q, want > 50 lines", out)
		}
		if out := run(t, runOpts{}, "dpkg-query -W -f '${Status}' bash"); out != "install ok installed" {
			t.Errorf("dpkg-query bash: %q", out)
		}
	})

	t.Run("AptGet", func(t *testing.T) {
		if out := run(t, runOpts{}, "apt-get --version"); !strings.HasPrefix(out, "apt ") {
			t.Errorf("apt-get --version: %q", out)
		}
	})

	t.Run("Env", func(t *testing.T) {
		r := launch(t, "exec", img, "/usr/bin/env")
		wantOK(t, r)
		if !strings.Contains(r.Stdout, "\nHOME="+me.HomeDir+"\n") && !strings.HasPrefix(r.Stdout, "HOME="+me.HomeDir+"\n") {
			t.Errorf("/usr/bin/env does not show HOME=%s:\n%s", me.HomeDir, r.Stdout)
		}
	})

	t.Run("NoPython", func(t *testing.T) {
		// minbase has no Python; should that change, a working one will do.
		if _, err := os.Lstat(filepath.Join(tree, "usr", "bin", "python3")); err == nil {
			if out := run(t, runOpts{}, `python3 -c 'print(6*7)'`); out != "42\n" {
				t.Errorf("python3: %q", out)
			}
			return
		}
		wantFatal(t, launch(t, "exec", img, "python3"), "python3", "not found")
	})

	t.Run("HomeAndWorkdir", func(t *testing.T) {
		work := t.TempDir()
		out := run(t, runOpts{Dir: work}, `ls -ldn "$HOME" | awk '{print $3}'; pwd; echo written > out.txt`)
		if want := me.Uid + "\n" + work + "\n"; out != want {
			t.Errorf("got %q, want %q (the home directory's owner, the working directory)", out, want)
		}
		fi, err := os.Stat(filepath.Join(work, "out.txt"))
		if err != nil {
			t.Fatalf("file written inside is not on the host: %v", err)
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Getuid() || int(st.Gid) != os.Getgid() {
			t.Errorf("file written inside owned by %d:%d, want %d:%d", st.Uid, st.Gid, os.Getuid(), os.Getgid())
		}
	})

	t.Run("Shell", func(t *testing.T) {
		r := launchWith(t, runOpts{Stdin: "echo \"bash=${BASH_VERSION%%.*} $(cat /etc/debian_version)\"\nexit 3\n"}, "shell", img)
		want, _ := os.ReadFile(filepath.Join(tree, "etc", "debian_version"))
		if r.Code != 3 || r.Stdout != "bash=5 "+string(want) {
			t.Errorf("shell: code %d stdout %q stderr %q; want code 3 and bash", r.Code, r.Stdout, r.Stderr)
		}
	})

	t.Run("PIDNamespace", func(t *testing.T) {
		// minbase has no procps (ps); /proc tells the same.
		r := launch(t, "exec", "--pid", img, "/bin/bash", "-c", "ls /proc | grep -c '^[0-9]'")
		wantOK(t, r)
		if n, err := strconv.Atoi(strings.TrimSpace(r.Stdout)); err != nil || n > 5 {
			t.Errorf("a new PID namespace should show a handful of processes, got %q", r.Stdout)
		}
	})

	t.Run("ReadAllOfUsr", func(t *testing.T) {
		// Every file under /usr read through squashfuse, checked against the tree.
		const sum = `find usr -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum`
		cmd := exec.Command("/bin/bash", "-o", "pipefail", "-c", sum)
		cmd.Dir = tree
		want, err := cmd.Output()
		if err != nil {
			t.Fatalf("checksumming %s/usr on the host: %v", tree, err)
		}
		got := run(t, runOpts{Timeout: 5 * time.Minute},
			`find /usr -type f -exec cat {} + > /dev/null && cd / && `+sum)
		if got != string(want) {
			t.Errorf("the files under /usr read inside differ from the tree's: sha256 of sha256sums %q, want %q", got, want)
		}
	})
}

// TestDebianBuildAsUserUnreadable: packing a root-owned Debian tree as an
// unprivileged user fails up front, naming a file only root can read, rather
// than storing it empty.
func TestDebianBuildAsUserUnreadable(t *testing.T) {
	tree := debianTree(t)
	if isRoot() {
		t.Skip("root can read every file of the tree")
	}
	if f, err := os.Open(filepath.Join(tree, "etc", "shadow")); err == nil {
		f.Close()
		t.Skipf("%s/etc/shadow is readable by uid %d", tree, os.Getuid())
	}
	out := filepath.Join(t.TempDir(), "debian.sif")
	wantFatal(t, launch(t, "build", "-q", out, tree), "permission denied")
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a failed build left %s behind", out)
	}
}
