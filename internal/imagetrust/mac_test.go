package imagetrust

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/launch-hpc/launch/internal/cache"
	"github.com/launch-hpc/launch/internal/config"
)

// TestVerdictMAC: with a secret outside home, only a verdict carrying its
// mac for that name is used: one written without it (as a container
// payload could, into the cache under home), with another secret's, or
// moved from another name is a miss (the helper is asked: not installed
// for unit tests, an error).
func TestVerdictMAC(t *testing.T) {
	rd := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", rd)
	pol := config.Images{Verify: "require", TrustedKeys: []string{}}
	p := fakeSIF(t)
	setup(t, p, pol, "ok signed by ABC (me)")
	if verdictSecret() == nil {
		t.Fatal("no secret in XDG_RUNTIME_DIR")
	}
	if v, err := Decide(pol, p, true); err != nil || !v.OK || !v.Cached {
		t.Fatalf("an authenticated verdict: %+v, %v", v, err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := identity(f, pol)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	vs, err := cache.OpenVerdicts(os.Getenv("LAUNCH_CACHEDIR"))
	if err != nil {
		t.Fatal(err)
	}
	defer vs.Close()
	other := make([]byte, len(verdictSecret()))
	for name, rec := range map[string][]byte{
		"no mac":       []byte(recordVersion + "ok signed by ABC (me)\n"),
		"other secret": record(key, "ok signed by ABC (me)", other),
		"other name":   record(strings.Repeat("0", 64), "ok signed by ABC (me)", verdictSecret()),
		"changed line": append([]byte(recordVersion+"ok signed by EVE\n"), record(key, "ok signed by ABC (me)", verdictSecret())[len(recordVersion+"ok signed by ABC (me)\n"):]...),
	} {
		if err := vs.Write(key, rec); err != nil {
			t.Fatal(err)
		}
		if v, err := Decide(pol, p, true); err == nil && v.Cached {
			t.Errorf("%s: the verdict was used: %+v", name, v)
		}
	}
}

// TestSameFile: the file checked passes; the same path given another
// file, or the file changed, does not.
func TestSameFile(t *testing.T) {
	p := fakeSIF(t)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	id, err := FileID(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if err := SameFile(int(f.Fd()), id); err != nil {
		t.Fatalf("the checked file: %v", err)
	}
	// Another file renamed over the path (same size and content).
	tmp := filepath.Join(filepath.Dir(p), "other.sif")
	b, _ := os.ReadFile(p)
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	g, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := SameFile(int(g.Fd()), id); err == nil || !strings.Contains(err.Error(), "not the one whose signatures were checked") {
		t.Errorf("a file renamed over the checked one: %v", err)
	}
	// The checked file itself changed (its size and times).
	h, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	id2, _ := FileID(int(g.Fd()))
	h.Write([]byte("x")) //nolint:errcheck
	h.Close()
	if err := SameFile(int(g.Fd()), id2); err == nil {
		t.Error("a file changed after its check passed")
	}
}
