package imagetrust

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/launch-hpc/launch/internal/cache"
	"github.com/launch-hpc/launch/internal/config"
)

// fakeSIF writes a file with a SIF-sized header (the verdict's identity
// reads only the header and the file's status) and returns its path.
func fakeSIF(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img.sif")
	head := make([]byte, 4096)
	copy(head[32:], "SIF_MAGIC")
	if err := os.WriteFile(p, head, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// setup points the cache and keys at temp dirs and records verdict line
// for the image at p under policy pol.
func setup(t testing.TB, p string, pol config.Images, line string) {
	t.Helper()
	d := t.TempDir()
	t.Setenv("LAUNCH_CACHEDIR", filepath.Join(d, "cache"))
	t.Setenv("LAUNCH_KEYSDIR", filepath.Join(d, "keys"))
	if os.Getenv("XDG_RUNTIME_DIR") != "" && !strings.HasPrefix(os.Getenv("XDG_RUNTIME_DIR"), os.TempDir()) {
		t.Setenv("XDG_RUNTIME_DIR", "") // no secret unless the test made one
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	key, _, err := identity(f, pol)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := cache.OpenVerdicts(filepath.Join(d, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	defer vs.Close()
	if err := vs.Write(key, record(key, line, verdictSecret())); err != nil {
		t.Fatal(err)
	}
}

func TestDecideUsesTheVerdict(t *testing.T) {
	pol := config.Images{Verify: "require", TrustedKeys: []string{}}
	for _, tc := range []struct {
		line string
		ok   bool
	}{{"ok signed by ABC (me)", true}, {"fail image x: not signed", false}} {
		p := fakeSIF(t)
		setup(t, p, pol, tc.line)
		v, err := Decide(pol, p, true)
		if err != nil || v.OK != tc.ok || !v.Cached || !strings.Contains(tc.line, v.Line) {
			t.Errorf("%q: verdict %+v, %v", tc.line, v, err)
		}
		// Another policy or a changed image is another identity: the
		// helper is asked (not installed for unit tests: an error).
		other := pol
		other.TrustedKeys = []string{"0123456789ABCDEF0123456789ABCDEF01234567"}
		if v, err := Decide(other, p, true); err == nil && v.Cached {
			t.Errorf("%q: a verdict for another policy was used", tc.line)
		}
		if err := os.WriteFile(p, append(make([]byte, 4096), 1), 0o644); err != nil {
			t.Fatal(err)
		}
		if v, err := Decide(pol, p, true); err == nil && v.Cached {
			t.Errorf("%q: a verdict for the old image was used", tc.line)
		}
	}
	if v, err := Decide(pol, "dir", false); err != nil || v.OK || !strings.Contains(v.Line, "not a SIF") {
		t.Errorf("directory image: %+v, %v", v, err)
	}
}

func TestParseRejects(t *testing.T) {
	for _, b := range []string{"", "launch-verdict/1\n", "launch-verdict/1\nmaybe\n", "launch-verdict/2\nok x\n", "launch-verdict/1\nok x"} {
		if _, err := parse([]byte(b), "name", nil); err == nil {
			t.Errorf("parse(%q) accepted", b)
		}
	}
}

// BenchmarkDecideWarm is the cost of the policy check at launch time when
// the verdict is in the cache.
func BenchmarkDecideWarm(b *testing.B) {
	pol := config.Images{Verify: "require", TrustedKeys: []string{}}
	p := fakeSIF(b)
	setup(b, p, pol, "ok signed by ABC (me)")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if v, err := Decide(pol, p, true); err != nil || !v.OK {
			b.Fatal(v, err)
		}
	}
}
