package baseenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// shellNoise are the variables /bin/sh sets by itself.
var shellNoise = map[string]bool{"PWD": true, "OLDPWD": true, "SHLVL": true, "_": true}

// sourced runs script with the host's /bin/sh over env and returns the
// environment it leaves. A PS1 that env lacks is unset first, as the
// container's launcher script does: dash and busybox give even a
// non-interactive shell a default PS1, which bash (Apptainer's action
// shell) does not.
func sourced(t *testing.T, script string, env []string) map[string]string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(p, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", `[ "$2" = ps1 ] || unset PS1; . "$1" && exec env -0`, "sh", p)
	cmd.Env = env
	if _, ok := toMap(env)["PS1"]; ok {
		cmd.Args = append(cmd.Args, "ps1")
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sourcing %q: %v", script, err)
	}
	m := map[string]string{}
	for _, kv := range strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok && !shellNoise[k] {
			m[k] = v
		}
	}
	return m
}

func toMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func TestApplyEqualsSourcing(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh on this host")
	}
	envs := map[string][]string{
		"bare":          {"PATH=/usr/bin:/bin"},
		"ld set":        {"PATH=/usr/bin:/bin", "LD_LIBRARY_PATH=/opt/lib"},
		"ld empty":      {"PATH=/usr/bin:/bin", "LD_LIBRARY_PATH="},
		"ps1 set":       {"PATH=/usr/bin:/bin", "PS1=mine$ "},
		"ps1 empty":     {"PATH=/usr/bin:/bin", "PS1=", "FOO=a b"},
		"ld and prompt": {"PATH=/usr/bin:/bin", "LD_LIBRARY_PATH=/a:/b", "PS1=x> ", "HOME=/home/u"},
	}
	for _, script := range []string{First, DeffileHeader, Last} {
		eff, ok := Known([]byte(script))
		if !ok {
			t.Fatalf("launch's own script %q is not known", script)
		}
		names := make([]string, 0, len(envs))
		for n := range envs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			env := envs[n]
			got, ok := eff.Apply(append([]string(nil), env...))
			if !ok {
				t.Fatalf("effect %d of %q not applied natively", eff, script)
			}
			want := sourced(t, script, env)
			g := toMap(got)
			if len(g) != len(want) {
				t.Errorf("%s, script %.60q: native %v, sourced %v", n, script, g, want)
				continue
			}
			for k, v := range want {
				if g[k] != v {
					t.Errorf("%s, script %.60q: %s native %q, sourced %q", n, script, k, g[k], v)
				}
			}
		}
	}
}

func TestKnown(t *testing.T) {
	for _, c := range []struct {
		name string
		data string
		ok   bool
		eff  Effect
	}{
		{"first", First, true, NoOp},
		{"deffile header", DeffileHeader, true, NoOp},
		{"last", Last, true, LibsPrompt},
		{"deffile with environment", DeffileHeader + "export FOO=1\n", false, 0},
		{"last with a byte more", Last + "\n", false, 0},
		{"empty", "", false, 0},
		{"large", strings.Repeat("#", MaxSize+1), false, 0},
	} {
		eff, ok := Known([]byte(c.data))
		if ok != c.ok || (ok && eff != c.eff) {
			t.Errorf("%s: Known = %d, %v; want %d, %v", c.name, eff, ok, c.eff, c.ok)
		}
	}
}

func TestApplyConditional(t *testing.T) {
	for _, c := range []struct {
		name string
		eff  Effect
		env  []string
		ok   bool
	}{
		{"apps without app", Apps, []string{"PATH=/bin"}, true},
		{"apps with app", Apps, []string{"PATH=/bin", "SINGULARITY_APPNAME=foo"}, false},
		{"runtime vars unset", RuntimeVars, []string{"PATH=/bin"}, true},
		{"runtime vars set", RuntimeVars, []string{"PATH=/bin", "SING_USER_DEFINED_PATH="}, false},
		{"unknown effect", Effect(99), nil, false},
	} {
		got, ok := c.eff.Apply(c.env)
		if ok != c.ok {
			t.Errorf("%s: ok %v, want %v", c.name, ok, c.ok)
		}
		if ok && strings.Join(got, "\n") != strings.Join(c.env, "\n") {
			t.Errorf("%s: env changed to %q", c.name, got)
		}
	}
}
