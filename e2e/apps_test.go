package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// appsDef is a definition file with two SCIF apps, foo (every %app*
// section) and bar (a runscript and a failing test), over a busybox base.
const appsDef = `Bootstrap: localimage
From: BASE

%post
    echo post-ran > /post.txt

%runscript
    echo main-run

%help
    Main help.

%test
    echo main-test

%appinstall foo
    echo "installed in $(pwd) as $SCIF_APPNAME" > installed.txt
    printf '#!/bin/sh\necho foo-tool\n' > bin/footool
    chmod +x bin/footool

%apprun foo
    echo "foo-run:$SCIF_APPNAME:$*"

%appenv foo
    export FOOVAR=foo-env

%applabels foo
    owner foo-team

%apphelp foo
    Foo help.

%appfiles foo
    data.txt
    data.txt share/copy.txt

%appstart foo
    echo foo-start

%apptest foo
    test -f "$SCIF_APPROOT/installed.txt"
    echo foo-test-ok

%apprun bar
    echo "bar-run:$SCIF_APPNAME"

%apptest bar
    exit 7
`

// buildApps builds appsDef into a SIF (sandbox: a directory) and returns
// its path.
func buildApps(t *testing.T, sandbox bool) string {
	t.Helper()
	base := buildSIF(t, busyboxTree(t))
	dir, tmp := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data.txt"), []byte("host data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	def := writeDef(t, dir, strings.Replace(appsDef, "BASE", base, 1))
	out := filepath.Join(dir, "apps.sif")
	args := []string{"build", "-q", "--notest"}
	if sandbox {
		out = filepath.Join(dir, "apps")
		args = append(args, "--sandbox")
	}
	r := defLaunch(t, dir, tmp, append(args, out, def)...)
	wantOK(t, r)
	noTempLeft(t, tmp)
	return out
}

// TestAppsRun: run, exec and shell with --app get the app's runscript, its
// environment (%appenv, bin on PATH, the SCIF_ variables, the APPNAME
// variables); without --app the image's own runscript runs and only the
// global SCIF_APP*_NAME variables are set; an unknown app is one FATAL line
// naming the apps there are.
func TestAppsRun(t *testing.T) {
	img := buildApps(t, false)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--app", "foo", img, "a", "b"}, "foo-run:foo:a b\n"},
		{[]string{"run", "--app", "bar", img}, "bar-run:bar\n"},
		{[]string{"run", img}, "main-run\n"},
		{[]string{"exec", "--app", "foo", img, "/bin/sh", "-c",
			`echo $FOOVAR $SCIF_APPNAME $SCIF_APPROOT $SCIF_APPDATA $SCIF_APPINPUT $SCIF_APPOUTPUT $LAUNCH_APPNAME $APPTAINER_APPNAME $SINGULARITY_APPNAME`},
			"foo-env foo /scif/apps/foo /scif/data/foo /scif/data/foo/input /scif/data/foo/output foo foo foo\n"},
		{[]string{"exec", "--app", "foo", img, "footool"}, "foo-tool\n"},
		{[]string{"exec", "--app", "foo", img, "/bin/sh", "-c", `cat "$SCIF_APPROOT/installed.txt" "$SCIF_APPROOT/data.txt" "$SCIF_APPROOT/share/copy.txt"`},
			"installed in /scif/apps/foo as foo\nhost data\nhost data\n"},
		{[]string{"exec", "--app", "bar", img, "/bin/sh", "-c", `echo "[$FOOVAR]$SCIF_APPNAME"`}, "[]bar\n"},
		{[]string{"exec", img, "/bin/sh", "-c", `echo "[$FOOVAR][$SCIF_APPNAME]$SCIF_APPROOT_foo $SCIF_APPRUN_bar"`},
			"[][]/scif/apps/foo /scif/apps/bar/scif/runscript\n"},
	} {
		r := launch(t, c.args...)
		if wantOK(t, r); r.Stdout != c.want {
			t.Errorf("%v: stdout %q, want %q", c.args, r.Stdout, c.want)
		}
	}
	r := launchWith(t, runOpts{Stdin: "echo $SCIF_APPNAME:$FOOVAR\nexit\n"}, "shell", "--app", "foo", img)
	if wantOK(t, r); !strings.Contains(r.Stdout, "foo:foo-env") {
		t.Errorf("shell --app foo: %q", r.Stdout)
	}
	for _, cmd := range []string{"run", "exec", "shell", "test", "inspect", "run-help"} {
		args := []string{cmd, "--app", "nope", img}
		if cmd == "exec" {
			args = append(args, "true")
		}
		wantFatal(t, launch(t, args...), "nope", "bar, foo")
	}
	wantFatal(t, launch(t, "run", "--app", "../foo", img), `--app "../foo" is not an app name`)
}

// TestAppsTestAndHelp: launch test runs the image's %test or the app's
// %apptest with its exit status, an image without a test passes with a
// message; run-help shows %help, %apphelp or Apptainer's line for none.
func TestAppsTestAndHelp(t *testing.T) {
	img := buildApps(t, false)
	r := launch(t, "test", img)
	if wantOK(t, r); r.Stdout != "main-test\n" {
		t.Errorf("test: %q", r.Stdout)
	}
	r = launch(t, "test", "--app", "foo", img)
	if wantOK(t, r); r.Stdout != "foo-test-ok\n" {
		t.Errorf("test --app foo: %q", r.Stdout)
	}
	if r = launch(t, "test", "--app", "bar", img); r.Code != 7 {
		t.Errorf("test --app bar: exit %d, want 7 (%s)", r.Code, r.Stderr)
	}
	plain := buildSIF(t, busyboxTree(t))
	r = launch(t, "test", plain)
	if wantOK(t, r); !strings.Contains(r.Stderr, "No test script found in container") {
		t.Errorf("test of an image without one: %q %q", r.Stdout, r.Stderr)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run-help", img}, "    Main help.\n"},
		{[]string{"run-help", "--app", "foo", img}, "    Foo help.\n"},
		{[]string{"run-help", "--app", "bar", img}, "No help sections were defined for this image\n"},
		{[]string{"run-help", plain}, "No help sections were defined for this image\n"},
	} {
		r := launch(t, c.args...)
		if wantOK(t, r); r.Stdout != c.want {
			t.Errorf("%v: %q, want %q", c.args, r.Stdout, c.want)
		}
	}
}

// TestAppsInspect: inspect's flags for the image and for an app, as text
// and as Apptainer's JSON.
func TestAppsInspect(t *testing.T) {
	img := buildApps(t, false)
	for _, c := range []struct {
		args []string
		want []string
		not  []string
	}{
		{[]string{"--list-apps"}, []string{"bar\nfoo\n"}, []string{"maintainer"}},
		{[]string{"--app", "foo"}, []string{"SCIF_APP_NAME: foo\n", "owner: foo-team\n"}, nil},
		{[]string{"--app", "foo", "-r"}, []string{"#!/bin/sh\n\n", `echo "foo-run:$SCIF_APPNAME:$*"`}, []string{"main-run"}},
		{[]string{"--app", "foo", "-s"}, []string{"echo foo-start"}, nil},
		{[]string{"--app", "foo", "-t"}, []string{"echo foo-test-ok"}, nil},
		{[]string{"--app", "foo", "-H"}, []string{"Foo help."}, nil},
		{[]string{"--app", "foo", "-e"}, []string{"=== /scif/apps/foo/scif/env/90-environment.sh ===\n", "export FOOVAR=foo-env"}, nil},
		{[]string{"-H"}, []string{"Main help."}, nil},
		{[]string{"-t"}, []string{"echo main-test"}, nil},
		{[]string{"-s"}, []string{"#!/bin/sh"}, nil},
		{[]string{"-d"}, []string{"%appinstall foo", "Bootstrap: localimage"}, nil},
		{[]string{"-l"}, []string{"org.label-schema.schema-version: 1.0"}, []string{"owner"}},
	} {
		r := launch(t, append(append([]string{"inspect"}, c.args...), img)...)
		wantOK(t, r)
		for _, w := range c.want {
			if !strings.Contains(r.Stdout, w) {
				t.Errorf("inspect %v lacks %q:\n%s", c.args, w, r.Stdout)
			}
		}
		for _, w := range c.not {
			if strings.Contains(r.Stdout, w) {
				t.Errorf("inspect %v has %q:\n%s", c.args, w, r.Stdout)
			}
		}
	}
	type appAttrs struct {
		Labels      map[string]string `json:"labels"`
		Runscript   string            `json:"runscript"`
		Environment map[string]string `json:"environment"`
		Helpfile    string            `json:"helpfile"`
		Test        string            `json:"test"`
	}
	var js struct {
		Data struct {
			Attributes struct {
				Labels      map[string]string    `json:"labels"`
				Helpfile    string               `json:"helpfile"`
				Environment map[string]string    `json:"environment"`
				Apps        map[string]*appAttrs `json:"apps"`
			} `json:"attributes"`
		} `json:"data"`
		Type string `json:"type"`
	}
	r := launch(t, "inspect", "--json", "--list-apps", "-H", "-e", img)
	wantOK(t, r)
	if err := json.Unmarshal([]byte(r.Stdout), &js); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, r.Stdout)
	}
	a := js.Data.Attributes
	if js.Type != "container" || a.Helpfile != "    Main help." || len(a.Apps) != 2 || a.Apps["foo"] == nil ||
		a.Apps["foo"].Labels["owner"] != "foo-team" || a.Apps["bar"].Test != "#!/bin/sh\n\n    exit 7" ||
		a.Apps["foo"].Environment["/scif/apps/foo/scif/env/90-environment.sh"] != "    export FOOVAR=foo-env" ||
		!strings.Contains(a.Environment["/.singularity.d/env/94-appsbase.sh"], "SCIF_APPROOT_foo") {
		t.Errorf("inspect --json --list-apps -H -e:\n%s", r.Stdout)
	}
	js.Data.Attributes.Apps = nil
	r = launch(t, "inspect", "--json", "--app", "foo", "-r", img)
	wantOK(t, r)
	if err := json.Unmarshal([]byte(r.Stdout), &js); err != nil {
		t.Fatalf("inspect --json --app: %v\n%s", err, r.Stdout)
	}
	if f := js.Data.Attributes.Apps["foo"]; f == nil || !strings.Contains(f.Runscript, "foo-run") || len(js.Data.Attributes.Apps) != 1 {
		t.Errorf("inspect --json --app foo -r:\n%s", r.Stdout)
	}
	// The SIF's inspect metadata object, which Apptainer's inspect reads,
	// holds the apps too.
	_, objs := sifObjects(t, img)
	var md struct {
		Data struct {
			Attributes struct {
				Apps map[string]*appAttrs `json:"apps"`
			} `json:"attributes"`
		} `json:"data"`
	}
	if err := json.Unmarshal(objs["inspect-metadata.json"], &md); err != nil || md.Data.Attributes.Apps["foo"] == nil ||
		md.Data.Attributes.Apps["foo"].Labels["SCIF_APP_NAME"] != "foo" || md.Data.Attributes.Apps["bar"] == nil ||
		!strings.Contains(md.Data.Attributes.Apps["foo"].Runscript, "foo-run") {
		t.Errorf("inspect-metadata.json apps: %v %s", err, objs["inspect-metadata.json"])
	}
}

// TestAppsLayout: a sandbox built with apps has the /scif tree Apptainer
// lays out, with its files' contents and modes.
func TestAppsLayout(t *testing.T) {
	sb := buildApps(t, true)
	for _, c := range []struct {
		path string
		mode os.FileMode // 0: a directory
		has  string
	}{
		{"scif/apps/foo/bin", 0, ""}, {"scif/apps/foo/lib", 0, ""}, {"scif/apps/foo/scif/env", 0, ""},
		{"scif/data/foo/input", 0, ""}, {"scif/data/foo/output", 0, ""},
		{"scif/data/bar/input", 0, ""}, {"scif/apps/bar/lib", 0, ""},
		{"scif/apps/foo/scif/env/01-base.sh", 0o755, "SCIF_APPDATA='/scif/data/foo'"},
		{"scif/apps/foo/scif/env/90-environment.sh", 0o755, "export FOOVAR=foo-env"},
		{"scif/apps/foo/scif/runscript", 0o755, "#!/bin/sh\n\n    echo \"foo-run"},
		{"scif/apps/foo/scif/startscript", 0o755, "echo foo-start"},
		{"scif/apps/foo/scif/test", 0o755, "echo foo-test-ok"},
		{"scif/apps/foo/scif/runscript.help", 0o644, "Foo help."},
		{"scif/apps/foo/scif/labels.json", 0o644, `"owner": "foo-team"`},
		{"scif/apps/bar/scif/labels.json", 0o644, `"SCIF_APP_NAME": "bar"`},
		{"scif/apps/foo/installed.txt", 0o644, "installed in /scif/apps/foo"},
		{"scif/apps/foo/data.txt", 0o644, "host data"},
		{".singularity.d/env/94-appsbase.sh", 0o755, "export SCIF_APPRUN_bar='/scif/apps/bar/scif/runscript'"},
		{".singularity.d/env/95-apps.sh", 0o755, "SINGULARITY_APPNAME"},
	} {
		p := filepath.Join(sb, c.path)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		if c.mode == 0 {
			if !fi.IsDir() {
				t.Errorf("%s is not a directory (%v)", c.path, fi.Mode())
			}
			continue
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm() != c.mode {
			t.Errorf("%s: mode %v, want a file of %v", c.path, fi.Mode(), c.mode)
		}
		if b, _ := os.ReadFile(p); !strings.Contains(string(b), c.has) {
			t.Errorf("%s lacks %q:\n%s", c.path, c.has, b)
		}
	}
	for _, absent := range []string{"scif/apps/bar/scif/env/90-environment.sh", "scif/apps/bar/scif/runscript.help", "scif/apps/bar/scif/startscript"} {
		if _, err := os.Lstat(filepath.Join(sb, absent)); err == nil {
			t.Errorf("%s exists; bar has no such section", absent)
		}
	}
	// The sandbox runs its apps like the SIF.
	r := launch(t, "run", "--app", "foo", sb, "x")
	if wantOK(t, r); r.Stdout != "foo-run:foo:x\n" {
		t.Errorf("run --app foo on the sandbox: %q", r.Stdout)
	}
	// An image with apps and no 95-apps.sh of its own: launch sets the
	// app up itself, after the image's scripts.
	if err := os.Remove(filepath.Join(sb, ".singularity.d/env/95-apps.sh")); err != nil {
		t.Fatal(err)
	}
	r = launch(t, "exec", "--app", "foo", sb, "/bin/sh", "-c", `echo "$FOOVAR:$SCIF_APPROOT:$SCIF_APPOUTPUT:$(footool)"`)
	if wantOK(t, r); r.Stdout != "foo-env:/scif/apps/foo:/scif/data/foo/output:foo-tool\n" {
		t.Errorf("exec --app foo without 95-apps.sh: %q", r.Stdout)
	}
}

// TestAppsBadInput: a failing %appinstall and a missing %appfiles source
// fail the build with one line naming the section, leaving nothing.
func TestAppsBadInput(t *testing.T) {
	base := buildSIF(t, busyboxTree(t))
	for _, c := range []struct {
		name, text string
		want       []string
	}{
		{"install fails", "%appinstall foo\n    false\n", []string{"app.def:4: %appinstall failed (exit status 1)", "false"}},
		{"appfiles missing", "%appfiles foo\n    /nonexistent/file\n", []string{"app.def:5: %appfiles foo: cannot read /nonexistent/file"}},
		{"no app name", "%apprun\n    true\n", []string{"app.def:4:", "%apprun needs an app name"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, tmp := t.TempDir(), t.TempDir()
			def := writeDef(t, dir, "Bootstrap: localimage\nFrom: "+base+"\n\n"+c.text)
			out := filepath.Join(dir, "x.sif")
			r := defLaunch(t, dir, tmp, "build", "-q", out, def)
			// A script's own trace comes before the FATAL line.
			if last := lastLine(r.Stderr); r.Code != 255 || !strings.HasPrefix(last, "FATAL: ") {
				t.Errorf("exit %d, last line %q; want 255 and a FATAL line", r.Code, last)
			}
			for _, w := range c.want {
				if !strings.Contains(lastLine(r.Stderr), w) {
					t.Errorf("FATAL line %q lacks %q", lastLine(r.Stderr), w)
				}
			}
			if _, err := os.Lstat(out); err == nil {
				t.Errorf("a failed build left %s", out)
			}
			noTempLeft(t, tmp)
		})
	}
}

// TestAppsBuildFakerootShort: `launch build -f` is --fakeroot, as in
// Apptainer: %post and %appinstall (the same script) run as uid 0.
func TestAppsBuildFakerootShort(t *testing.T) {
	base := buildSIF(t, busyboxTree(t))
	dir, tmp := t.TempDir(), t.TempDir()
	def := writeDef(t, dir, "Bootstrap: localimage\nFrom: "+base+"\n\n%post\n    id -u > /marker\n%appinstall foo\n    id -u > uid\n")
	out := filepath.Join(dir, "out.sif")
	wantOK(t, defLaunch(t, dir, tmp, "build", "-q", "-f", out, def))
	r := launch(t, "exec", "--app", "foo", out, "/bin/sh", "-c", `cat /marker "$SCIF_APPROOT/uid"`)
	if wantOK(t, r); r.Stdout != "0\n0\n" {
		t.Errorf("build -f: %%post and %%appinstall ran as %q, want uid 0 twice", r.Stdout)
	}
	noTempLeft(t, tmp)
}
