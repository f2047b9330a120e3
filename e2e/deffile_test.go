package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// writeDef writes a definition file into dir and returns its path.
func writeDef(t *testing.T, dir, text string) string {
	t.Helper()
	p := filepath.Join(dir, "app.def")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// defEnv runs launch in dir with its own TMPDIR, so a test can check that
// a build leaves nothing there.
func defLaunch(t *testing.T, dir, tmp string, args ...string) result {
	t.Helper()
	return launchWith(t, runOpts{Dir: dir, Env: []string{"TMPDIR=" + tmp, "LAUNCH_TMPDIR=" + tmp}, Timeout: 3 * time.Minute}, args...)
}

// TestDefLocalimage builds from a busybox SIF with every section and checks
// the image with run, exec and inspect.
func TestDefLocalimage(t *testing.T) {
	base := buildSIF(t, busyboxTree(t))
	dir, tmp := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data.txt"), []byte("host data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	def := writeDef(t, dir, `Bootstrap: localimage
From: `+base+`

%arguments
    greet=hello

%setup
    echo from-setup > "$LAUNCH_ROOTFS/setup.txt"
    test "$APPTAINER_ROOTFS" = "$LAUNCH_ROOTFS"

%files
    data.txt /opt/data.txt
    *.txt /opt/glob/

%post
    echo "export FROMPOST={{ who }}" >> $APPTAINER_ENVIRONMENT
    echo "postlabel from-post" >> $LAUNCH_LABELS
    cat /setup.txt > /post.txt

%environment
    export GREETING={{ greet }}

%runscript
    echo "run:$GREETING:$FROMPOST:$*"

%labels
    maintainer hpc team

%help
    This is the help.

%test
    test -f /post.txt
    echo test-ran
`)
	out := filepath.Join(dir, "app.sif")
	r := defLaunch(t, dir, tmp, "build", "-q", "--build-arg", "who=user", out, def)
	wantOK(t, r)
	if !strings.Contains(r.Stdout, "test-ran") {
		t.Errorf("%%test did not run: %q", r.Stdout)
	}
	r = launch(t, "run", out, "a", "b")
	if wantOK(t, r); r.Stdout != "run:hello:user:a b\n" {
		t.Errorf("run: %q", r.Stdout)
	}
	r = launch(t, "exec", out, "/bin/sh", "-c", "cat /post.txt /opt/data.txt /opt/glob/data.txt; echo $GREETING")
	if wantOK(t, r); r.Stdout != "from-setup\nhost data\nhost data\nhello\n" {
		t.Errorf("exec: %q", r.Stdout)
	}
	r = launch(t, "inspect", "--labels", out)
	wantOK(t, r)
	for _, w := range []string{"maintainer: hpc team", "postlabel: from-post", "org.label-schema.schema-version: 1.0", "deffile.bootstrap: localimage"} {
		if !strings.Contains(r.Stdout, w) {
			t.Errorf("inspect --labels lacks %q: %s", w, r.Stdout)
		}
	}
	r = launch(t, "inspect", "--deffile", out)
	if wantOK(t, r); !strings.Contains(r.Stdout, "export FROMPOST=user") || !strings.Contains(r.Stdout, "Bootstrap: localimage") {
		t.Errorf("inspect --deffile should show the templated definition: %s", r.Stdout)
	}
	r = launch(t, "inspect", "--runscript", out)
	if wantOK(t, r); !strings.HasPrefix(r.Stdout, "#!/bin/sh\n\n") {
		t.Errorf("inspect --runscript: %q", r.Stdout)
	}
	r = launch(t, "exec", out, "cat", "/.singularity.d/runscript.help")
	if wantOK(t, r); !strings.Contains(r.Stdout, "This is the help.") {
		t.Errorf("runscript.help: %q", r.Stdout)
	}
	noTempLeft(t, tmp)
}

// TestDefMultiStageSandbox: %files from an earlier stage, only the last
// stage becomes the image; --sandbox makes a directory; -T (--notest) skips a
// failing %test; a failing %test fails the build and leaves nothing.
func TestDefMultiStageSandbox(t *testing.T) {
	base := buildSIF(t, busyboxTree(t))
	dir, tmp := t.TempDir(), t.TempDir()
	text := `Bootstrap: localimage
From: ` + base + `
Stage: one

%post
    echo built-in-one > /artifact

Bootstrap: localimage
From: ` + base + `
Stage: two

%files from one
    /artifact /opt/artifact

%test
    exit 3
`
	def := writeDef(t, dir, text)
	sb := filepath.Join(dir, "sandbox")
	r := defLaunch(t, dir, tmp, "build", "-q", "--sandbox", "-T", sb, def) // -T: Apptainer's --notest
	wantOK(t, r)
	if b, err := os.ReadFile(filepath.Join(sb, "opt", "artifact")); err != nil || string(b) != "built-in-one\n" {
		t.Errorf("artifact from stage one: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(sb, "artifact")); err == nil {
		t.Errorf("the last stage has stage one's /artifact: only %%files from copies it")
	}
	out := filepath.Join(dir, "packed.sif")
	wantOK(t, defLaunch(t, dir, tmp, "build", "-q", out, sb))
	r = launch(t, "exec", out, "cat", "/opt/artifact")
	if wantOK(t, r); r.Stdout != "built-in-one\n" {
		t.Errorf("packed sandbox: %q", r.Stdout)
	}

	failed := filepath.Join(dir, "failed.sif")
	r = defLaunch(t, dir, tmp, "build", "-q", failed, def)
	if r.Code != 255 || !strings.Contains(lastLine(r.Stderr), "FATAL:") || !strings.Contains(r.Stderr, "%test failed (exit status 3)") {
		t.Errorf("a failing %%test should fail the build: %d %q", r.Code, r.Stderr)
	}
	if _, err := os.Stat(failed); err == nil {
		t.Errorf("a failed build left %s", failed)
	}
	noTempLeft(t, tmp)
}

// lastLine is the last line of s.
func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndex(s, "\n")+1:]
}

// TestDefBadInput: each bad definition is one FATAL line, exit 255, and
// nothing is left behind.
func TestDefBadInput(t *testing.T) {
	base := buildSIF(t, busyboxTree(t))
	head := "Bootstrap: localimage\nFrom: " + base + "\n"
	cases := []struct {
		name, text string
		args       []string
		want       []string
	}{
		{"unknown section", head + "%bogus\n    x\n", nil, []string{"app.def:3", "bogus"}},
		{"unknown keyword", "Bootstrap: localimage\nFrom: " + base + "\nFlavour: x\n", nil, []string{"app.def:3", "Flavour"}},
		{"missing From", "Bootstrap: localimage\n", nil, []string{"app.def:1", "From"}},
		{"unreadable files source", head + "%files\n    /nonexistent/file /x\n", nil, []string{"app.def:4", "/nonexistent/file"}},
		{"stage used before it exists", head + "%files from later\n    /a /b\nBootstrap: localimage\nFrom: " + base + "\nStage: later\n", nil, []string{"later"}},
		{"unset template variable", head + "%post\n    echo {{ NOPE }}\n", nil, []string{"NOPE"}},
		{"unsupported agent", "Bootstrap: library\nFrom: alpine\n", nil, []string{"library"}},
		{"unused build arg", head, []string{"--build-arg", "X=1"}, []string{"X"}},
		{"app without a name", head + "%apprun\n    echo\n", nil, []string{"app.def:3", "%apprun needs an app name"}},
	}
	if !isRoot() {
		cases = append(cases, struct {
			name, text string
			args       []string
			want       []string
		}{"debootstrap as a user", "Bootstrap: debootstrap\nOSVersion: bookworm\nMirrorURL: http://deb.debian.org/debian\n", nil, []string{"debootstrap", "--fakeroot"}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, tmp := t.TempDir(), t.TempDir()
			def := writeDef(t, dir, c.text)
			out := filepath.Join(dir, "out.sif")
			args := append(append([]string{"build", "-q"}, c.args...), out, def)
			wantFatal(t, defLaunch(t, dir, tmp, args...), c.want...)
			wantEntries(t, dir, "app.def")
			noTempLeft(t, tmp)
		})
	}
	t.Run("not text", func(t *testing.T) {
		dir, tmp := t.TempDir(), t.TempDir()
		def := filepath.Join(dir, "app.def")
		if err := os.WriteFile(def, []byte("Bootstrap: scratch\n\x00\x01\x02"), 0o644); err != nil {
			t.Fatal(err)
		}
		wantFatal(t, defLaunch(t, dir, tmp, "build", "-q", filepath.Join(dir, "o.sif"), def), "app.def")
		wantEntries(t, dir, "app.def")
	})
	t.Run("post fails", func(t *testing.T) {
		dir, tmp := t.TempDir(), t.TempDir()
		def := writeDef(t, dir, head+"\n%post\n    true\n    exit 7\n")
		r := defLaunch(t, dir, tmp, "build", "-q", filepath.Join(dir, "o.sif"), def)
		if r.Code != 255 || !strings.HasPrefix(lastLine(r.Stderr), "FATAL: ") || !strings.Contains(lastLine(r.Stderr), "app.def:4: %post failed (exit status 7); last command: + exit 7") {
			t.Errorf("%%post failure: %d %q", r.Code, r.Stderr)
		}
		wantEntries(t, dir, "app.def")
		noTempLeft(t, tmp)
	})
}

// TestDefOCIArchive bootstraps from a docker-archive and an oci-archive.
func TestDefOCIArchive(t *testing.T) {
	src := busyboxOCI(t)
	dir := t.TempDir()
	lay := filepath.Join(dir, "layout")
	writeLayout(t, lay, "v1", src)
	ociArchive := filepath.Join(dir, "image.oci.tar")
	tarDir(t, lay, ociArchive)
	dockerArchive := filepath.Join(dir, "image.docker.tar")
	tag, _ := name.NewTag("example.org/test/busybox:v1")
	if err := tarball.WriteToFile(dockerArchive, tag, src); err != nil {
		t.Fatal(err)
	}
	for agent, from := range map[string]string{"docker-archive": dockerArchive, "oci-archive": ociArchive} {
		t.Run(agent, func(t *testing.T) {
			e := newOCIEnv(t)
			work := t.TempDir()
			def := writeDef(t, work, "Bootstrap: "+agent+"\nFrom: "+from+"\n\n%post\n    echo added > /etc/added\n")
			out := filepath.Join(work, "img.sif")
			wantOK(t, launchWith(t, runOpts{Dir: work, Env: e.env(), Timeout: 3 * time.Minute}, "build", "-q", out, def))
			r := launch(t, "exec", out, "/bin/sh", "-c", "cat /etc/added /etc/layer2; echo $FROM_IMAGE")
			if wantOK(t, r); r.Stdout != "added\nfrom layer 2\nimage\n" {
				t.Errorf("exec: %q", r.Stdout)
			}
			r = launch(t, "run", out)
			if wantOK(t, r); r.Stdout != "entry:default-arg::/work\n" {
				t.Errorf("run keeps the image's runscript: %q", r.Stdout)
			}
			noTempLeft(t, e.tmp)
		})
	}
}
