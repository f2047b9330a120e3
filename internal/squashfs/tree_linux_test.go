package squashfs

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// want is what the image must hold for one path.
type want struct {
	typ    Type
	perm   uint16
	uid    uint32
	gid    uint32
	mtime  uint32
	nlink  uint32
	size   uint64 // files and links; directories are checked against unsquashfs
	target string
	rdev   uint32
	data   []byte
	xattrs []Xattr // sorted by name
	srcIno uint64  // the source inode, to group hard links (0: none)
}

// source is a tree made for the tests, the pseudo definitions that add to
// it in mksquashfs and what the image of both must hold.
type source struct {
	dir    string
	pseudo []string
	want   map[string]*want // by slash path relative to the root, "" the root
	xattrs bool             // the tree has xattrs
}

// needMksquashfs skips the test when mksquashfs is not installed.
func needMksquashfs(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		tb.Skip("mksquashfs is not installed")
	}
}

// mksquashfs packs dir (with the pseudo definitions) into a new image in
// tb's temporary directory and returns its path.
func mksquashfs(tb testing.TB, dir string, pseudo []string, args ...string) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "image.sqfs")
	mksquashfsTo(tb, out, dir, pseudo, args...)
	return out
}

// mksquashfsTo packs dir (with the pseudo definitions) into the image out.
func mksquashfsTo(tb testing.TB, out, dir string, pseudo []string, args ...string) {
	tb.Helper()
	cmd := []string{dir, out, "-noappend", "-quiet", "-no-progress"}
	for _, p := range pseudo {
		cmd = append(cmd, "-p", p)
	}
	cmd = append(cmd, args...)
	if b, err := exec.Command("mksquashfs", cmd...).CombinedOutput(); err != nil {
		tb.Fatalf("mksquashfs %s: %v\n%s", strings.Join(args, " "), err, b)
	}
}

// content returns n bytes mixing random and compressible stretches, so
// that images hold both compressed and uncompressed blocks.
func content(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	words := []string{"squash", "block", "fragment", "inode", "table ", "\n", "zero\x00", "data"}
	for i := 0; i < n; {
		run := min(n-i, 1+r.IntN(9000))
		if r.IntN(3) == 0 {
			for j := i; j < i+run; j++ {
				b[j] = byte(r.Uint32())
			}
		} else {
			for j := i; j < i+run; {
				j += copy(b[j:i+run], words[r.IntN(len(words))])
			}
		}
		i += run
	}
	return b
}

// fileSizes are the sizes of the plain files: around each block size the
// tests use, and several blocks.
var fileSizes = []int{
	0, 1, 100, 4095, 4096, 4097, 3*4096 + 5,
	131071, 131072, 131073, 3*131072 + 77,
	1048575, 1048576, 1048577, 2*1048576 + 12345,
}

// oddNames are file names with bytes a shell or a parser would trip on.
var oddNames = []string{
	"sp ace", "new\nline", "tab\tbed", "\x01ctrl", "\xff\xfehigh", "\x80", "ünïcödé",
	"-dash", "a:b", "back\\slash", "#hash", "~tilde", "*?[", "'q\"", strings.Repeat("L", 255),
}

// shared holds the test tree and its images, made once for all tests in
// a directory TestMain removes.
var shared struct {
	sync.Mutex
	dir    string
	src    *source
	failed bool
	images map[string]string // mksquashfs arguments -> image path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// sharedSource returns the test tree, made on first use.
func sharedSource(tb testing.TB) *source {
	tb.Helper()
	needMksquashfs(tb)
	shared.Lock()
	defer shared.Unlock()
	if shared.failed {
		tb.Fatal("making the test tree failed in an earlier test")
	}
	if shared.src == nil {
		shared.failed = true
		dir, err := os.MkdirTemp("", "squashfs-test-")
		must(tb, err)
		shared.dir = dir
		shared.images = map[string]string{}
		shared.src = buildSource(tb, filepath.Join(dir, "src"))
		shared.failed = false
	}
	return shared.src
}

// sharedImage returns the image of the test tree mksquashfs makes with
// args, made on first use.
func sharedImage(tb testing.TB, args ...string) (*source, []byte) {
	tb.Helper()
	src := sharedSource(tb)
	key := strings.Join(args, "\x00")
	shared.Lock()
	path, ok := shared.images[key]
	if !ok {
		path = filepath.Join(shared.dir, fmt.Sprintf("image-%d.sqfs", len(shared.images)))
		mksquashfsTo(tb, path, src.dir, src.pseudo, args...)
		shared.images[key] = path
	}
	shared.Unlock()
	raw, err := os.ReadFile(path)
	must(tb, err)
	return src, raw
}

// buildSource makes the test tree at root.
func buildSource(tb testing.TB, root string) *source {
	tb.Helper()
	s := &source{dir: root, want: map[string]*want{}}
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	mkdir := func(p string) { must(os.MkdirAll(filepath.Join(root, p), 0o755)) }
	write := func(p string, b []byte) { must(os.WriteFile(filepath.Join(root, p), b, 0o644)) }
	for _, d := range []string{"files", "sparse", "links/sub", "symlinks", "empty/a", "empty/b/c", "big", "odd", "modes", "dev", "xattr"} {
		mkdir(d)
	}
	for i, n := range fileSizes {
		write(fmt.Sprintf("files/size-%d", n), content(uint64(i), n))
	}
	// The same content twice, large and small: mksquashfs stores it once.
	write("files/dup-a", content(100, 300000))
	write("files/dup-b", content(100, 300000))
	write("files/dup-small-a", content(101, 777))
	write("files/dup-small-b", content(101, 777))
	write("files/zeros", make([]byte, 3*131072+5))

	sparse := func(p string, size int64, at ...int64) {
		f, err := os.Create(filepath.Join(root, p))
		must(err)
		must(f.Truncate(size))
		for i, off := range at {
			_, err := f.WriteAt(content(uint64(200+i), 10000), off)
			must(err)
		}
		must(f.Close())
	}
	sparse("sparse/holes", 5<<20, 1<<20, 3<<20+500000)
	sparse("sparse/all-hole", 3<<20+5)
	sparse("sparse/hole-end", 2<<20, 0)
	sparse("sparse/hole-start", 2<<20+4000, 2<<20-6000)

	write("links/orig", content(300, 5000))
	must(os.Link(filepath.Join(root, "links/orig"), filepath.Join(root, "links/hard1")))
	must(os.Link(filepath.Join(root, "links/orig"), filepath.Join(root, "links/sub/hard2")))

	for name, target := range map[string]string{
		"short": "a", "rel": "../files/size-1", "dangling": "nowhere/x", "abs": "/etc/passwd",
		"long": strings.Repeat("abcdefgh/", 454) + "123456789", // 4095 bytes
	} {
		must(os.Symlink(target, filepath.Join(root, "symlinks", name)))
	}

	for i := 0; i < 3000; i++ {
		name := fmt.Sprintf("big/entry-%04d-%s", i, strings.Repeat("x", i%40))
		switch {
		case i%100 == 0:
			mkdir(name)
		case i%77 == 0:
			must(os.Symlink(fmt.Sprintf("target-%d", i), filepath.Join(root, name)))
		default:
			write(name, content(uint64(1000+i), i%50))
		}
	}

	for i, n := range oddNames {
		write("odd/"+n, content(uint64(400+i), i*3))
	}
	must(unix.Mkfifo(filepath.Join(root, "odd/fifo"), 0o640))

	for name, mode := range map[string]os.FileMode{
		"setuid": 0o755 | os.ModeSetuid, "setgid": 0o755 | os.ModeSetgid,
		"both": 0o711 | os.ModeSetuid | os.ModeSetgid, "none": 0, "ro": 0o444, "owned": 0o600,
	} {
		write("modes/"+name, []byte(name))
		must(os.Chmod(filepath.Join(root, "modes", name), mode))
	}
	mkdir("modes/sticky")
	must(os.Chmod(filepath.Join(root, "modes/sticky"), 0o777|os.ModeSticky))
	mkdir("modes/setgid-dir")
	must(os.Chmod(filepath.Join(root, "modes/setgid-dir"), 0o2775|os.ModeSetgid))

	write("xattr/a", []byte("a"))
	write("xattr/b", []byte("b"))
	if err := unix.Setxattr(filepath.Join(root, "xattr/a"), "user.probe", []byte("1"), 0); err == nil {
		s.xattrs = true
		big := content(500, 3000)
		set := func(p, name string, v []byte) {
			if err := unix.Setxattr(filepath.Join(root, p), name, v, 0); err != nil && !strings.HasPrefix(name, "user.") {
				return // trusted.* and security.* need privileges
			} else if err != nil {
				tb.Fatalf("setting %s on %s: %v", name, p, err)
			}
		}
		set("xattr/a", "user.big", big)
		set("xattr/b", "user.big", big) // the same value: stored once, out of line
		set("xattr/b", "user.empty", nil)
		set("xattr/b", "user.other", []byte("other"))
		set("xattr", "user.dir", []byte("on a directory"))
		set("files/size-1048577", "user.onbig", []byte("x"))
		set("xattr/a", "trusted.t", []byte("trusted"))
		set("xattr/a", "security.s", []byte("security"))
	}

	// Devices, a socket, a fifo and owners other than ours come from
	// pseudo definitions, which need no privileges.
	s.pseudo = []string{
		"dev/null C 1000000000 0666 0 0 1 3",
		"dev/big-c C 1000000001 0600 12 34 300 70000",
		"dev/blk B 1000000002 0640 0 6 8 1",
		"dev/fifo I 1000000003 0644 1000 1000 f",
		"dev/sock I 1000000004 0755 0 0 s",
		"modes/owned M 1200000000 0640 1234 5678",
		"modes/nobody-owned F 1200000001 4755 4294967294 65534 echo nobody",
	}
	setTimes(tb, root)
	s.want = walkSource(tb, root)
	s.addPseudo(tb)
	return s
}

// setTimes gives every path a distinct modification time, directories
// last so that their times stay.
func setTimes(tb testing.TB, root string) {
	var paths []string
	must(tb, filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		paths = append(paths, p)
		return err
	}))
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	for _, p := range paths {
		h := fnv.New32a()
		h.Write([]byte(p))
		t := unix.NsecToTimespec(int64(1e9+h.Sum32()%1e8) * 1e9)
		must(tb, unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{t, t}, unix.AT_SYMLINK_NOFOLLOW))
	}
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// walkSource records what the image of root must hold.
func walkSource(tb testing.TB, root string) map[string]*want {
	m := map[string]*want{}
	must(tb, filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			rel = ""
		}
		st := fi.Sys().(*syscall.Stat_t)
		w := &want{
			perm: uint16(st.Mode & 0o7777), uid: st.Uid, gid: st.Gid,
			mtime: uint32(st.Mtim.Sec), nlink: uint32(st.Nlink), srcIno: st.Ino,
		}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			w.typ = Dir
		case syscall.S_IFREG:
			w.typ, w.size = File, uint64(st.Size)
			if w.data, err = os.ReadFile(p); err != nil {
				return err
			}
		case syscall.S_IFLNK:
			w.typ, w.size = Symlink, uint64(st.Size)
			if w.target, err = os.Readlink(p); err != nil {
				return err
			}
		case syscall.S_IFIFO:
			w.typ = Fifo
		default:
			return fmt.Errorf("%s: unexpected mode %o", p, st.Mode)
		}
		w.xattrs = sourceXattrs(tb, p)
		m[filepath.ToSlash(rel)] = w
		return nil
	}))
	return m
}

// sourceXattrs returns the xattrs of p that mksquashfs stores.
func sourceXattrs(tb testing.TB, p string) []Xattr {
	buf := make([]byte, 1<<16)
	n, err := unix.Llistxattr(p, buf)
	if errors.Is(err, unix.ENOTSUP) || n <= 0 {
		return nil
	}
	must(tb, err)
	var xs []Xattr
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if !strings.HasPrefix(name, "user.") && !strings.HasPrefix(name, "trusted.") && !strings.HasPrefix(name, "security.") {
			continue
		}
		v := make([]byte, 1<<16)
		k, err := unix.Lgetxattr(p, name, v)
		must(tb, err)
		xs = append(xs, Xattr{Name: name, Value: v[:k]})
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i].Name < xs[j].Name })
	return xs
}

// newEncodeDev encodes a device number as Linux's new_encode_dev does.
func newEncodeDev(major, minor uint32) uint32 {
	return minor&0xff | major<<8 | (minor&^0xff)<<12
}

// addPseudo records what the pseudo definitions add and change.
func (s *source) addPseudo(tb testing.TB) {
	s.want["dev/null"] = &want{typ: CharDev, perm: 0o666, mtime: 1000000000, nlink: 1, rdev: newEncodeDev(1, 3)}
	s.want["dev/big-c"] = &want{typ: CharDev, perm: 0o600, uid: 12, gid: 34, mtime: 1000000001, nlink: 1, rdev: newEncodeDev(300, 70000)}
	s.want["dev/blk"] = &want{typ: BlockDev, perm: 0o640, gid: 6, mtime: 1000000002, nlink: 1, rdev: newEncodeDev(8, 1)}
	s.want["dev/fifo"] = &want{typ: Fifo, perm: 0o644, uid: 1000, gid: 1000, mtime: 1000000003, nlink: 1}
	s.want["dev/sock"] = &want{typ: Socket, perm: 0o755, mtime: 1000000004, nlink: 1}
	o := s.want["modes/owned"]
	o.perm, o.uid, o.gid, o.mtime = 0o640, 1234, 5678, 1200000000
	s.want["modes/nobody-owned"] = &want{typ: File, perm: 0o4755, uid: 4294967294, gid: 65534, mtime: 1200000001, nlink: 1,
		data: []byte("nobody\n"), size: 7}
}

// children returns the sorted names directly under dir in s.want.
func (s *source) children(dir string) []string {
	var out []string
	for p := range s.want {
		if p == "" {
			continue
		}
		parent, name := "", p
		if i := strings.LastIndexByte(p, '/'); i >= 0 {
			parent, name = p[:i], p[i+1:]
		}
		if parent == dir {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// sameBytes reports where a and b first differ.
func sameBytes(a, b []byte) error {
	if bytes.Equal(a, b) {
		return nil
	}
	for i := 0; i < min(len(a), len(b)); i++ {
		if a[i] != b[i] {
			return fmt.Errorf("differ at byte %d of %d/%d: %#x vs %#x", i, len(a), len(b), a[i], b[i])
		}
	}
	return fmt.Errorf("lengths differ: %d vs %d", len(a), len(b))
}
