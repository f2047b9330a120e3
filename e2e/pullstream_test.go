package e2e

// Streaming conversion of OCI images (launch pull/build of oci:, docker://):
// the flattened layers go into tar2sqfs with no temporary tree, and the
// image is the same tree the extraction path (the fallback) makes.

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sylabs/sif/v2/pkg/sif"
)

// tent is one entry of a test layer.
type tent struct {
	name, data, link string
	typ              byte
	mode             int64
	uid, gid         int
}

// rawTar is a layer tar of the entries, in order.
func rawTar(t *testing.T, es ...tent) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			Linkname: e.link, ModTime: time.Unix(1700000000, 0)}
		switch e.typ {
		case 0:
			h.Typeflag = tar.TypeReg
			fallthrough
		case tar.TypeReg:
			h.Size = int64(len(e.data))
		case tar.TypeChar, tar.TypeBlock:
			h.Devmajor, h.Devminor = 1, 3
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if e.typ == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte(e.data))
		}
	}
	tw.Close()
	return b.Bytes()
}

// streamImage is a two-layer image with what a flattening must get right:
// whiteouts of a file and of a directory, an opaque directory, a file
// replaced, hard links (within a layer and from the upper layer to the
// lower), symbolic links (one pointing out of the image), set-uid and
// set-gid files, a fifo, device nodes, a file of zeros, owners.
func streamImage(t *testing.T) v1.Image {
	t.Helper()
	zeros := strings.Repeat("\x00", 65536) + "end"
	l1 := rawTar(t,
		tent{name: "etc/", typ: tar.TypeDir},
		tent{name: "etc/keep", data: "keep\n", uid: 1234, gid: 5678},
		tent{name: "etc/replaced", data: "lower\n"},
		tent{name: "etc/removed", data: "lower\n"},
		tent{name: "bin/", typ: tar.TypeDir},
		tent{name: "bin/suid", data: "#!/bin/sh\n", mode: 0o4755},
		tent{name: "bin/sgid", data: "#!/bin/sh\n", mode: 0o2711},
		tent{name: "data/", typ: tar.TypeDir, mode: 0o750, uid: 1234, gid: 5678},
		tent{name: "data/a", data: "hardlinked\n", mode: 0o640},
		tent{name: "data/b", typ: tar.TypeLink, link: "data/a"},
		tent{name: "data/fifo", typ: tar.TypeFifo, mode: 0o600},
		tent{name: "data/zeros", data: zeros},
		tent{name: "opq/", typ: tar.TypeDir},
		tent{name: "opq/old", data: "old\n"},
		tent{name: "gone/", typ: tar.TypeDir},
		tent{name: "gone/x", data: "x\n"},
		tent{name: "lnk", typ: tar.TypeSymlink, link: "etc/keep"},
		tent{name: "abs", typ: tar.TypeSymlink, link: "/etc/keep"},
		tent{name: "out", typ: tar.TypeSymlink, link: "../../../../etc/passwd"},
		tent{name: "dev/", typ: tar.TypeDir},
		tent{name: "dev/mydev", typ: tar.TypeChar, mode: 0o666},
	)
	l2 := rawTar(t,
		tent{name: "etc/.wh.removed"},
		tent{name: "etc/replaced", data: "upper\n", mode: 0o600},
		tent{name: "etc/newdir/", typ: tar.TypeDir, mode: 0o700},
		tent{name: "etc/newdir/f", data: "new\n"},
		tent{name: "opq/.wh..wh..opq"},
		tent{name: "opq/new", data: "new\n"},
		tent{name: ".wh.gone"},
		tent{name: "data/c", typ: tar.TypeLink, link: "data/a"},
		tent{name: "lnk2", typ: tar.TypeSymlink, link: "bin/suid"},
		tent{name: "dev/blk", typ: tar.TypeBlock, mode: 0o660},
	)
	return mkImage(t, streamConfig, layerOf(t, l1), layerOf(t, l2))
}

var streamConfig = imageConfig{
	Env:        []string{"PATH=/bin", "FROM_IMAGE=image"},
	Cmd:        []string{"/bin/true"},
	WorkingDir: "/work/dir",
	Labels:     map[string]string{"org.example.test": "yes"},
}

// pullBoth pulls the image of the layout lay streamed and extracted (without
// tar2sqfs), checks that -v says which path was taken (and that stream has
// in it), compares the two trees and returns the SIFs and the listing and
// contents of the streamed one.
func pullBoth(t *testing.T, e ociEnv, lay, stream string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	streamed, extracted := filepath.Join(dir, "s.sif"), filepath.Join(dir, "x.sif")
	r := e.launch(t, "-v", "pull", streamed, "oci:"+lay+":v1")
	wantOK(t, r)
	if !strings.Contains(r.Stderr, "Streaming the layers into") || !strings.Contains(r.Stderr, stream) || strings.Contains(r.Stderr, "temporary tree for mksquashfs") {
		t.Errorf("-v should say the layers were streamed (%s): %s", stream, r.Stderr)
	}
	r = launchWith(t, runOpts{Env: append(noTar2sqfs(t), e.env()...), Timeout: 5 * time.Minute}, "-v", "pull", extracted, "oci:"+lay+":v1")
	wantOK(t, r)
	if !strings.Contains(r.Stderr, "/nonexistent/tar2sqfs not found") || !strings.Contains(r.Stderr, "extracting the layers to a temporary tree") {
		t.Errorf("-v should say tar2sqfs is missing and the layers are extracted: %s", r.Stderr)
	}
	noTempLeft(t, e.tmp)
	diffLists(t, "unsquashfs -lln", normList(t, streamed), normList(t, extracted))
	sc, xc := contents(t, extract(t, streamed)), contents(t, extract(t, extracted))
	var sk, xk []string
	for k, v := range sc {
		sk = append(sk, fmt.Sprintf("%s=%q", k, v))
	}
	for k, v := range xc {
		xk = append(xk, fmt.Sprintf("%s=%q", k, v))
	}
	sort.Strings(sk)
	sort.Strings(xk)
	diffLists(t, "file contents and hard links", sk, xk)
	return streamed, extracted
}

// noTar2sqfs is the environment that makes launch go without tar2sqfs.
func noTar2sqfs(t *testing.T) []string {
	return withConf(t, "[tools]\ntar2sqfs = \"/nonexistent/tar2sqfs\"\n")
}

// squashOffset is where the SquashFS of a SIF starts.
func squashOffset(t *testing.T, img string) int64 {
	t.Helper()
	f, err := sif.LoadContainerFromPath(img, sif.OptLoadWithFlag(os.O_RDONLY))
	if err != nil {
		t.Fatal(err)
	}
	defer f.UnloadContainer()
	d, err := f.GetDescriptor(sif.WithPartitionType(sif.PartPrimSys))
	if err != nil {
		t.Fatal(err)
	}
	return d.Offset()
}

// normList is squashList with what the extraction path does not fix left
// out: the time of directories and fifos (the time they were made on disk),
// the sizes of directories (SquashFS directory tables differ between
// writers), and the times of the metadata written at build time.
func normList(t *testing.T, img string) []string {
	t.Helper()
	var out []string
	for _, l := range squashList(t, img) {
		f := strings.Fields(l)
		if len(f) < 6 {
			out = append(out, l)
			continue
		}
		mode, owner, size, p := f[0], f[1], f[2], strings.Join(f[5:], " ")
		when := f[3] + " " + f[4]
		built := strings.Contains(p, "/.singularity.d") || strings.HasPrefix(p, "squashfs-root/work") ||
			(f[3] != "2023-11-14" && mode[0] != 'd')
		if mode[0] == 'd' {
			size = "-"
		}
		if mode[0] == 'd' || mode[0] == 'p' || built {
			when = "-"
		}
		out = append(out, strings.Join([]string{mode, owner, size, when, p}, " "))
	}
	sort.Strings(out)
	return out
}

// extract unpacks the SquashFS of img into a new directory.
func extract(t *testing.T, img string) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "x")
	out, err := exec.Command("unsquashfs", "-no-progress", "-o", strconv.FormatInt(squashOffset(t, img), 10), "-d", d, img).CombinedOutput()
	if err != nil {
		t.Fatalf("unsquashfs %s: %v: %s", img, err, out)
	}
	return d
}

// contents maps each regular file under root (labels.json left out: its
// build date differs) to its content and the names it shares an inode with.
func contents(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	inodes := map[uint64][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == ".singularity.d/labels.json" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		m[rel] = string(b)
		fi, _ := d.Info()
		ino := fi.Sys().(*syscall.Stat_t).Ino
		inodes[ino] = append(inodes[ino], rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, names := range inodes {
		if len(names) > 1 {
			for _, n := range names {
				m[n+" (links)"] = strings.Join(names, ",")
			}
		}
	}
	return m
}

func diffLists(t *testing.T, what string, a, b []string) {
	t.Helper()
	if strings.Join(a, "\n") == strings.Join(b, "\n") {
		return
	}
	ma := map[string]bool{}
	for _, l := range a {
		ma[l] = true
	}
	mb := map[string]bool{}
	for _, l := range b {
		mb[l] = true
	}
	for _, l := range a {
		if !mb[l] {
			t.Errorf("%s: only streamed: %s", what, l)
		}
	}
	for _, l := range b {
		if !ma[l] {
			t.Errorf("%s: only extracted: %s", what, l)
		}
	}
}

// TestPullStream: the streaming path is taken (-v says so) and makes the
// same tree as the extraction path, which is taken when tar2sqfs is missing
// (-v says so) or when the layers hold what only a tree on disk reproduces.
func TestPullStream(t *testing.T) {
	if _, err := exec.LookPath("tar2sqfs"); err != nil {
		t.Fatal("tar2sqfs not found: scripts/install-deps installs squashfs-tools-ng")
	}
	lay := filepath.Join(t.TempDir(), "layout")
	writeLayout(t, lay, "v1", streamImage(t))
	e := newOCIEnv(t)
	streamed, extracted := pullBoth(t, e, lay, "(no temporary tree)")
	xl := normList(t, extracted)
	sc := contents(t, extract(t, streamed))

	// And the tree is the right one, not only the same.
	var fields []string
	for _, l := range squashList(t, streamed) {
		fields = append(fields, strings.Join(strings.Fields(l), " "))
	}
	list := strings.Join(fields, "\n") + "\n"
	for _, gone := range []string{"etc/removed", "opq/old", "gone", "dev/mydev", "dev/blk"} {
		if strings.Contains(list, "squashfs-root/"+gone+"\n") {
			t.Errorf("%s should not be in the image:\n%s", gone, list)
		}
	}
	owner := "0/0"
	if isRoot() {
		owner = "1234/5678"
	}
	for _, want := range []string{
		"-rwxr-xr-x 0/0 10 2023-11-14 22:13 squashfs-root/bin/suid\n",
		"-rwx--x--x 0/0 10 2023-11-14 22:13 squashfs-root/bin/sgid\n",
		"-rw-r--r-- " + owner + " 5 2023-11-14 22:13 squashfs-root/etc/keep\n",
		"-rw------- 0/0 6 2023-11-14 22:13 squashfs-root/etc/replaced\n",
		"squashfs-root/out -> ../../../../etc/passwd\n",
		"squashfs-root/opq/new\n", "squashfs-root/etc/newdir/f\n", "squashfs-root/work/dir\n",
		"squashfs-root/.singularity.d/env/10-docker2singularity.sh\n",
		"squashfs-root/.singularity.d/actions/exec\n",
	} {
		if !strings.Contains(list, want) {
			t.Errorf("the streamed image lacks %q:\n%s", want, list)
		}
	}
	if bad := privilegedLines(squashList(t, streamed)); len(bad) > 0 {
		t.Errorf("set-uid, set-gid or device entries in the image: %v", bad)
	}
	if sc["data/a (links)"] != "data/a,data/b,data/c" {
		t.Errorf("data/a, data/b and data/c should be one inode: %q", sc["data/a (links)"])
	}
	if sc["etc/replaced"] != "upper\n" || sc["data/zeros"] != strings.Repeat("\x00", 65536)+"end" {
		t.Errorf("wrong content: replaced %q, zeros %d bytes", sc["etc/replaced"], len(sc["data/zeros"]))
	}
	if !strings.Contains(sc[".singularity.d/env/10-docker2singularity.sh"], "FROM_IMAGE") {
		t.Errorf("the image environment script is missing: %q", sc[".singularity.d/env/10-docker2singularity.sh"])
	}
	r := launch(t, "inspect", "--labels", streamed)
	if wantOK(t, r); !strings.Contains(r.Stdout, "org.example.test") || !strings.Contains(r.Stdout, "org.label-schema.build-arch") {
		t.Errorf("inspect --labels of the streamed image: %s", r.Stdout)
	}

	t.Run("tar2sqfs fails", func(t *testing.T) {
		// A tar2sqfs that fails on its own: the extraction path makes the
		// image, with a warning saying so.
		bad := filepath.Join(t.TempDir(), "failing-tar2sqfs")
		if err := os.WriteFile(bad, []byte("#!/bin/sh\ncat >/dev/null\necho 'cannot pack this' >&2\nexit 3\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "f.sif")
		r := launchWith(t, runOpts{Env: append(withConf(t, fmt.Sprintf("[tools]\ntar2sqfs = %q\n", bad)), e.env()...), Timeout: 5 * time.Minute},
			"pull", out, "oci:"+lay+":v1")
		wantOK(t, r)
		if !strings.Contains(r.Stderr, "tar2sqfs failed (exit status 3): cannot pack this; extracting the layers") {
			t.Errorf("a warning should say tar2sqfs failed and the layers are extracted: %q", r.Stderr)
		}
		diffLists(t, "unsquashfs -lln (tar2sqfs failed)", normList(t, out), xl)
		noTempLeft(t, e.tmp)
	})

	t.Run("one layer", func(t *testing.T) {
		// One layer is read once, streamed as it is applied.
		lay := filepath.Join(t.TempDir(), "layout")
		writeLayout(t, lay, "v1", mkImage(t, streamConfig, layerOf(t, rawTar(t,
			tent{name: "etc/", typ: tar.TypeDir},
			tent{name: "etc/keep", data: "keep\n", uid: 1234, gid: 5678},
			tent{name: "bin/suid", data: "#!/bin/sh\n", mode: 0o4755},
			tent{name: "data/a", data: "hardlinked\n", mode: 0o640},
			tent{name: "data/b", typ: tar.TypeLink, link: "data/a"},
			tent{name: "data/fifo", typ: tar.TypeFifo, mode: 0o600},
			tent{name: "lnk", typ: tar.TypeSymlink, link: "../../etc/keep"},
			tent{name: "dev/mydev", typ: tar.TypeChar, mode: 0o666},
			tent{name: ".singularity.d/", typ: tar.TypeDir},
			tent{name: ".singularity.d/runscript", data: "#!/bin/sh\necho image's own\n", mode: 0o755},
			tent{name: ".singularity.d/labels.json", data: `{"from.layer": "yes"}`},
		))))
		streamed, _ := pullBoth(t, e, lay, ", one read of the layer)")
		list := strings.Join(squashList(t, streamed), "\n")
		if !strings.Contains(list, "squashfs-root/data/b") || strings.Contains(list, "mydev") || len(privilegedLines(squashList(t, streamed))) > 0 {
			t.Errorf("streamed one-layer image:\n%s", list)
		}
	})

	t.Run("one layer read twice", func(t *testing.T) {
		// A name given twice in the layer: what was streamed first is
		// not the file; the layer is read again, in two passes.
		lay := filepath.Join(t.TempDir(), "layout")
		writeLayout(t, lay, "v1", mkImage(t, streamConfig, layerOf(t, rawTar(t,
			tent{name: "f", data: "first\n"}, tent{name: "g", data: "g\n"}, tent{name: "f", data: "second\n"}))))
		e := newOCIEnv(t)
		out := filepath.Join(t.TempDir(), "t.sif")
		r := e.launch(t, "-v", "pull", out, "oci:"+lay+":v1")
		wantOK(t, r)
		if !strings.Contains(r.Stderr, "Reading the layer again (f is removed or replaced by a later entry)") {
			t.Errorf("-v should say the layer is read again: %s", r.Stderr)
		}
		if c := contents(t, extract(t, out)); c["f"] != "second\n" {
			t.Errorf("f: %q, want the second", c["f"])
		}
		noTempLeft(t, e.tmp)
	})

	t.Run("not streamable", func(t *testing.T) {
		// A layer entry below a symbolic link of a lower layer is put where
		// the link leads: the tree on disk does that, the stream does not.
		img := mkImage(t, imageConfig{},
			layerOf(t, rawTar(t, tent{name: "usr/", typ: tar.TypeDir}, tent{name: "usr/lib/", typ: tar.TypeDir},
				tent{name: "lib", typ: tar.TypeSymlink, link: "usr/lib"})),
			layerOf(t, rawTar(t, tent{name: "lib/x", data: "x\n"})))
		lay := filepath.Join(t.TempDir(), "layout")
		writeLayout(t, lay, "v1", img)
		out := filepath.Join(t.TempDir(), "l.sif")
		r := e.launch(t, "-v", "pull", out, "oci:"+lay+":v1")
		wantOK(t, r)
		if !strings.Contains(r.Stderr, "Not streaming the layers (/lib is reached through the symbolic link lib)") {
			t.Errorf("-v should say why the layers are not streamed: %s", r.Stderr)
		}
		if l := strings.Join(squashList(t, out), "\n"); !strings.Contains(l, "squashfs-root/usr/lib/x") {
			t.Errorf("lib/x should be usr/lib/x: %s", l)
		}
		noTempLeft(t, e.tmp)
	})
}

// TestPullStreamKilled SIGKILLs launch pull while tar2sqfs reads the stream:
// tar2sqfs dies with it, and nothing is left in the output directory, in
// TMPDIR or in the cache (of a docker:// pull).
func TestPullStreamKilled(t *testing.T) {
	if _, err := exec.LookPath("tar2sqfs"); err != nil {
		t.Fatal("tar2sqfs not found: scripts/install-deps installs squashfs-tools-ng")
	}
	big := rawTar(t, tent{name: "big", data: strings.Repeat("\x00", 16<<20)}, tent{name: "small", data: "x"})
	img := mkImage(t, imageConfig{}, layerOf(t, big))
	lay := filepath.Join(t.TempDir(), "layout")
	writeLayout(t, lay, "v1", img)
	reg := memRegistry(t)
	ref := reg.push(t, "test/big:v1", img)

	for _, src := range []string{"oci:" + lay + ":v1", "docker://" + ref} {
		t.Run(strings.SplitN(src, ":", 2)[0], func(t *testing.T) {
			gdir := t.TempDir()
			tool, mark := filepath.Join(gdir, "gated-tar2sqfs"), filepath.Join(gdir, "mark")
			// Reads some of the stream, then stops reading: the stream is
			// cut in the middle when launch is killed.
			script := fmt.Sprintf("#!/bin/sh\nhead -c 200000 >/dev/null\necho $$ >%q && mv %q %q\nexec sleep 600\n", mark+".new", mark+".new", mark)
			if err := os.WriteFile(tool, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			conf := withConf(t, fmt.Sprintf("[tools]\ntar2sqfs = %q\n", tool))
			e := newOCIEnv(t)
			dir := t.TempDir()
			flags := []string{"pull", "-q"}
			if strings.HasPrefix(src, "docker:") {
				flags = append(flags, "--nohttps")
			}
			cmd, helper := startGated(t, append(conf, e.env()...), mark, append(flags, filepath.Join(dir, "out.sif"), src)...)
			killAndCheck(t, cmd, helper)
			wantEntries(t, dir)
			noTempLeft(t, e.tmp)
			var left []string
			filepath.WalkDir(e.cache, func(p string, d fs.DirEntry, err error) error {
				// Blobs downloaded whole, and lock files (kept by design:
				// an flock on a file that stays), are no leftovers.
				if err == nil && !d.IsDir() && !strings.Contains(p, "/blob") && !strings.Contains(p, "/locks/") {
					left = append(left, p)
				}
				return nil
			})
			if len(left) > 0 {
				t.Errorf("left in the cache by the killed pull: %v", left)
			}
			// The next pull makes the image.
			wantOK(t, e.launch(t, append(flags, filepath.Join(dir, "out.sif"), src)...))
			wantEntries(t, dir, "out.sif")
			noTempLeft(t, e.tmp)
		})
	}
}
