package container

import (
	"os"
	"slices"
	"strings"

	"github.com/launch-hpc/launch/internal/environ"
	"github.com/launch-hpc/launch/internal/layout"
)

// withLibPath puts the directories of bound GPU libraries (Config.LibPath)
// on the payload's LD_LIBRARY_PATH, before the image's environment scripts
// run over it. An image with Apptainer's last base script (99-base.sh)
// appends layout.LibsDir itself, so that one is left to it; for any other
// image (a plain directory tree, a SquashFS without /.singularity.d) it is
// set here. Without GPU libraries it does nothing (not even a stat).
func withLibPath(env []string, dirs []string) []string {
	if len(dirs) == 0 {
		return env
	}
	if slices.Contains(dirs, layout.LibsDir) {
		if _, err := os.Lstat(layout.BaseEnvLast); err == nil {
			dirs = slices.DeleteFunc(slices.Clone(dirs), func(d string) bool { return d == layout.LibsDir })
		}
	}
	if len(dirs) == 0 {
		return env
	}
	v := strings.Join(dirs, ":")
	if old := environ.Get(env, "LD_LIBRARY_PATH"); old != "" {
		v = old + ":" + v
	}
	return environ.Set(env, "LD_LIBRARY_PATH", v)
}
