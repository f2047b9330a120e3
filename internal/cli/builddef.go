package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"

	"github.com/launch-hpc/launch/internal/build"
	"github.com/launch-hpc/launch/internal/defbuild"
	"github.com/launch-hpc/launch/internal/deffile"
	"github.com/launch-hpc/launch/internal/fakeroot"
	"github.com/launch-hpc/launch/internal/image"
	"github.com/launch-hpc/launch/internal/mountplan"
)

// defFlags are the options of `launch build` for a definition file.
type defFlags struct {
	noTest, fakeroot, warnUnused bool
	buildArgs                    []string
	buildArgFile                 string
	binds                        []string // --bind, for %post and %test
}

// isDeffile reports whether a build SOURCE is a definition file: a regular
// file that is no image and whose first line that is not blank or a comment
// is a "Keyword:" header or a %section line. (Apptainer asks whether the
// file parses; this asks whether it is meant as one, so that the parser's
// one line says what is wrong with a broken definition, while any other
// file keeps the "not a directory"/"not a SIF" errors.)
func isDeffile(source string) bool {
	if !isRegular(source) {
		return false
	}
	if _, err := image.Open(source); !errors.Is(err, image.ErrNotImage) {
		return false
	}
	f, err := os.OpenFile(source, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, 4096)
	n, _ := io.ReadFull(f, buf)
	return looksLikeDef(buf[:n])
}

// headerStart matches a definition file's first meaningful line.
var headerStart = regexp.MustCompile(`^\s*(%[A-Za-z]|[A-Za-z][A-Za-z0-9]*\s*:)`)

// looksLikeDef reports whether the start of a file reads as a definition.
func looksLikeDef(data []byte) bool {
	for _, ln := range strings.Split(string(data), "\n") {
		if t := strings.TrimSpace(ln); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		return headerStart.MatchString(ln)
	}
	return false
}

// buildDeffile is `launch build [--sandbox] OUT DEF`.
func buildDeffile(ctx context.Context, g *globals, f *buildFlags, o build.Options) error {
	args, warnings, err := deffile.BuildArgs(f.def.buildArgs, f.def.buildArgFile)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		g.Log().Warnf("%s", w)
	}
	d, err := deffile.Load(o.Source, args)
	if err != nil {
		return err
	}
	for _, w := range d.Warnings {
		g.Log().Warnf("%s", w)
	}
	if len(d.UnusedArgs) > 0 {
		if !f.def.warnUnused {
			return fmt.Errorf("%s: build arguments not used by the definition file: %s (--warn-unused-build-args to go on)",
				o.Source, strings.Join(d.UnusedArgs, ", "))
		}
		g.Log().Warnf("build arguments not used by the definition file: %s", strings.Join(d.UnusedArgs, ", "))
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the launch binary to run %%post with: %w", err)
	}
	conf, err := g.siteConfig()
	if err != nil {
		return err
	}
	binds, err := buildBinds(f.def.binds)
	if err != nil {
		return err
	}
	return defbuild.Build(ctx, defbuild.Options{
		Def: d, Out: o.Out, Sandbox: f.sandbox, Force: f.force, NoTest: f.def.noTest, Fakeroot: f.def.fakeroot, Binds: binds,
		FakerootTools: fakeroot.Tools{NewUIDMap: conf.Tools.NewUIDMap, NewGIDMap: conf.Tools.NewGIDMap},
		Pack:          o, Launch: self, Stdout: g.stdout, Stderr: g.stderr,
		OCI: func(ctx context.Context, out, source string) error { return ociToSIF(ctx, g, f, out, source) },
	})
}

// buildBinds checks the --bind values of a definition-file build (parsed
// as `launch exec` parses them, the sources existing on the host) and
// gives them back one bind each, SRC:DST[:ro] with SRC absolute, for the
// `launch exec` of %post and %test.
func buildBinds(values []string) ([]string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("finding the working directory for --bind: %w", err)
	}
	var out []string
	for _, v := range values {
		bs, err := mountplan.ParseBinds(v, cwd, "--bind")
		if err != nil {
			return nil, err
		}
		for _, b := range bs {
			if _, err := os.Stat(b.Source); err != nil {
				var pe *os.PathError
				if errors.As(err, &pe) {
					err = pe.Err // the message names the path already
				}
				return nil, fmt.Errorf("--bind %s: %w", b, err)
			}
			out = append(out, b.String())
		}
	}
	return out, nil
}

// ociToSIF converts an OCI source to the SIF out with the launch-oci
// helper, as `launch build OUT SOURCE` does, passing on the OCI flags.
func ociToSIF(ctx context.Context, g *globals, f *buildFlags, out, source string) error {
	helper, err := helperPath()
	if err != nil {
		return err
	}
	args := []string{"build"}
	if !g.Verbose() {
		args = append(args, "-q")
	}
	if f.oci.Arch != "" {
		args = append(args, "--arch", f.oci.Arch)
	}
	if f.oci.NoHTTPS {
		args = append(args, "--nohttps")
	}
	if f.oci.DisableCache {
		args = append(args, "--disable-cache")
	}
	args = append(args, out, source)
	cmd := exec.CommandContext(ctx, helper, args...)
	cmd.Env = os.Environ()
	if f.oci.DockerUser != "" {
		cmd.Env = append(cmd.Env, "LAUNCH_DOCKER_USERNAME="+f.oci.DockerUser, "LAUNCH_DOCKER_PASSWORD="+f.oci.DockerPass)
	}
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = g.stderr, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		msg = strings.TrimPrefix(msg[strings.LastIndex(msg, "\n")+1:], "FATAL: ")
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("%s: %s", source, msg)
	}
	return nil
}
