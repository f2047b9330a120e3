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

// TestDebootstrapFakeroot: `Bootstrap: debootstrap` of bookworm minbase
// with `%post apt-get install` builds as an unprivileged user with
// --fakeroot (debootstrap runs as root in the user's fakeroot namespace)
// and as root; apt-get's sandbox user works; the SIF keeps the ids of the
// subordinate range (/etc/shadow's group shadow, 42) and root's set-uid
// /usr/bin/passwd; nothing is left in TMPDIR. It downloads from the Debian
// mirror and takes minutes, so it runs only with LAUNCH_E2E_SLOW=1.
func TestDebootstrapFakeroot(t *testing.T) {
	if os.Getenv("LAUNCH_E2E_SLOW") != "1" {
		t.Skip("takes minutes and needs the Debian mirror: set LAUNCH_E2E_SLOW=1")
	}
	if _, err := os.Stat("/usr/sbin/debootstrap"); err != nil {
		t.Skip("debootstrap is not installed (package debootstrap)")
	}
	if !isRoot() {
		needRanges(t)
	}
	dir, tmp := t.TempDir(), t.TempDir()
	def := writeDef(t, dir, "Bootstrap: debootstrap\nOSVersion: bookworm\nMirrorURL: "+debianMirror()+`

%post
    apt-get update
    apt-get install -y --no-install-recommends hello
    rm -rf /var/lib/apt/lists/*
`)
	out := filepath.Join(dir, "deb.sif")
	r := launchWith(t, runOpts{Dir: dir, Env: []string{"TMPDIR=" + tmp, "LAUNCH_TMPDIR=" + tmp}, Timeout: 15 * time.Minute},
		"build", "-q", "--fakeroot", out, def)
	if r.Code != 0 {
		t.Fatalf("build: exit %d: %s", r.Code, lastLines(r.Stderr, 15))
	}
	wantEntries(t, tmp)
	r = launch(t, "exec", out, "hello")
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
