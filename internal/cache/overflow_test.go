package cache

import (
	"os"
	"strings"
	"testing"
)

// TestOpenTrustedOverflowRoot: where root shows as the overflow uid (a
// user namespace that does not map root, as OpenVerdicts runs in), that
// uid stands for every unmapped user: a directory of it above the cache
// is taken for root's only if nobody else can write it (or it is sticky),
// and a link of it is refused.
func TestOpenTrustedOverflowRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to make files of another user")
	}
	me := os.Geteuid()
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, b string) string
		want  string // "" = it opens
	}{
		{"overflow-owned-parent-0755", func(t *testing.T, b string) string {
			mkdir(t, b+"/p", 0o755)
			chown(t, b+"/p")
			return b + "/p/c"
		}, ""},
		{"overflow-owned-parent-sticky", func(t *testing.T, b string) string {
			mkdir(t, b+"/p", 0o1777)
			chown(t, b+"/p")
			return b + "/p/c"
		}, ""},
		{"overflow-owned-parent-writable-not-sticky", func(t *testing.T, b string) string {
			mkdir(t, b+"/p", 0o777)
			chown(t, b+"/p")
			return b + "/p/c"
		}, "writable by other users and not sticky"},
		{"overflow-owned-parent-group-writable", func(t *testing.T, b string) string {
			mkdir(t, b+"/p", 0o775)
			chown(t, b+"/p")
			return b + "/p/c"
		}, "not sticky"},
		{"overflow-owned-link", func(t *testing.T, b string) string {
			mkdir(t, b+"/real", 0o700)
			symlink(t, b+"/real", b+"/link")
			if err := os.Lchown(b+"/link", otherUID, otherUID); err != nil {
				t.Fatal(err)
			}
			return b + "/link/c"
		}, "stands for root and every other user"},
		{"my-link", func(t *testing.T, b string) string {
			mkdir(t, b+"/real", 0o700)
			symlink(t, b+"/real", b+"/link")
			return b + "/link/c"
		}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := c.setup(t, t.TempDir())
			f, err := openTrustedRoot(dir, me, otherUID)
			if c.want == "" {
				if err != nil {
					t.Fatalf("openTrustedRoot(%s): %v", dir, err)
				}
				f.Close()
				return
			}
			if err == nil {
				f.Close()
				t.Fatalf("openTrustedRoot(%s) succeeded, want %q", dir, c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("openTrustedRoot(%s): %v, want %q", dir, err, c.want)
			}
		})
	}
}
