package e2e

import (
	"strings"
	"testing"
)

// TestEnvLauncherVarsStayOut: the launcher's own settings do not reach the
// payload, as with Apptainer (which forwards no APPTAINER_ or SINGULARITY_
// variable): APPTAINER_CACHEDIR and APPTAINER_TMPDIR move launch's cache
// and temp directory but neither they nor the LAUNCH_CACHEDIR and
// LAUNCH_TMPDIR launch derives from them appear inside; an ordinary host
// variable still passes in, and with env.apptainer_compat off the
// APPTAINER_ ones are ordinary variables.
func TestEnvLauncherVarsStayOut(t *testing.T) {
	image := busyboxImage(t, nil)
	dir := t.TempDir()
	off := withConf(t, "[env]\napptainer_compat = false\n")
	env := []string{"LAUNCH_CACHEDIR=", "LAUNCH_TMPDIR=", "APPTAINER_CACHEDIR=" + dir + "/c",
		"SINGULARITY_TMPDIR=" + dir, "LAUNCH_PWD=/", "FOO=host"}
	cases := []struct {
		name string
		env  []string
		want string
	}{
		{"compat on", env, "FOO=host"},
		{"compat off", append(env, off...), "APPTAINER_CACHEDIR=" + dir + "/c|FOO=host|SINGULARITY_TMPDIR=" + dir},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := launchWith(t, runOpts{Env: c.env}, "exec", image, "sh", "-c",
				`env | grep -E '^(LAUNCH|APPTAINER|SINGULARITY)_(CACHEDIR|TMPDIR|PWD|CONF)=|^FOO=' | sort | tr '\n' '|'`)
			wantOK(t, r)
			if got := strings.TrimSuffix(r.Stdout, "|"); got != c.want {
				t.Errorf("payload sees %q, want %q", got, c.want)
			}
		})
	}
}
