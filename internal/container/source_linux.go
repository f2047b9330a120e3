package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/launch-hpc/launch/internal/config"
	"github.com/launch-hpc/launch/internal/paths"
)

// checkSource checks that a user-given host path exists and is allowed.
func checkSource(src string, conf *config.Config) error {
	if _, err := os.Stat(src); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("source %s does not exist", src)
		}
		return fmt.Errorf("source %s: %w", src, unwrapPath(err))
	}
	if len(conf.Binds.AllowedPaths) > 0 {
		real, err := filepath.EvalSymlinks(src)
		if err != nil {
			return fmt.Errorf("resolving source %s: %w", src, err)
		}
		if !under(real, conf.Binds.AllowedPaths) {
			return fmt.Errorf("source %s is outside the directories this site allows binding (launch.conf binds.allowed_paths = %q)",
				real, conf.Binds.AllowedPaths)
		}
	}
	return nil
}

// under reports whether path (symlinks resolved) is one of dirs or below
// one of them; dirs are resolved too, as sites often have /home or /scratch
// as symlinks.
func under(path string, dirs []string) bool {
	for _, d := range dirs {
		if real, err := filepath.EvalSymlinks(d); err == nil {
			d = real
		}
		if paths.Within(path, d) {
			return true
		}
	}
	return false
}
