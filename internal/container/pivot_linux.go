package container

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/msg"
)

// pivot makes root (the assembled root, staging side) the process's root,
// detaches the host's, and moves into the working directory: cfg.Pwd
// (--pwd, which must exist), else cfg.Cwd, falling back to home, then /.
func pivot(root string, cfg *Config, log *msg.Logger) error {
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("entering new root: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root to %s: %w", root, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the host root: %w", err)
	}
	return enterWorkdir(cfg, log)
}

// enterWorkdir moves into the working directory inside: cfg.Pwd (--pwd,
// which must exist), else cfg.Cwd, falling back to home, then /.
func enterWorkdir(cfg *Config, log *msg.Logger) error {
	if p := cfg.Pwd; p != "" {
		if err := unix.Chdir(p); err != nil {
			return fmt.Errorf("--pwd %s: %w inside the container", p, err)
		}
		return nil
	}
	for _, d := range []string{cfg.Cwd, cfg.User.Home, "/"} {
		if d != "" && unix.Chdir(d) == nil {
			if d != cfg.Cwd && !cfg.QuietCwd {
				log.Warnf("working directory %s is not in the container; using %s", cfg.Cwd, d)
			}
			return nil
		}
	}
	return errors.New("no usable working directory in the container")
}
