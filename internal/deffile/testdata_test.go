package deffile

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// load parses a file of testdata with args, failing the test on error.
func load(t *testing.T, name string, args map[string]string) *Definition {
	t.Helper()
	d, err := Load(filepath.Join("testdata", name), args)
	if err != nil {
		t.Fatalf("Load(%s): %v", name, err)
	}
	return d
}

// TestEverySection is the documentation's every-section example: each
// section lands in its field, bodies verbatim, the header templated from
// %arguments.
func TestEverySection(t *testing.T) {
	d := load(t, "every-section.def", nil)
	if len(d.Stages) != 1 {
		t.Fatalf("%d stages, want 1", len(d.Stages))
	}
	st := d.Stages[0]
	if st.Bootstrap() != "docker" || st.From() != "localhost:5000/ubuntu:24.04" || st.Name() != "build" {
		t.Errorf("header = %+v", st.Header)
	}
	if st.Line != 3 {
		t.Errorf("Line = %d, want 3 (the Bootstrap line)", st.Line)
	}
	for _, c := range []struct {
		name string
		s    Script
		body string
		line int
	}{
		{"arguments", st.Arguments, "    RELEASE=24.04\n\n", 7},
		{"setup", st.Setup, "    touch /tmp/launch-deffile-marker\n    touch ${APPTAINER_ROOTFS}/from-setup\n\n", 10},
		{"environment", st.Environment, "    export SERVICE_PORT=8080\n    export LC_ALL=C\n\n", 18},
		{"post", st.Post, "    apt-get update && apt-get install -y --no-install-recommends socat\n    BUILT=`date`\n    echo \"export BUILT=\\\"${BUILT}\\\"\" >> $APPTAINER_ENVIRONMENT\n\n", 22},
		{"runscript", st.Runscript, "    echo \"Built on $BUILT\"\n    echo \"Got $# arguments: $*\"\n    exec echo \"$@\"\n\n", 27},
		{"startscript", st.Startscript, "    socat TCP-LISTEN:$SERVICE_PORT,fork EXEC:/bin/cat\n\n", 32},
		{"help", st.Help, "    A demonstration image that uses every section\n    of a definition file.\n", 49},
	} {
		if c.s.Body != c.body || c.s.Line != c.line {
			t.Errorf("%%%s = %q at %d, want %q at %d", c.name, c.s.Body, c.s.Line, c.body, c.line)
		}
	}
	if !strings.Contains(st.Test.Body, "exit 1\n") || st.Test.Line != 35 {
		t.Errorf("%%test = %q at %d", st.Test.Body, st.Test.Line)
	}
	wantFiles := []FileSet{{Line: 14, Entries: []FileEntry{
		{Src: "/tmp/launch-deffile-marker", Line: 15},
		{Src: "/tmp/launch-deffile-marker", Dst: "/opt", Line: 16},
	}}}
	if !reflect.DeepEqual(st.Files, wantFiles) {
		t.Errorf("Files = %+v, want %+v", st.Files, wantFiles)
	}
	wantLabels := []Label{
		{"Maintainer", "hpc-team@example.org", 45},
		{"Release", "v1.2.3", 46},
		{"Description", "A small demonstration image", 47},
	}
	if !reflect.DeepEqual(st.Labels, wantLabels) {
		t.Errorf("Labels = %+v", st.Labels)
	}
	if !reflect.DeepEqual(st.Defaults, map[string]string{"RELEASE": "24.04"}) {
		t.Errorf("Defaults = %v", st.Defaults)
	}
	// The stored text is the stage's templated text: the leading comment
	// lines are not part of it (Apptainer drops them too).
	src, _ := os.ReadFile("testdata/every-section.def")
	want := strings.Replace(string(src[strings.Index(string(src), "Bootstrap:"):]), "{{ RELEASE }}", "24.04", 1)
	if string(d.Raw) != want || string(st.Raw) != want {
		t.Errorf("Raw = %q\nwant %q", d.Raw, want)
	}
	if !strings.Contains(string(st.Original), "{{ RELEASE }}") {
		t.Errorf("Original lost the placeholder: %q", st.Original)
	}
	if len(d.Warnings) != 0 || len(d.UnusedArgs) != 0 {
		t.Errorf("warnings %v, unused %v", d.Warnings, d.UnusedArgs)
	}
}

// TestMultiStage is the documentation's multi-stage example.
func TestMultiStage(t *testing.T) {
	d := load(t, "multistage.def", nil)
	if len(d.Stages) != 2 {
		t.Fatalf("%d stages, want 2", len(d.Stages))
	}
	devel, final := d.Stages[0], d.Stages[1]
	if devel.Name() != "devel" || final.Name() != "final" || devel.Line != 3 || final.Line != 22 {
		t.Errorf("stages %q@%d %q@%d", devel.Name(), devel.Line, final.Name(), final.Line)
	}
	// The heredoc's EOF in column 1 and the comment before the second
	// Bootstrap stay in %post.
	if !strings.Contains(devel.Post.Body, "\nEOF\n") || !strings.HasSuffix(devel.Post.Body, "# The final image only carries the binary\n") {
		t.Errorf("devel %%post = %q", devel.Post.Body)
	}
	want := []FileSet{{Args: "from devel", From: "devel", Line: 27, Entries: []FileEntry{{Src: "/root/greet", Dst: "/usr/local/bin/greet", Line: 28}}}}
	if !reflect.DeepEqual(final.Files, want) {
		t.Errorf("final Files = %+v", final.Files)
	}
	src, _ := os.ReadFile("testdata/multistage.def")
	if got := string(devel.Raw) + string(final.Raw); got != string(src[strings.Index(string(src), "Bootstrap:"):]) || string(d.Raw) != got {
		t.Errorf("stage texts do not add up to the file")
	}
}

// TestApps is the documentation's SCIF example.
func TestApps(t *testing.T) {
	d := load(t, "apps.def", nil)
	apps := d.Stages[0].Apps
	if len(apps) != 2 || apps[0].Name != "alpha" || apps[1].Name != "beta" {
		t.Fatalf("apps = %+v", apps)
	}
	a, b := apps[0], apps[1]
	if a.Run.Body != "    exec echo \"alpha runs\"\n\n" || a.Start.Body != "    exec echo \"alpha starts\"\n\n" ||
		a.Install.Body != "    touch alpha.marker\n\n" || a.Env.Body != "    WHO=alpha\n    export WHO\n\n" ||
		a.Help.Body != "    Help text for alpha.\n\n" || a.Line != 13 {
		t.Errorf("alpha = %+v", a)
	}
	if !reflect.DeepEqual(a.Labels, []Label{{"FAVOURITE", "ALPHA", 20}}) {
		t.Errorf("alpha labels = %+v", a.Labels)
	}
	if !reflect.DeepEqual(a.Files, []FileEntry{{Src: "/etc/hostname", Dst: "data/hostname", Line: 33}}) {
		t.Errorf("alpha files = %+v", a.Files)
	}
	if b.Test.Body != "    test -e beta.marker\n\n" || b.Start.Body != "" || b.Line != 39 {
		t.Errorf("beta = %+v", b)
	}
	if d.Stages[0].Environment.Body != "    SHARED=yes\n    MESSAGE=\"seen by every app\"\n\n#############\n# app: alpha\n#############\n\n" {
		t.Errorf("%%environment = %q", d.Stages[0].Environment.Body)
	}
}

// TestTemplating is the documentation's templating example, with values
// from a build-arg file, a flag and %arguments.
func TestTemplating(t *testing.T) {
	args, warnings, err := BuildArgs([]string{"first_value=from-flag"}, "testdata/build-args.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || warnings[0].String() != `testdata/build-args.txt:6: skipped: "not a pair" is not KEY=VALUE` {
		t.Errorf("warnings = %v", warnings)
	}
	args["UNUSED"] = "x"
	d := load(t, "templating.def", args)
	st := d.Stages[0]
	if st.From() != "base.sif" {
		t.Errorf("From = %q", st.From())
	}
	if st.Setup.Body != "    echo \"written by %setup\" > /tmp/launch-templating\n\n" {
		t.Errorf("%%setup = %q", st.Setup.Body)
	}
	if st.Environment.Body != "    export FIRST=from-flag\n    export TOOL_VERSION=2.1\n\n" {
		t.Errorf("%%environment = %q", st.Environment.Body)
	}
	wantRun := "    #!/bin/sh\n    echo \"hello from the defaults\"\n" +
		"    # {{ NOT_A_VARIABLE }} stays: this line is a comment\n" +
		"    echo \"tool 2.1\" # trailing {{ ALSO_LEFT }}\n"
	if st.Runscript.Body != wantRun {
		t.Errorf("%%runscript = %q\nwant %q", st.Runscript.Body, wantRun)
	}
	if !reflect.DeepEqual(d.UnusedArgs, []string{"UNUSED"}) {
		t.Errorf("UnusedArgs = %v", d.UnusedArgs)
	}
}

// TestAgents covers every supported agent, its headers, %files from and
// %post -c.
func TestAgents(t *testing.T) {
	d := load(t, "agents.def", nil)
	var got []string
	for _, st := range d.Stages {
		got = append(got, st.Bootstrap())
	}
	if want := []string{"localimage", "debootstrap", "busybox", "oci-archive", "docker-archive", "oci"}; !reflect.DeepEqual(got, want) {
		t.Errorf("agents = %v, want %v", got, want)
	}
	two := d.Stages[1]
	if v, _ := two.Header.Get("OSVersion"); v != "bookworm" {
		t.Errorf("OSVersion = %q", v)
	}
	if v, _ := two.Header.Get("mirrorurl"); v != "http://deb.debian.org/debian/" {
		t.Errorf("MirrorURL = %q", v)
	}
	if v, _ := two.Header.Get("include"); v != "ca-certificates" {
		t.Errorf("Include = %q", v)
	}
	argv, err := two.Post.Command("/.post.script")
	if want := []string{"/bin/sh", "-ex", "-c", "/bin/bash /.post.script"}; err != nil || !reflect.DeepEqual(argv, want) {
		t.Errorf("Command = %q, %v; want %q", argv, err, want)
	}
	if v, _ := d.Stages[2].Header.Get("mirrorurl"); v != "/usr/bin/busybox" {
		t.Errorf("busybox MirrorURL = %q (comment not cut?)", v)
	}
	if v, _ := d.Stages[4].Header.Get("includecmd"); v != "yes" {
		t.Errorf("IncludeCmd = %q", v)
	}
	oci := d.Stages[5]
	want := []FileSet{
		{Args: "from one", From: "one", Line: 29, Entries: []FileEntry{{Src: "/etc/os-release", Dst: "/one-os-release", Line: 30}}},
		{Args: "from two", From: "two", Line: 31, Entries: []FileEntry{{Src: "/etc/debian_version", Dst: "/debian version", Line: 32}}},
	}
	if !reflect.DeepEqual(oci.Files, want) {
		t.Errorf("Files = %+v", oci.Files)
	}
	if len(d.Warnings) != 1 || !strings.HasPrefix(d.Warnings[0].String(), "testdata/agents.def:3: Fingerprints: launch does not verify") {
		t.Errorf("warnings = %v", d.Warnings)
	}
}

// TestScratchAndComments: comments in script sections are kept, comment
// lines in %files and between sections are not entries.
func TestScratchAndComments(t *testing.T) {
	st := load(t, "scratch.def", nil).Stages[0]
	if !strings.HasPrefix(st.Setup.Body, "    # runs on the host") {
		t.Errorf("%%setup = %q", st.Setup.Body)
	}
	if len(st.Files) != 1 || !reflect.DeepEqual(st.Files[0].Entries, []FileEntry{{Src: "/tmp/launch-busybox", Dst: "/bin/sh", Line: 11}}) {
		t.Errorf("Files = %+v", st.Files)
	}
	c := load(t, "comments.def", nil).Stages[0]
	if c.Setup.Body != "   # This is a comment, and stays in the script\n   touch /tmp/launch-comments\n" {
		t.Errorf("%%setup = %q", c.Setup.Body)
	}
	if len(c.Header) != 2 {
		t.Errorf("header = %+v (the comment before %%setup is not a header line)", c.Header)
	}
}
