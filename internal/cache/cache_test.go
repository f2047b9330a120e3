package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func digestOf(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

func TestBlobConcurrentAndCorrupt(t *testing.T) {
	dir := t.TempDir() + "/cache"
	blob := bytes.Repeat([]byte("layer data "), 10000)
	d := digestOf(blob)
	var fetches atomic.Int32
	fetch := func() (io.ReadCloser, error) {
		fetches.Add(1)
		return io.NopCloser(bytes.NewReader(blob)), nil
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Open(dir) // its own lock file descriptors, like another process
			if err != nil {
				t.Error(err)
				return
			}
			rc, err := c.Open(context.Background(), d, int64(len(blob)), fetch)
			if err != nil {
				t.Error(err)
				return
			}
			defer rc.Close()
			if got, _ := io.ReadAll(rc); !bytes.Equal(got, blob) {
				t.Error("blob content differs")
			}
		}()
	}
	wg.Wait()
	if n := fetches.Load(); n != 1 {
		t.Errorf("fetched %d times, want once", n)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("cache dir mode %v %v", fi.Mode(), err)
	}

	// Corrupt it: detected, fetched again.
	c, _ := Open(dir)
	var warned string
	c.Warn = func(f string, a ...any) { warned = f }
	if err := os.WriteFile(c.BlobPath(d), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	rc, err := c.Open(context.Background(), d, int64(len(blob)), fetch)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, blob) || fetches.Load() != 2 || !strings.Contains(warned, "corrupt") {
		t.Errorf("corrupt blob not refetched: fetches %d, warning %q", fetches.Load(), warned)
	}

	// A fetch that returns other bytes is refused and leaves nothing.
	other := digestOf([]byte("other"))
	_, err = c.Open(context.Background(), other, 5, func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("wrong")), nil
	})
	if err == nil || !strings.Contains(err.Error(), "digest mismatch") {
		t.Errorf("wrong data: %v", err)
	}
	if _, err := os.Stat(c.BlobPath(other)); err == nil {
		t.Error("a blob with the wrong digest was kept")
	}
	ents, _ := c.List()
	if len(ents) != 1 || ents[0].Kind != KindBlob || ents[0].Digest != d.String() {
		t.Errorf("List = %+v", ents)
	}
	if n, _, err := c.Clean(); n != 1 || err != nil {
		t.Errorf("Clean = %d, %v", n, err)
	}
}

// TestCleanWith: --days keeps what was used since, --dry-run removes
// nothing and reports the same entries a real clean removes.
func TestCleanWith(t *testing.T) {
	c, err := Open(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	put := func(data string, age time.Duration) v1.Hash {
		d := digestOf([]byte(data))
		rc, err := c.Open(context.Background(), d, int64(len(data)), func() (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader(data)), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
		old := time.Now().Add(-age)
		if err := os.Chtimes(c.BlobPath(d), old, old); err != nil {
			t.Fatal(err)
		}
		return d
	}
	oldD := put("old", 10*24*time.Hour)
	put("new", time.Hour)
	cases := []struct {
		name string
		o    CleanOptions
		want []string // digests, in order
		left int
	}{
		{"dry run, older than 5 days", CleanOptions{UsedBefore: time.Now().AddDate(0, 0, -5), DryRun: true}, []string{oldD.String()}, 2},
		{"dry run, sif only", CleanOptions{Kinds: []string{KindSIF}, DryRun: true}, nil, 2},
		{"older than 5 days", CleanOptions{UsedBefore: time.Now().AddDate(0, 0, -5)}, []string{oldD.String()}, 1},
		{"older than 20 days", CleanOptions{UsedBefore: time.Now().AddDate(0, 0, -20)}, nil, 1},
		{"all", CleanOptions{}, []string{digestOf([]byte("new")).String()}, 0},
	}
	for _, tc := range cases {
		gone, err := c.CleanWith(tc.o)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var got []string
		for _, e := range gone {
			got = append(got, e.Digest)
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s: removed %q, want %q", tc.name, got, tc.want)
		}
		if ents, _ := c.List(); len(ents) != tc.left {
			t.Errorf("%s: %d entries left, want %d", tc.name, len(ents), tc.left)
		}
	}
}
