package config

import (
	"fmt"
	"os"

	"github.com/launch-hpc/launch/internal/buildinfo"
)

// ConfEnv names the variable that points launch at another config file.
// It is documented in docs/admin.md as one of the things a user can always
// change: the config is a set of site defaults, not a security boundary.
const ConfEnv = "LAUNCH_CONF"

// LoadSite reads the site config: the file fixed at build time, or the one
// named by LAUNCH_CONF. A missing site config means the built-in defaults;
// a missing file that LAUNCH_CONF names is an error, since its settings
// were clearly wanted.
func LoadSite() (*Loaded, error) {
	p, named := SitePath()
	if !named {
		return Load(p)
	}
	l, err := Load(p)
	if err == nil && !l.Found {
		return nil, fmt.Errorf("%s=%s: no such file", ConfEnv, p)
	}
	return l, err
}

// SitePath is the site config file LoadSite reads; named reports that
// LAUNCH_CONF named it.
func SitePath() (path string, named bool) {
	if p := os.Getenv(ConfEnv); p != "" {
		return p, true
	}
	return buildinfo.ConfigFile(), false
}
