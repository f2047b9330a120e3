package e2e

import (
	"os"
	"strings"
	"testing"
)

// TestEnvLauncherVarsStayOut: the payload sees the environment the user
// gave launch, as with Apptainer: APPTAINER_CACHEDIR and APPTAINER_TMPDIR
// move launch's cache and temp directory, but the LAUNCH_CACHEDIR and
// LAUNCH_TMPDIR launch derives from them for itself do not appear inside,
// and, as Apptainer forwards none of its APPTAINER_ and SINGULARITY_
// variables, neither do they. Variables the user set (FOO, LAUNCH_PWD)
// pass in; with env.apptainer_compat off the APPTAINER_ ones are ordinary
// variables and pass in too.
func TestEnvLauncherVarsStayOut(t *testing.T) {
	for _, v := range []string{"LAUNCH_CACHEDIR", "LAUNCH_TMPDIR", "LAUNCH_CONF"} {
		if os.Getenv(v) != "" {
			t.Skipf("%s is set in the test's own environment", v)
		}
	}
	image := busyboxImage(t, nil)
	dir := t.TempDir()
	off := withConf(t, "[env]\napptainer_compat = false\n")
	env := []string{"APPTAINER_CACHEDIR=" + dir + "/c", "SINGULARITY_TMPDIR=" + dir, "LAUNCH_PWD=/", "FOO=host"}
	cases := []struct {
		name string
		env  []string
		want string
	}{
		{"compat on", env, "FOO=host|LAUNCH_PWD=/"},
		{"compat off", append(env, off...),
			"APPTAINER_CACHEDIR=" + dir + "/c|FOO=host|" + off[0] + "|LAUNCH_PWD=/|SINGULARITY_TMPDIR=" + dir},
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
