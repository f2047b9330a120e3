package squashfs

import (
	"bytes"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// benchFileSize is the size of the file BenchmarkReadFile reads.
const benchFileSize = 32 << 20

// benchImages holds the benchmark's images by compressor, made once.
var benchImages = map[string][]byte{}

// benchImage returns an image of one benchFileSize file, made with args.
func benchImage(b *testing.B, name string, args ...string) []byte {
	b.Helper()
	needMksquashfs(b)
	if raw := benchImages[name]; raw != nil {
		return raw
	}
	dir := filepath.Join(b.TempDir(), "tree")
	must(b, os.MkdirAll(dir, 0o755))
	must(b, os.WriteFile(filepath.Join(dir, "big"), content(42, benchFileSize), 0o644))
	raw, err := os.ReadFile(mksquashfs(b, dir, nil, args...))
	must(b, err)
	benchImages[name] = raw
	return raw
}

// BenchmarkReadFile reads a 32 MiB file in 128 KiB reads, from one
// goroutine in order and from all at once at scattered offsets, with a
// cache too small to hold it (every block is decompressed; with 1 MiB
// blocks a scattered read decompresses 8 times what it reads), the same
// with read-ahead, and with a cache that holds it all (reads are copies).
func BenchmarkReadFile(b *testing.B) {
	for _, comp := range []struct {
		name string
		args []string
	}{
		{"gzip", []string{"-comp", "gzip"}},
		{"zstd", []string{"-comp", "zstd"}},
		{"lz4", []string{"-comp", "lz4"}},
		{"gzip-1M", []string{"-comp", "gzip", "-b", "1M"}},
	} {
		for _, cache := range []struct {
			name      string
			blocks    int
			readAhead int
		}{{"cold", 16, 0}, {"cold-readahead", 16, 4}, {"cached", 512, 0}} {
			b.Run(comp.name+"/"+cache.name+"/serial", func(b *testing.B) {
				im, f := benchOpen(b, comp.name, comp.args, cache.blocks, cache.readAhead)
				p := make([]byte, 128<<10)
				b.SetBytes(benchFileSize)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					for off := int64(0); off < benchFileSize; off += int64(len(p)) {
						if _, err := im.ReadAt(f, p, off); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
			b.Run(comp.name+"/"+cache.name+"/parallel", func(b *testing.B) {
				im, f := benchOpen(b, comp.name, comp.args, cache.blocks, cache.readAhead)
				var next atomic.Int64
				b.SetBytes(128 << 10)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					p := make([]byte, 128<<10)
					for pb.Next() {
						// Scattered, so that goroutines rarely share a block.
						k := next.Add(1) * 97 % (benchFileSize / int64(len(p)))
						if _, err := im.ReadAt(f, p, k*int64(len(p))); err != nil {
							b.Fatal(err)
						}
					}
				})
			})
		}
	}
}

// benchOpen opens the benchmark image and finds its file; with a cache
// big enough, it reads the file once so that it is all cached.
func benchOpen(b *testing.B, name string, args []string, blocks, readAhead int) (*Image, *Inode) {
	raw := benchImage(b, name, args...)
	im, err := Open(bytes.NewReader(raw), 0, int64(len(raw)), Options{CacheBlocks: blocks, ReadAhead: readAhead})
	must(b, err)
	f := lookupPath(b, im, "big")
	if blocks*int(im.BlockSize()) >= benchFileSize {
		p := make([]byte, 1<<20)
		for off := int64(0); off < benchFileSize; off += int64(len(p)) {
			im.ReadAt(f, p, off)
		}
	}
	return im, f
}

// BenchmarkLookup looks up every name of the 3000-entry directory of the
// test tree, and stats what it finds (the Inode is decoded).
func BenchmarkLookup(b *testing.B) {
	_, raw := sharedImage(b, "-comp", "gzip")
	im := openAt(b, raw, 0, Options{})
	big := lookupPath(b, im, "big")
	ents, err := im.ReadDir(big)
	must(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := im.Lookup(big, ents[i%len(ents)].Name); err != nil {
			b.Fatal(err)
		}
	}
}
