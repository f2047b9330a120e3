package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// envOf parses the output of env inside the container.
func envOf(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

// TestCompatInsideVars checks the variables Apptainer sets inside the
// container, for exec and shell (run: TestCompatInsideRunNoRunscript), with the image given by a relative
// path (they name it absolute) and two user binds.
func TestCompatInsideVars(t *testing.T) {
	tree := busyboxTree(t)
	sif := buildSIF(t, tree)
	dir := filepath.Dir(sif)
	bindA, bindB := t.TempDir(), t.TempDir()
	binds := []string{"-B", bindA + ":/a", "-B", bindB + ":/b:ro"}
	common := map[string]string{
		"APPTAINER_CONTAINER": sif, "SINGULARITY_CONTAINER": sif, "LAUNCH_CONTAINER": sif,
		"APPTAINER_NAME": "image.sif", "SINGULARITY_NAME": "image.sif", "LAUNCH_NAME": "image.sif",
		"APPTAINER_BIND": "/a,/b", "SINGULARITY_BIND": "/a,/b",
		"APPTAINER_ENVIRONMENT": "/.singularity.d/env/91-environment.sh", "SINGULARITY_ENVIRONMENT": "/.singularity.d/env/91-environment.sh",
		"LD_LIBRARY_PATH": "/.singularity.d/libs", "PS1": "Apptainer> ",
	}
	for _, c := range []struct {
		mode  string
		args  []string
		stdin string
	}{
		{"exec", []string{"env"}, ""},
		{"shell", nil, "env\n"},
	} {
		t.Run(c.mode, func(t *testing.T) {
			args := append(append(append([]string{c.mode}, binds...), "image.sif"), c.args...)
			r := launchWith(t, runOpts{Dir: dir, Stdin: c.stdin}, args...)
			wantOK(t, r)
			env := envOf(r.Stdout)
			for k, v := range common {
				if env[k] != v {
					t.Errorf("%s=%q, want %q", k, env[k], v)
				}
			}
			if env["APPTAINER_COMMAND"] != c.mode {
				t.Errorf("APPTAINER_COMMAND=%q, want %q", env["APPTAINER_COMMAND"], c.mode)
			}
		})
	}
}

// TestCompatInsidePrompt checks shell's prompt: Apptainer's, unless the
// user set one.
func TestCompatInsidePrompt(t *testing.T) {
	sif := buildSIF(t, busyboxTree(t))
	r := launchWith(t, runOpts{Stdin: "echo \"[$PS1]\"\n"}, "shell", sif)
	if wantOK(t, r); strings.TrimSpace(r.Stdout) != "[Apptainer> ]" {
		t.Errorf("PS1 in shell: %q", r.Stdout)
	}
	r = launchWith(t, runOpts{Stdin: "echo \"[$PS1]\"\n"}, "shell", "--env", "PS1=mine> ", sif)
	if wantOK(t, r); strings.TrimSpace(r.Stdout) != "[mine> ]" {
		t.Errorf("PS1 with --env: %q", r.Stdout)
	}
	r = launchWith(t, runOpts{Stdin: "echo \"[$PS1]\"\n", Env: []string{"APPTAINERENV_PS1=app> "}}, "shell", sif)
	if wantOK(t, r); strings.TrimSpace(r.Stdout) != "[app> ]" {
		t.Errorf("PS1 with APPTAINERENV_PS1: %q", r.Stdout)
	}
}

// TestCompatInsideRunNoRunscript: run on an image without a runscript runs
// /bin/sh with the arguments, saying so, as Apptainer does.
func TestCompatInsideRunNoRunscript(t *testing.T) {
	tree := busyboxTree(t)
	r := launch(t, "run", tree, "-c", "echo ran $APPTAINER_COMMAND")
	wantOK(t, r)
	if strings.TrimSpace(r.Stdout) != "ran run" {
		t.Errorf("stdout %q, want \"ran run\"", r.Stdout)
	}
	if !strings.Contains(r.Stderr, "No runscript found in container, executing /bin/sh") {
		t.Errorf("stderr %q does not say it runs /bin/sh", r.Stderr)
	}
	r = launch(t, "run", "-q", tree, "-c", "exit 3")
	if r.Code != 3 || r.Stderr != "" {
		t.Errorf("run -q ... exit 3: status %d, stderr %q", r.Code, r.Stderr)
	}
	if err := os.Remove(filepath.Join(tree, "bin", "sh")); err != nil {
		t.Fatal(err)
	}
	wantFatal(t, launch(t, "run", tree), "no runscript", "/bin/sh")
}

// TestCompatInsideFastPath: an image whose env directory holds only the
// standard base scripts gets their effect without a shell; one with an
// extra script still gets it sourced, with the base scripts' effect too.
func TestCompatInsideFastPath(t *testing.T) {
	plain := buildSIF(t, busyboxTree(t))
	extraTree := busyboxTree(t)
	envDir := filepath.Join(extraTree, ".singularity.d", "env")
	if err := os.MkdirAll(envDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(envDir, "50-extra.sh"), []byte("export EXTRA=sourced\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	extra := buildSIF(t, extraTree)
	for _, c := range []struct {
		name, img, extra string
	}{
		{"standard only", plain, ""},
		{"extra script", extra, "sourced"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := launch(t, "exec", "--env", "LD_LIBRARY_PATH=/opt/lib", c.img, "env")
			wantOK(t, r)
			if env := envOf(r.Stdout); env["LD_LIBRARY_PATH"] != "/opt/lib" {
				t.Errorf("--env LD_LIBRARY_PATH lost: %q", env["LD_LIBRARY_PATH"])
			}
			r = launchWith(t, runOpts{Env: []string{"PWD=/not-the-cwd"}}, "exec", c.img, "env")
			wantOK(t, r)
			env := envOf(r.Stdout)
			if env["LD_LIBRARY_PATH"] != "/.singularity.d/libs" || env["EXTRA"] != c.extra {
				t.Errorf("LD_LIBRARY_PATH=%q EXTRA=%q, want /.singularity.d/libs and %q", env["LD_LIBRARY_PATH"], env["EXTRA"], c.extra)
			}
			// A shell sourcing the scripts leaves its mark on the
			// environment: busybox sh puts the real working directory
			// in a PWD that names another; the native path passes the
			// host's PWD as it is.
			viaShell := env["PWD"] != "/not-the-cwd"
			if viaShell != (c.extra != "") {
				t.Errorf("started through a shell: %v, want %v (env %q)", viaShell, c.extra != "", r.Stdout)
			}
		})
	}
}
