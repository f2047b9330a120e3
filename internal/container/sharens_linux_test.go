package container

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSharensKeyNeedsSecret: without the user's share secret (no runtime
// directory, a home where none can be kept) there is no rendezvous key,
// so no sharing: a name anyone could compute could be squatted.
func TestSharensKeyNeedsSecret(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "img.sif")
	if err := os.WriteFile(img, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_RUNTIME_DIR", "")
	for _, tc := range []struct {
		home    string
		wantErr bool
	}{
		{filepath.Join(dir, "missing", "home"), true},
		{"", true},
		{dir, false},
	} {
		cfg := &Config{}
		cfg.Image.Path = img
		cfg.User = User{UID: os.Getuid(), GID: os.Getgid(), Home: tc.home}
		key, secret, err := sharensKey(cfg)
		switch {
		case tc.wantErr && (err == nil || !strings.Contains(err.Error(), "share secret")):
			t.Errorf("home %q: key %q, secret %x, err %v; want an error about the share secret", tc.home, key, secret, err)
		case !tc.wantErr && (err != nil || len(secret) == 0 || key == ""):
			t.Errorf("home %q: key %q, secret %x, err %v; want a key and a secret", tc.home, key, secret, err)
		}
	}
}
