package keyring

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestTrustedMode(t *testing.T) {
	const me = 1000
	for _, tc := range []struct {
		name string
		mode uint32
		uid  uint32
		want string
	}{
		{"root's 0644", unix.S_IFREG | 0o644, 0, ""},
		{"mine 0600", unix.S_IFREG | 0o600, me, ""},
		{"another user's", unix.S_IFREG | 0o644, 1001, "neither root nor you"},
		{"group-writable", unix.S_IFREG | 0o664, 0, "writable by its group"},
		{"other-writable", unix.S_IFREG | 0o646, me, "writable by its group"},
		{"a directory", unix.S_IFDIR | 0o755, 0, "not a regular file"},
	} {
		err := trustedMode("/etc/launch/global-pgp-public", &unix.Stat_t{Mode: tc.mode, Uid: tc.uid}, me)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestReadTrusted(t *testing.T) {
	p := filepath.Join(t.TempDir(), "roots.pem")
	if err := os.WriteFile(p, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadTrusted(p); err != nil || string(b) != "data" {
		t.Fatalf("ReadTrusted: %q %v", b, err)
	}
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTrusted(p); err == nil || !strings.Contains(err.Error(), "writable") {
		t.Errorf("a world-writable file: %v", err)
	}
}
