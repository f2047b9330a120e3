package cliutil

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/config"
)

// OCIFlags are the options of pull and of build (--compression applies to
// every build; the others to OCI sources).
type OCIFlags struct {
	Arch                   string
	NoHTTPS, DisableCache  bool
	DockerUser, DockerPass string
	Compression            string
	// DockerLogin (--docker-login) asks for the registry credentials on
	// the terminal.
	DockerLogin bool
	// AuthFile (--authfile) is the registry credentials file to use in
	// place of the one `launch registry login` keeps.
	AuthFile string
	// Sandbox and KeepPrivileged are set by build --sandbox (not flags of
	// their own here): unpack into a directory, keeping set-id bits and
	// device nodes or not.
	Sandbox, KeepPrivileged bool
}

// CompressionFor returns the SquashFS compression for a new image: the
// --compression flag (or $LAUNCH_COMPRESSION), else launch.conf's
// build.compression.
func (f *OCIFlags) CompressionFor(conf *config.Config) (string, error) {
	if f.Compression == "" {
		return conf.Build.Compression, nil
	}
	if err := config.CheckCompression(f.Compression); err != nil {
		return "", fmt.Errorf("--compression: %w", err)
	}
	return f.Compression, nil
}

// Register adds the flags to c.
func (f *OCIFlags) Register(c *cobra.Command) {
	fl := c.Flags()
	fl.StringVar(&f.Arch, "arch", "", "architecture to pull from a multi-platform image (amd64, arm64, arm/v7 …; default: this machine's)")
	fl.BoolVar(&f.NoHTTPS, "nohttps", false, "talk plain HTTP to the registry (a local test registry)")
	fl.BoolVar(&f.NoHTTPS, "no-https", false, "same as --nohttps")
	fl.BoolVar(&f.DisableCache, "disable-cache", false, "neither use nor fill the cache ($LAUNCH_DISABLE_CACHE)")
	fl.StringVar(&f.DockerUser, "docker-username", "", "registry user name ($LAUNCH_DOCKER_USERNAME; default: launch registry login, ~/.docker/config.json)")
	fl.StringVar(&f.DockerPass, "docker-password", "", "registry password or token ($LAUNCH_DOCKER_PASSWORD)")
	fl.BoolVar(&f.DockerLogin, "docker-login", false, "ask for the registry user name and password on the terminal")
	fl.StringVar(&f.AuthFile, "authfile", "", "registry credentials file (Docker config.json form) in place of ~/.launch's, as `registry login --authfile` writes it")
	fl.StringVar(&f.Compression, "compression", "", "SquashFS compression of the new image: "+
		strings.Join(config.Compressions(), ", ")+" (default: launch.conf build.compression, gzip)")
	_ = fl.MarkHidden("no-https")
}
