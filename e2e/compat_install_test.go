package e2e

import (
	"errors"
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
	repo := installRepo(t)
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

// installRepo is the checkout `make install` may run in (as
// TestCompatInstallDocs says), or a skip.
func installRepo(t *testing.T) string {
	t.Helper()
	repo := os.Getenv("LAUNCH_E2E_SRC")
	if repo == "" {
		repo = ".."
	}
	repo, err := filepath.Abs(repo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(repo, "mlocal", "install.mk")); err != nil {
		t.Skip("no source checkout next to the test binary")
	}
	if fi, err := os.Stat(filepath.Join(repo, "builddir")); err != nil || !ownedByMe(fi) {
		t.Skip("builddir is not this user's: make could not update it")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	return repo
}

// TestCompatInstallRunSingularity: `make install` puts run-singularity next
// to launch, so that an executable SIF (its first line is
// #!/usr/bin/env run-singularity, as Apptainer writes it too) runs as
// `launch run` with its arguments and exit status; an existing
// run-singularity that is not launch's (Apptainer's) is kept, and
// `make uninstall` leaves it.
func TestCompatInstallRunSingularity(t *testing.T) {
	repo := installRepo(t)
	dest := t.TempDir()
	if out, err := exec.Command("make", "--no-print-directory", "-C", repo, "install", "DESTDIR="+dest).CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	bins, _ := filepath.Glob(filepath.Join(dest, "*", "*", "bin", "run-singularity"))
	bins2, _ := filepath.Glob(filepath.Join(dest, "*", "bin", "run-singularity"))
	if bins = append(bins, bins2...); len(bins) != 1 {
		t.Fatalf("make install: run-singularity installed at %q, want one", bins)
	}
	bin := filepath.Dir(bins[0])
	tree := busyboxTree(t)
	if err := os.MkdirAll(filepath.Join(tree, ".singularity.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, ".singularity.d", "runscript"), []byte("#!/bin/sh\necho \"runscript: $*\"\nexit 7\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	img := buildSIF(t, tree)
	if err := os.Chmod(img, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(img, "a", "b c")
	cmd.Env = append(os.Environ(), "PATH="+bin+":/usr/bin:/bin")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 || string(out) != "runscript: a b c\n" {
		t.Errorf("./image.sif a 'b c': %v, stdout %q; want exit 7 and the runscript's line", err, out)
	}
	if out, err := exec.Command("make", "--no-print-directory", "-C", repo, "uninstall", "DESTDIR="+dest).CombinedOutput(); err != nil {
		t.Fatalf("make uninstall: %v\n%s", err, out)
	}
	if _, err := os.Stat(bins[0]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("make uninstall left run-singularity: %v", err)
	}

	// Apptainer's run-singularity in the same place is kept.
	foreign := "#!/bin/sh\nexec /usr/bin/env apptainer --quiet run \"$@\"\n"
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bins[0], []byte(foreign), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"install", "uninstall"} {
		out, err := exec.Command("make", "--no-print-directory", "-C", repo, target, "DESTDIR="+dest).CombinedOutput()
		if err != nil {
			t.Fatalf("make %s: %v\n%s", target, err, out)
		}
		if b, err := os.ReadFile(bins[0]); err != nil || string(b) != foreign {
			t.Errorf("make %s over Apptainer's run-singularity: %v, now %q", target, err, b)
		}
	}
}

// ownedByMe reports whether fi is owned by the effective user.
func ownedByMe(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}
