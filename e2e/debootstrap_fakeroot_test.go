package e2e

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// debianMirror is the Debian mirror this machine's apt uses (the first
// URIs: of /etc/apt/sources.list.d/debian.sources), else deb.debian.org.
func debianMirror() string {
	if f, err := os.Open("/etc/apt/sources.list.d/debian.sources"); err == nil {
		defer f.Close()
		for sc := bufio.NewScanner(f); sc.Scan(); {
			if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok && strings.EqualFold(k, "URIs") {
				if u := strings.Fields(v); len(u) > 0 {
					return u[0]
				}
			}
		}
	}
	return "http://deb.debian.org/debian"
}

// debianMirrorDir returns the local Debian mirror named by
// LAUNCH_E2E_DEBIAN_MIRROR (scripts/test makes it once per machine with
// scripts/debian-mirror: bookworm minbase and hello, with the archive's
// signed index), or skips saying why there is none.
func debianMirrorDir(t *testing.T) string {
	t.Helper()
	m := os.Getenv("LAUNCH_E2E_DEBIAN_MIRROR")
	if m == "" {
		why := "scripts/test makes it when run as root"
		if u := os.Getenv("LAUNCH_E2E_DEBIAN_MIRROR_UNAVAILABLE"); u != "" {
			why = u
		}
		t.Skipf("LAUNCH_E2E_DEBIAN_MIRROR not set: %s", why)
	}
	if _, err := os.Stat(filepath.Join(m, "dists", "bookworm", "Release")); err != nil {
		t.Fatalf("LAUNCH_E2E_DEBIAN_MIRROR=%s is not a Debian mirror of bookworm: %v", m, err)
	}
	return m
}

// TestDebootstrapFakeroot: `Bootstrap: debootstrap` of bookworm minbase
// with `%post apt-get install` builds as an unprivileged user with
// --fakeroot (debootstrap runs as root in the user's fakeroot namespace)
// and as root; apt-get's sandbox user works; the SIF keeps the ids of the
// subordinate range (/etc/shadow's group shadow, 42) and root's set-uid
// /usr/bin/passwd; nothing is left in TMPDIR.
//
// "local" takes everything from the local mirror (LAUNCH_E2E_DEBIAN_MIRROR,
// the archive's signed index and only the packages needed): debootstrap from
// MirrorURL file://MIRROR ({{ mirror }}, a --build-arg), apt in %post from
// the same mirror bound on /mnt with `build --bind`, so no network is used.
// "network" is the same from this machine's Debian mirror; it takes minutes
// and runs only with LAUNCH_E2E_SLOW=1.
func TestDebootstrapFakeroot(t *testing.T) {
	if _, err := os.Stat("/usr/sbin/debootstrap"); err != nil {
		t.Skip("debootstrap is not installed (package debootstrap)")
	}
	for _, tc := range []struct {
		name string
		def  func(t *testing.T) (def string, args []string)
	}{
		{"local", func(t *testing.T) (string, []string) {
			m := debianMirrorDir(t)
			return "Bootstrap: debootstrap\nOSVersion: bookworm\nMirrorURL: file://{{ mirror }}\n" + `
%post
    echo "deb file:/mnt bookworm main" >/etc/apt/sources.list
    apt-get update
    apt-get install -y --no-install-recommends hello
    rm -rf /var/lib/apt/lists/*
    : >/etc/apt/sources.list
`, []string{"--bind", m + ":/mnt:ro", "--build-arg", "mirror=" + m}
		}},
		{"network", func(t *testing.T) (string, []string) {
			if os.Getenv("LAUNCH_E2E_SLOW") != "1" {
				t.Skip("takes minutes and needs the Debian mirror: set LAUNCH_E2E_SLOW=1")
			}
			return "Bootstrap: debootstrap\nOSVersion: bookworm\nMirrorURL: " + debianMirror() + `

%post
    apt-get update
    apt-get install -y --no-install-recommends hello
    rm -rf /var/lib/apt/lists/*
`, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text, args := tc.def(t)
			if !isRoot() {
				needRanges(t)
			}
			dir, tmp := t.TempDir(), t.TempDir()
			def := writeDef(t, dir, text)
			out := filepath.Join(dir, "deb.sif")
			start := time.Now()
			r := launchWith(t, runOpts{Dir: dir, Env: []string{"TMPDIR=" + tmp, "LAUNCH_TMPDIR=" + tmp}, Timeout: 15 * time.Minute},
				append(append([]string{"build", "-q", "--fakeroot"}, args...), out, def)...)
			if r.Code != 0 {
				t.Fatalf("build: exit %d: %s", r.Code, lastLines(r.Stderr, 15))
			}
			t.Logf("build took %v", time.Since(start).Round(100*time.Millisecond))
			wantEntries(t, tmp)
			checkDebianSIF(t, out)
		})
	}
}

// checkDebianSIF checks the SIF of a debootstrap build: hello runs, and
// the ids and modes of the subordinate range and of root are kept.
func checkDebianSIF(t *testing.T, out string) {
	t.Helper()
	r := launch(t, "exec", out, "hello")
	if wantOK(t, r); r.Stdout != "Hello, world!\n" {
		t.Errorf("hello from the image: %q", r.Stdout)
	}
	want := map[string]string{"squashfs-root/etc/shadow": "0/42", "squashfs-root/usr/bin/passwd": "0/0", "squashfs-root/usr/bin/hello": "0/0"}
	for _, l := range squashList(t, out) {
		f := strings.Fields(l)
		if len(f) < 6 {
			continue
		}
		p := f[len(f)-1]
		if w, ok := want[p]; ok {
			if f[1] != w {
				t.Errorf("%s is %s in the SIF, want %s", p, f[1], w)
			}
			if p == "squashfs-root/usr/bin/passwd" && !strings.HasPrefix(f[0], "-rws") {
				t.Errorf("%s has mode %s, want set-uid as Debian ships it", p, f[0])
			}
			delete(want, p)
		}
	}
	for p := range want {
		t.Errorf("%s is not in the SIF", p)
	}
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// TestBuildBind: `launch build --bind SRC:DST[:ro]` binds a host directory
// into the containers of %post and %test (as Apptainer's build --bind), and
// bad values are one FATAL line each, naming the culprit, leaving nothing.
func TestBuildBind(t *testing.T) {
	base := buildSIF(t, busyboxTree(t))
	dir, tmp, src := t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "pkg.txt"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	def := writeDef(t, dir, "Bootstrap: localimage\nFrom: "+base+`

%post
    cp /mnt/pkg.txt /copied.txt

%test
    grep -q "from the host" /mnt/pkg.txt
`)
	out := filepath.Join(dir, "b.sif")
	r := defLaunch(t, dir, tmp, "build", "-q", "--bind", src+":/mnt:ro", out, def)
	if r.Code != 0 {
		t.Fatalf("build --bind: exit %d: %s", r.Code, r.Stderr)
	}
	wantEntries(t, tmp)
	r = launch(t, "exec", out, "cat", "/copied.txt")
	if wantOK(t, r); r.Stdout != "from the host\n" {
		t.Errorf("the file %%post copied from the bind: %q", r.Stdout)
	}
	r = launch(t, "exec", out, "ls", "/mnt")
	if wantOK(t, r); r.Stdout != "" {
		t.Errorf("the bind's files are in the image: /mnt holds %q", r.Stdout)
	}
	// Without the bind, %test fails the build.
	r = defLaunch(t, dir, tmp, "build", "-q", "--force", out, def)
	if r.Code == 0 {
		t.Errorf("build without the bind passed; %%post should fail to copy /mnt/pkg.txt")
	}
	wantEntries(t, tmp)

	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"missing source", []string{"--bind", filepath.Join(src, "nope") + ":/mnt"}, []string{"--bind", "nope"}},
		{"bad option", []string{"--bind", src + ":/mnt:bogus"}, []string{"--bind", "bogus"}},
		{"forbidden dest", []string{"--bind", src + ":/proc"}, []string{"--bind", "/proc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, "bad.sif")
			r := defLaunch(t, dir, tmp, append(append([]string{"build"}, tc.args...), out, def)...)
			wantFatal(t, r, tc.want...)
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s exists after a failed build", out)
			}
			wantEntries(t, tmp)
		})
	}
	t.Run("not a definition file", func(t *testing.T) {
		r := defLaunch(t, dir, tmp, "build", "--bind", src, filepath.Join(dir, "x.sif"), busyboxTree(t))
		wantFatal(t, r, "--bind", "definition file")
	})
}
