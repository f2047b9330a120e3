package container

import (
	"strings"
	"testing"

	"github.com/launch-hpc/launch/internal/baseenv"
)

// TestAppEnvScript: for an image without its own 95-apps.sh (the test host
// has no /.singularity.d), launch's text runs after the image's scripts and
// before the overrides.
func TestAppEnvScript(t *testing.T) {
	s := appEnvScript(envScript)
	i := strings.Index(s, baseenv.AppsScript)
	if i < 0 || i < strings.Index(s, "\n__launch_env\n") || i > strings.Index(s, "__launch_n=$1") {
		t.Errorf("the apps script is not between the image's scripts and the overrides:\n%s", s)
	}
	if got := appVars(nil, "foo"); len(got) != 3 || !strings.Contains(strings.Join(got, " "), "SINGULARITY_APPNAME=foo") {
		t.Errorf("appVars: %v", got)
	}
}
