// Package keypaths says where the OpenPGP keyrings of launch live, without
// the OpenPGP code: internal/keyring reads and writes them, and the
// start-up path (internal/imagetrust) only needs their names to tell
// whether they changed.
package keypaths

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/launch-hpc/launch/internal/buildinfo"
	"github.com/launch-hpc/launch/internal/paths"
)

// File names in the keys directory, as Apptainer's in ~/.apptainer/keys.
const (
	PublicFile = "pgp-public"
	SecretFile = "pgp-secret"
	// GlobalFile is the site's public keyring, next to launch.conf.
	GlobalFile = "global-pgp-public"
)

// EnvDir moves the keys directory.
const EnvDir = "LAUNCH_KEYSDIR"

// Dir is the user's keys directory: $LAUNCH_KEYSDIR, else ~/.launch/keys.
func Dir() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the keys directory: %w (set %s)", err, EnvDir)
	}
	return paths.UserDir(home, "keys"), nil
}

// Global is the site's public keyring: SYSCONFDIR/launch/global-pgp-public.
func Global() string { return filepath.Join(filepath.Dir(buildinfo.ConfigFile()), GlobalFile) }
