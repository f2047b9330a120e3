package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/buildinfo"
	"github.com/launch-hpc/launch/internal/config"
	"github.com/launch-hpc/launch/internal/transport"
)

// HelperName is the helper program that runs the commands needing the OCI
// libraries (pull, cache, build from OCI sources). Keeping them out of the
// launch binary keeps their package initialisation off the start-up path of
// every `launch exec`.
const HelperName = "launch-oci"

// OCIFlags are the options of pull and of build (--compression applies to
// every build; the others to OCI sources).
type OCIFlags struct {
	Arch                   string
	NoHTTPS, DisableCache  bool
	DockerUser, DockerPass string
	Compression            string
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
	fl.StringVar(&f.DockerUser, "docker-username", "", "registry user name ($LAUNCH_DOCKER_USERNAME; default: ~/.docker/config.json)")
	fl.StringVar(&f.DockerPass, "docker-password", "", "registry password or token ($LAUNCH_DOCKER_PASSWORD)")
	fl.StringVar(&f.Compression, "compression", "", "SquashFS compression of the new image: "+
		strings.Join(config.Compressions(), ", ")+" (default: launch.conf build.compression, gzip)")
	_ = fl.MarkHidden("no-https")
}

// OCICommands are the commands that need the OCI libraries. The launch
// binary's are forwarders to the helper; the helper has the real ones.
type OCICommands struct {
	Pull  func(g *Globals) *cobra.Command
	Cache func(g *Globals) *cobra.Command
	Build func(ctx context.Context, g *Globals, f *OCIFlags, force bool, out, source string) error
}

// LooksLikeOCISource reports whether a build SOURCE names an image by
// transport (docker://, oci:, … or an unknown one, which launch-oci refuses
// by name) rather than a local path.
func LooksLikeOCISource(s string) bool { return transport.LooksLikeSource(s) }

// forwarders hand the OCI commands to the helper program.
func forwarders() OCICommands {
	stub := func(use, short string) func(g *Globals) *cobra.Command {
		return func(g *Globals) *cobra.Command {
			return &cobra.Command{
				Use: use, Short: short,
				DisableFlagParsing: true,
				RunE:               func(*cobra.Command, []string) error { return forward(g) },
			}
		}
	}
	return OCICommands{
		Pull:  stub("pull [flags] [OUT.sif] SOURCE", "Fetch an OCI/Docker image and convert it to a SIF file"),
		Cache: stub("cache list|clean", "List or empty the cache of pulled images"),
		Build: func(_ context.Context, g *Globals, _ *OCIFlags, _ bool, _, _ string) error { return forward(g) },
	}
}

// forward replaces this process with the helper, given the same arguments.
func forward(g *Globals) error {
	path, err := helperPath()
	if err != nil {
		return err
	}
	argv := append([]string{path}, g.args...)
	if err := syscall.Exec(path, argv, os.Environ()); err != nil {
		return fmt.Errorf("running %s: %w", path, err)
	}
	return nil
}

// helperPath finds the helper: next to this executable (a build tree or a
// relocated install), else in the install's libexec directory.
func helperPath() (string, error) {
	var tried []string
	if exe, err := os.Executable(); err == nil {
		p := exe[:strings.LastIndex(exe, "/")+1] + HelperName
		if isExecutable(p) {
			return p, nil
		}
		tried = append(tried, p)
	}
	p := buildinfo.LibexecFile(HelperName)
	if isExecutable(p) {
		return p, nil
	}
	tried = append(tried, p)
	return "", errors.New("this command needs the helper program " + HelperName +
		", which is not installed (looked at " + strings.Join(tried, ", ") + "); reinstall launch")
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
