package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// ociEnv is the environment of one launch run: its own cache and TMPDIR.
type ociEnv struct {
	cache, tmp string
}

func newOCIEnv(t *testing.T) ociEnv {
	t.Helper()
	e := ociEnv{cache: filepath.Join(t.TempDir(), "cache"), tmp: t.TempDir()}
	return e
}

func (e ociEnv) env(extra ...string) []string {
	return append([]string{"LAUNCH_CACHEDIR=" + e.cache, "TMPDIR=" + e.tmp}, extra...)
}

func (e ociEnv) launch(t *testing.T, args ...string) result {
	t.Helper()
	return launchWith(t, runOpts{Env: e.env(), Timeout: 5 * time.Minute}, args...)
}

// checkBusybox runs the checks every converted busyboxOCI must pass.
func checkBusybox(t *testing.T, img string, src v1.Image) {
	t.Helper()
	r := launch(t, "exec", img, "/bin/sh", "-c", `cat /etc/layer2; test -e /etc/removed && echo removed-still-there; echo "$GREETING|$FROM_IMAGE|$PATH"`)
	wantOK(t, r)
	if want := "from layer 2\nhello \"oci\" $HOME|image|/bin:/usr/bin\n"; r.Stdout != want {
		t.Errorf("exec: got %q, want %q (layers, whiteout, Env)", r.Stdout, want)
	}
	r = launchWith(t, runOpts{Env: []string{"FROM_IMAGE=host"}}, "exec", img, "/bin/sh", "-c", `echo "$FROM_IMAGE"`)
	if wantOK(t, r); r.Stdout != "host\n" {
		t.Errorf("the host's FROM_IMAGE should win over the image's: %q", r.Stdout)
	}
	r = launch(t, "run", img)
	if wantOK(t, r); r.Stdout != "entry:default-arg::/work\n" {
		t.Errorf("run (ENTRYPOINT + CMD in WORKDIR): got %q", r.Stdout)
	}
	r = launch(t, "run", img, "a", "b c")
	if wantOK(t, r); r.Stdout != "entry:a:b c:/work\n" {
		t.Errorf("run with arguments (they replace CMD): got %q", r.Stdout)
	}
	r = launch(t, "inspect", "--json", img)
	wantOK(t, r)
	var got struct {
		Data struct {
			Attributes struct {
				Labels    map[string]string `json:"labels"`
				OCIConfig json.RawMessage   `json:"oci-config"`
			} `json:"attributes"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil {
		t.Fatalf("inspect --json: %v: %s", err, r.Stdout)
	}
	if got.Data.Attributes.Labels["org.example.test"] != "yes" {
		t.Errorf("labels: %v", got.Data.Attributes.Labels)
	}
	raw, err := src.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var want, have any
	json.Unmarshal(raw, &want)
	json.Unmarshal(got.Data.Attributes.OCIConfig, &have)
	if !reflect.DeepEqual(want, have) {
		t.Errorf("inspect --json oci-config:\n got %s\nwant %s", got.Data.Attributes.OCIConfig, raw)
	}
}

// TestOCIPullRegistry pushes an image to a real registry, pulls it with
// launch pull (output name chosen as Apptainer does) and runs it; a second
// pull comes from the cache.
func TestOCIPullRegistry(t *testing.T) {
	reg := startRegistry(t)
	src := busyboxOCI(t)
	ref := reg.push(t, "test/busybox:v1", src)
	e := newOCIEnv(t)
	work := t.TempDir()
	r := launchWith(t, runOpts{Dir: work, Env: e.env(), Timeout: 5 * time.Minute}, "pull", "--nohttps", "docker://"+ref)
	wantOK(t, r)
	for _, step := range []string{"Fetching docker://" + ref, "Layer 1/2", "Layer 2/2", "Packing"} {
		if !strings.Contains(r.Stderr, step) {
			t.Errorf("pull's progress lines do not mention %q:\n%s", step, r.Stderr)
		}
	}
	img := filepath.Join(work, "busybox_v1.sif")
	checkBusybox(t, img, src)
	noTempLeft(t, e.tmp)

	// Again, by digest, into a named file: from the cache.
	d, err := src.Digest()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "again.sif")
	r = e.launch(t, "pull", "--nohttps", out, "docker://"+reg.Host+"/test/busybox@"+d.String())
	wantOK(t, r)
	if !strings.Contains(r.Stderr, "Using cached SIF") {
		t.Errorf("second pull should use the cache:\n%s", r.Stderr)
	}
	a, _ := os.ReadFile(img)
	b, _ := os.ReadFile(out)
	if !bytes.Equal(a, b) {
		t.Error("the SIF from the cache differs from the first one")
	}
	// -q: nothing on stderr.
	r = e.launch(t, "pull", "-q", "--force", "--nohttps", out, "docker://"+ref)
	if wantOK(t, r); r.Stderr != "" {
		t.Errorf("pull -q printed %q", r.Stderr)
	}
	// Existing output without --force.
	wantFatal(t, e.launch(t, "pull", "-q", "--nohttps", out, "docker://"+ref), out, "already exists")

	// cache list shows the blobs and the one SIF; clean empties it.
	r = e.launch(t, "cache", "list")
	wantOK(t, r)
	if n := strings.Count(r.Stdout, "\nsif "); n != 1 || strings.Count(r.Stdout, "\nblob ") != 2 {
		t.Errorf("cache list: want 2 blobs and 1 sif:\n%s", r.Stdout)
	}
	if fi, err := os.Stat(e.cache); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("cache directory mode: %v %v, want 0700", fi.Mode(), err)
	}
	wantOK(t, e.launch(t, "cache", "clean"))
	r = e.launch(t, "cache", "list")
	if wantOK(t, r); !strings.Contains(r.Stdout, "0 entries") {
		t.Errorf("after clean: %s", r.Stdout)
	}
	// --disable-cache leaves the cache empty.
	wantOK(t, e.launch(t, "pull", "-q", "--disable-cache", "--nohttps", filepath.Join(t.TempDir(), "nc.sif"), "docker://"+ref))
	r = e.launch(t, "cache", "list")
	if wantOK(t, r); !strings.Contains(r.Stdout, "0 entries") {
		t.Errorf("--disable-cache filled the cache: %s", r.Stdout)
	}
}

// TestOCISources builds from an OCI layout, an OCI archive and a docker
// archive of the same image.
func TestOCISources(t *testing.T) {
	src := busyboxOCI(t)
	dir := t.TempDir()
	lay := filepath.Join(dir, "layout")
	writeLayout(t, lay, "v1", src)
	archive := filepath.Join(dir, "image.oci.tar")
	tarDir(t, lay, archive)
	dockerArchive := filepath.Join(dir, "image.docker.tar")
	tag, _ := name.NewTag("example.org/test/busybox:v1")
	if err := tarball.WriteToFile(dockerArchive, tag, src); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"oci:" + lay + ":v1", "oci:" + lay, "oci-archive:" + archive, "docker-archive:" + dockerArchive} {
		t.Run(strings.SplitN(s, ":", 2)[0], func(t *testing.T) {
			e := newOCIEnv(t)
			out := filepath.Join(t.TempDir(), "img.sif")
			wantOK(t, e.launch(t, "build", out, s))
			checkBusybox(t, out, src)
			noTempLeft(t, e.tmp)
		})
	}
	// build from an existing SIF repacks it, keeping its metadata files.
	e0 := newOCIEnv(t)
	first := filepath.Join(t.TempDir(), "first.sif")
	wantOK(t, e0.launch(t, "build", "-q", first, "oci:"+lay+":v1"))
	again := filepath.Join(t.TempDir(), "again.sif")
	wantOK(t, e0.launch(t, "build", "-q", again, first))
	r := launch(t, "run", again)
	if wantOK(t, r); r.Stdout != "entry:default-arg::/work\n" {
		t.Errorf("run of a SIF rebuilt from a SIF: %q", r.Stdout)
	}
	noTempLeft(t, e0.tmp)

	// pull takes them too and names the output after the file and tag.
	e := newOCIEnv(t)
	work := t.TempDir()
	wantOK(t, launchWith(t, runOpts{Dir: work, Env: e.env()}, "pull", "-q", "oci:"+lay+":v1"))
	if _, err := os.Stat(filepath.Join(work, "layout_v1.sif")); err != nil {
		t.Errorf("pull oci:DIR:v1 should write layout_v1.sif: %v", err)
	}

	// --compression reaches the helper's pull and build (zstd: id 6).
	zpull := filepath.Join(t.TempDir(), "z.sif")
	wantOK(t, launchWith(t, runOpts{Env: e.env()}, "pull", "-q", "--compression", "zstd", zpull, "oci:"+lay+":v1"))
	zbuild := filepath.Join(t.TempDir(), "z.sif")
	wantOK(t, launchWith(t, runOpts{Env: e.env()}, "build", "-q", "--compression", "zstd", zbuild, "oci:"+lay+":v1"))
	for _, z := range []string{zpull, zbuild} {
		if got := squashCompression(t, z); got != 6 {
			t.Errorf("%s: compression id %d, want 6 (zstd)", z, got)
		}
		checkBusybox(t, z, src)
	}
}

// TestOCIConcurrentPull: eight pulls of the same image at the same moment
// with one cache all succeed and leave one cache entry.
func TestOCIConcurrentPull(t *testing.T) {
	reg := memRegistry(t)
	ref := reg.push(t, "test/busybox:v1", busyboxOCI(t))
	e := newOCIEnv(t)
	out := t.TempDir()
	const n = 8
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = launchWith(t, runOpts{Env: e.env(), Timeout: 5 * time.Minute},
				"pull", "--nohttps", filepath.Join(out, "img"+string(rune('0'+i))+".sif"), "docker://"+ref)
		}(i)
	}
	wg.Wait()
	var first []byte
	for i, r := range results {
		if r.Code != 0 {
			t.Errorf("pull %d: exit %d: %s", i, r.Code, r.Stderr)
			continue
		}
		b, err := os.ReadFile(filepath.Join(out, "img"+string(rune('0'+i))+".sif"))
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = b
		} else if !bytes.Equal(first, b) {
			t.Errorf("pull %d wrote a different SIF", i)
		}
	}
	r := e.launch(t, "cache", "list", "--type", "sif")
	wantOK(t, r)
	if strings.Count(r.Stdout, "\nsif ") != 1 {
		t.Errorf("want exactly one cached SIF:\n%s", r.Stdout)
	}
	ents, _ := os.ReadDir(filepath.Join(e.cache, "sif", "sha256"))
	if len(ents) != 2 || !strings.HasSuffix(ents[0].Name(), ".sif") || ents[1].Name() != ents[0].Name()+".digest" {
		t.Errorf("cache sif directory holds %v, want one SIF and its digest record", ents)
	}
	wantOK(t, launch(t, "exec", filepath.Join(out, "img0.sif"), "/bin/true"))
	noTempLeft(t, e.tmp)
}

// TestOCICorruptCacheBlob: a cached blob that no longer matches its digest
// is fetched again, never used.
func TestOCICorruptCacheBlob(t *testing.T) {
	reg := memRegistry(t)
	ref := reg.push(t, "test/busybox:v1", busyboxOCI(t))
	e := newOCIEnv(t)
	wantOK(t, e.launch(t, "pull", "-q", "--nohttps", filepath.Join(t.TempDir(), "a.sif"), "docker://"+ref))
	blobs, _ := filepath.Glob(filepath.Join(e.cache, "blobs", "sha256", "*"))
	if len(blobs) == 0 {
		t.Fatal("no cached blobs")
	}
	for _, b := range blobs {
		os.WriteFile(b, []byte("garbage"), 0o600)
	}
	wantOK(t, e.launch(t, "cache", "clean", "--type", "sif"))
	out := filepath.Join(t.TempDir(), "b.sif")
	r := e.launch(t, "pull", "--nohttps", out, "docker://"+ref)
	wantOK(t, r)
	if !strings.Contains(r.Stderr, "corrupt") {
		t.Errorf("pull should say it refetches the corrupt blobs:\n%s", r.Stderr)
	}
	r = launch(t, "exec", out, "/bin/cat", "/etc/layer2")
	if wantOK(t, r); r.Stdout != "from layer 2\n" {
		t.Errorf("got %q", r.Stdout)
	}
	for _, b := range blobs {
		if fi, err := os.Stat(b); err != nil || fi.Size() == int64(len("garbage")) {
			t.Errorf("blob %s not replaced", b)
		}
	}
}

// authRegistry is go-containerregistry's registry behind basic auth
// (user u, password p), for the authentication tests: distribution needs
// a bcrypt htpasswd file for the same.
func authRegistry(t *testing.T) string {
	t.Helper()
	inner := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "u" || p != "p" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// TestOCIAuth: wrong credentials are one clear error; right ones from the
// flags or LAUNCH_DOCKER_USERNAME/PASSWORD work.
func TestOCIAuth(t *testing.T) {
	host := authRegistry(t)
	ref, _ := name.ParseReference(host+"/test/busybox:v1", name.Insecure)
	src := busyboxOCI(t)
	if err := remote.Write(ref, src, remote.WithAuth(&authn.Basic{Username: "u", Password: "p"})); err != nil {
		t.Fatal(err)
	}
	e := newOCIEnv(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "img.sif")
	wantFatal(t, e.launch(t, "pull", "-q", "--nohttps", out, "docker://"+ref.String()), "authentication", host)
	wantFatal(t, e.launch(t, "pull", "-q", "--nohttps", "--docker-username", "u", "--docker-password", "wrong", out, "docker://"+ref.String()), "authentication")
	wantOK(t, e.launch(t, "pull", "-q", "--nohttps", "--docker-username", "u", "--docker-password", "p", out, "docker://"+ref.String()))
	out2 := filepath.Join(dir, "img2.sif")
	r := launchWith(t, runOpts{Env: e.env("LAUNCH_DOCKER_USERNAME=u", "LAUNCH_DOCKER_PASSWORD=p")},
		"pull", "-q", "--disable-cache", "--nohttps", out2, "docker://"+ref.String())
	wantOK(t, r)
	checkBusybox(t, out2, src)
	// The command line wins over the variables.
	out3 := filepath.Join(dir, "img3.sif")
	wantOK(t, launchWith(t, runOpts{Env: e.env("LAUNCH_DOCKER_USERNAME=u", "LAUNCH_DOCKER_PASSWORD=wrong")},
		"pull", "-q", "--disable-cache", "--nohttps", "--docker-password", "p", out3, "docker://"+ref.String()))

	// exec, run and shell take the same options for a docker:// image, as
	// Apptainer's do, and Apptainer's variables for them.
	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{
		{"options", nil, []string{"--docker-username", "u", "--docker-password", "p"}},
		{"APPTAINER_DOCKER_USERNAME/PASSWORD", []string{"APPTAINER_DOCKER_USERNAME=u", "APPTAINER_DOCKER_PASSWORD=p"}, nil},
	} {
		t.Run("exec with "+tc.name, func(t *testing.T) {
			ee := newOCIEnv(t) // a cache of its own: the image is fetched
			wantFatal(t, launchWith(t, runOpts{Env: ee.env()}, "exec", "--nohttps", "docker://"+ref.String(), "true"), "authentication")
			r := launchWith(t, runOpts{Env: ee.env(tc.env...)}, append(append([]string{"exec", "--nohttps"}, tc.args...), "docker://"+ref.String(), "echo", "in")...)
			if wantOK(t, r); r.Stdout != "in\n" {
				t.Errorf("exec docker:// with %s: %q", tc.name, r.Stdout)
			}
		})
	}
}

// TestOCIDebian: the real Debian tree (scripts/test's debootstrap cache) as
// a one-layer OCI image pushed to a real registry, pulled with launch pull
// and run. As an unprivileged user the files only root can read are left
// out of the layer (the test builds it, not launch).
func TestOCIDebian(t *testing.T) {
	tree := debianTree(t)
	reg := startRegistry(t)
	lay := layerOf(t, tarTree(t, tree, !isRoot()))
	src := mkImage(t, imageConfig{Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, Cmd: []string{"/bin/bash"}}, lay)
	ref := reg.push(t, "debian/bookworm:minbase", src)
	e := newOCIEnv(t)
	out := filepath.Join(t.TempDir(), "debian.sif")
	wantOK(t, launchWith(t, runOpts{Env: e.env(), Timeout: 10 * time.Minute}, "pull", "-q", "--nohttps", out, "docker://"+ref))
	want, err := os.ReadFile(filepath.Join(tree, "etc", "debian_version"))
	if err != nil {
		t.Fatal(err)
	}
	r := launch(t, "exec", out, "cat", "/etc/debian_version")
	if wantOK(t, r); r.Stdout != string(want) {
		t.Errorf("/etc/debian_version: got %q, want %q", r.Stdout, want)
	}
	r = launch(t, "exec", out, "/bin/bash", "-c", "dpkg-query -W -f '${Status}' bash")
	if wantOK(t, r); r.Stdout != "install ok installed" {
		t.Errorf("dpkg-query bash: %q", r.Stdout)
	}
	noTempLeft(t, e.tmp)
}

// TestOCIPullNameDir: pull's --name (Apptainer's hidden option, which
// Nextflow passes for every image) wins over OUT, and --dir (or
// APPTAINER_PULLDIR) holds the output, whichever names it; an existing
// output without --force is one clear error.
func TestOCIPullNameDir(t *testing.T) {
	src := busyboxOCI(t)
	lay := filepath.Join(t.TempDir(), "layout")
	writeLayout(t, lay, "v1", src)
	ref := "oci:" + lay + ":v1"
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want string // relative to the working directory
	}{
		{name: "name", args: []string{"--name", "nf-tmp.img"}, want: "nf-tmp.img"},
		{name: "name over OUT", args: []string{"--name", "named.sif", "out.sif"}, want: "named.sif"},
		{name: "dir", args: []string{"--dir", "imgs"}, want: "imgs/layout_v1.sif"},
		{name: "dir and OUT", args: []string{"--dir", "imgs", "out.sif"}, want: "imgs/out.sif"},
		{name: "dir and name", args: []string{"--dir", "imgs", "--name", "n.sif"}, want: "imgs/n.sif"},
		{name: "APPTAINER_PULLDIR", env: []string{"APPTAINER_PULLDIR=imgs"}, want: "imgs/layout_v1.sif"},
		{name: "LAUNCH_DIR over APPTAINER_PULLDIR", env: []string{"APPTAINER_PULLDIR=other", "LAUNCH_DIR=imgs"}, want: "imgs/layout_v1.sif"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newOCIEnv(t)
			work := t.TempDir()
			if err := os.Mkdir(filepath.Join(work, "imgs"), 0o755); err != nil {
				t.Fatal(err)
			}
			o := runOpts{Dir: work, Env: append(e.env(), tc.env...)}
			wantOK(t, launchWith(t, o, append(append([]string{"pull", "-q"}, tc.args...), ref)...))
			got := filepath.Join(work, tc.want)
			checkBusybox(t, got, src)
			ents, _ := filepath.Glob(filepath.Join(work, "*"))
			sub, _ := filepath.Glob(filepath.Join(work, "imgs", "*"))
			if len(ents)+len(sub) != 2 {
				t.Errorf("the working directory holds %q and imgs/ %q: want %s alone (and imgs/)", ents, sub, tc.want)
			}
			// Again without --force: the output is there.
			r := launchWith(t, o, append(append([]string{"pull", "-q"}, tc.args...), ref)...)
			wantFatal(t, r, filepath.Base(tc.want))
			noTempLeft(t, e.tmp)
		})
	}
}
