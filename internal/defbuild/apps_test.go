package defbuild

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/launch-hpc/launch/internal/deffile"
)

func parseApps(t *testing.T, text string) *deffile.Stage {
	t.Helper()
	d, err := deffile.Parse("t.def", []byte("Bootstrap: scratch\n"+text), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &d.Stages[0]
}

// TestAppFiles: which files an app gets, and their contents.
func TestAppFiles(t *testing.T) {
	st := parseApps(t, "%apprun my.app\n    echo run\n%applabels my.app\n    owner team a\n%apphelp my.app\n    Help.\n%apprun bare\n    true\n")
	fs, err := appFiles(&st.Apps[0])
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range fs {
		got[f.path] = string(f.data)
	}
	if want := "#!/bin/sh\n\n    echo run\n\n"; got["/scif/apps/my.app/scif/runscript"] != want {
		t.Errorf("runscript %q, want %q", got["/scif/apps/my.app/scif/runscript"], want)
	}
	if got["/scif/apps/my.app/scif/runscript.help"] != "    Help.\n" {
		t.Errorf("help %q", got["/scif/apps/my.app/scif/runscript.help"])
	}
	var labels map[string]string
	if err := json.Unmarshal([]byte(got["/scif/apps/my.app/scif/labels.json"]), &labels); err != nil ||
		labels["SCIF_APP_NAME"] != "my.app" || labels["owner"] != "team a" {
		t.Errorf("labels %v %v", labels, err)
	}
	for _, absent := range []string{"/scif/apps/my.app/scif/env/90-environment.sh", "/scif/apps/my.app/scif/test", "/scif/apps/my.app/scif/startscript"} {
		if _, ok := got[absent]; ok {
			t.Errorf("%s written without its section", absent)
		}
	}
	env := appsBaseEnv(st.Apps)
	for _, w := range []string{"SCIF_APPROOT_my_app='/scif/apps/my.app'", "export SCIF_APPRUN_my_app='/scif/apps/my.app/scif/runscript'",
		"SCIF_APPDATA_bare='/scif/data/bare'"} {
		if !strings.Contains(env, w) {
			t.Errorf("94-appsbase.sh lacks %q:\n%s", w, env)
		}
	}
	if strings.Contains(env, "SCIF_APPENV_") || strings.Contains(env, "SCIF_APPSTART_") {
		t.Errorf("94-appsbase.sh names files the apps do not have:\n%s", env)
	}
}

// TestAppScriptsRun: the generated shell texts are valid and set what they
// say, run by the host's sh.
func TestAppScriptsRun(t *testing.T) {
	st := parseApps(t, "%appinstall it's\n    echo \"$SCIF_APPNAME|$SCIF_APPOUTPUT|$(pwd)\"\n")
	a := &st.Apps[0]
	dir := t.TempDir()
	base := filepath.Join(dir, "base.sh")
	if err := os.WriteFile(base, []byte(appBaseEnv(a)+appsBaseEnv(st.Apps)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/bin/sh", "-ec", ". "+base+"; echo \"$SCIF_APPNAME|$SCIF_APPINPUT|$SCIF_APPROOT_it_s\"").CombinedOutput()
	if err != nil || string(out) != "it's|/scif/data/it's/input|/scif/apps/it's\n" {
		t.Errorf("sourcing the app's scripts: %q %v", out, err)
	}
	if post := postScript(st); !strings.Contains(post, "cd '/scif/apps/it'\\''s'\n") || !strings.HasSuffix(post, "\ncd /\n") {
		t.Errorf("post script:\n%s", post)
	}
}
