package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestCompatInstallDocs: `make install DESTDIR=…` puts the manual pages and
// the bash, zsh and fish completion scripts where those look under
// $(PREFIX)/share, next to the binaries, and `make uninstall` takes them
// away again. It runs make in the checkout the binary under test was built
// in ($LAUNCH_E2E_SRC, which scripts/test sets for the run as the user who
// built it; else ..), which only that user may write.
func TestCompatInstallDocs(t *testing.T) {
	repo := os.Getenv("LAUNCH_E2E_SRC")
	if repo == "" {
		repo = ".."
	}
	repo, err := filepath.Abs(repo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(repo, "mlocal", "docs.mk")); err != nil {
		t.Skip("no source checkout next to the test binary")
	}
	if fi, err := os.Stat(filepath.Join(repo, "builddir")); err != nil || !ownedByMe(fi) {
		t.Skip("builddir is not this user's: make could not update it")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	dest := t.TempDir()
	out, err := exec.Command("make", "--no-print-directory", "-C", repo, "install", "DESTDIR="+dest).CombinedOutput()
	if err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	bins, _ := filepath.Glob(filepath.Join(dest, "*", "bin", "launch"))
	bins2, _ := filepath.Glob(filepath.Join(dest, "*", "*", "bin", "launch"))
	bins = append(bins, bins2...)
	if len(bins) != 1 {
		t.Fatalf("make install: launch installed at %q, want one", bins)
	}
	prefix := filepath.Dir(filepath.Dir(bins[0]))
	for _, f := range []string{
		"share/man/man1/launch.1", "share/man/man1/launch-exec.1", "share/man/man1/launch-pull.1",
		"share/man/man1/launch-cache-clean.1",
		"share/bash-completion/completions/launch", "share/zsh/site-functions/_launch",
		"share/fish/vendor_completions.d/launch.fish",
	} {
		b, err := os.ReadFile(filepath.Join(prefix, f))
		if err != nil {
			t.Errorf("make install: %v", err)
			continue
		}
		if strings.HasPrefix(f, "share/man/") && !strings.Contains(string(b), ".TH \"LAUNCH\" \"1\"") {
			t.Errorf("%s is not a manual page: %.80q", f, b)
		}
	}
	if b, err := os.ReadFile(filepath.Join(prefix, "share/man/man1/launch-cache-clean.1")); err == nil && !strings.Contains(string(b), "dry-run") {
		t.Errorf("launch-cache-clean.1 does not describe the helper's flags (--dry-run)")
	}
	out, err = exec.Command("make", "--no-print-directory", "-C", repo, "uninstall", "DESTDIR="+dest).CombinedOutput()
	if err != nil {
		t.Fatalf("make uninstall: %v\n%s", err, out)
	}
	var left []string
	filepath.Walk(dest, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Errorf("make uninstall left %q", left)
	}
}

// ownedByMe reports whether fi is owned by the effective user.
func ownedByMe(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}
