package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

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
