package keyring

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newRing(t *testing.T) Ring {
	t.Helper()
	return Ring{Dir: filepath.Join(t.TempDir(), "keys")}
}

func TestNewPairImportRemove(t *testing.T) {
	a := newRing(t)
	e, err := a.NewPair(PairOptions{Name: "A", Email: "a@x", Passphrase: []byte("pw"), Bits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	fp := Fingerprint(e)
	for _, p := range []string{a.PublicPath(), a.SecretPath()} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v", p, err, fi.Mode())
		}
	}
	sec, err := a.Secret()
	if err != nil || len(sec) != 1 || !sec[0].PrivateKey.Encrypted {
		t.Fatalf("secret keyring: %v %v", sec, err)
	}
	if err := sec[0].DecryptPrivateKeys([]byte("wrong")); err == nil {
		t.Error("a wrong passphrase decrypted the key")
	}

	// Import the secret keyring file into another ring: both keyrings get it.
	b := newRing(t)
	el, err := ReadFile(a.SecretPath())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Import(el); err != nil {
		t.Fatal(err)
	}
	pub, _ := b.Public()
	sec, _ = b.Secret()
	if len(Find(pub, fp)) != 1 || len(Find(sec, fp)) != 1 || pub[0].PrivateKey != nil {
		t.Fatalf("after import: public %d, secret %d", len(pub), len(sec))
	}
	// Importing again replaces, not duplicates; the long key id finds it.
	if _, err := b.Import(el); err != nil {
		t.Fatal(err)
	}
	if pub, _ = b.Public(); len(pub) != 1 || len(Find(pub, fp[24:])) != 1 {
		t.Errorf("public keyring has %d keys after a second import", len(pub))
	}
	if err := b.Remove(fp, true, false); err != nil {
		t.Fatal(err)
	}
	pub, _ = b.Public()
	sec, _ = b.Secret()
	if len(pub) != 0 || len(sec) != 1 {
		t.Errorf("remove of the public key: public %d, secret %d", len(pub), len(sec))
	}
	if err := b.Remove(fp, true, false); err == nil || !strings.Contains(err.Error(), "no key") {
		t.Errorf("second remove: %v", err)
	}
	ents, _ := os.ReadDir(b.Dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), "tmp") {
			t.Errorf("left behind %s", e.Name())
		}
	}

	// Armoured export reads back.
	var buf bytes.Buffer
	if err := Armor(&buf, Find(el, fp), false); err != nil {
		t.Fatal(err)
	}
	back, err := Parse("export", buf.Bytes())
	if err != nil || len(back) != 1 || Fingerprint(back[0]) != fp {
		t.Errorf("armoured export: %v %v", back, err)
	}
}

func TestRefusals(t *testing.T) {
	r := newRing(t)
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		setup func() error
		want  string
	}{
		{"corrupt", func() error { return os.WriteFile(r.PublicPath(), []byte("\x99\x01garbage"), 0o600) }, "corrupt"},
		{"writable by others", func() error {
			if err := os.WriteFile(r.PublicPath(), nil, 0o600); err != nil {
				return err
			}
			return os.Chmod(r.PublicPath(), 0o622)
		}, "writable by other users"},
		{"link", func() error { return os.Symlink("/etc/passwd", r.PublicPath()) }, "symbolic link"},
		{"fifo", func() error { return mkfifo(r.PublicPath()) }, "not a regular file"},
	} {
		os.Remove(r.PublicPath())
		if err := tc.setup(); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Public(); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), r.PublicPath()) {
			t.Errorf("%s: %v, want %q naming the file", tc.name, err, tc.want)
		}
		// A change is refused and leaves the keyring as it was.
		if _, err := r.NewPair(PairOptions{Name: "x", Bits: 1024}); err == nil {
			t.Errorf("%s: newpair over a bad keyring succeeded", tc.name)
		}
	}
}
