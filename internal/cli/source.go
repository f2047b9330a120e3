package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/container"
	"github.com/launch-hpc/launch/internal/instance"
	"github.com/launch-hpc/launch/internal/transport"
)

// isRunSource reports whether image names an OCI source rather than a
// file: a known transport prefix and no file of that name. It costs no
// system call for an image path without a transport prefix.
func isRunSource(image string) bool {
	name, _, ok := transport.Split(image)
	if !ok || !transport.Runs(name) {
		return false
	}
	_, err := os.Lstat(image)
	return err != nil
}

// resolveImage returns the image to run for the IMAGE argument: image
// itself, or for an OCI source the path of its SIF in the cache, which the
// helper (`launch-oci cache sif`) makes or finds. The helper's messages are
// shown (with -q none but errors); its error becomes this one line.
// Commands that take an IMAGE (exec, run, shell; inspect and test may call
// it the same way) call it first.
func resolveImage(g *globals, image string, noHTTPS bool, reg registryFlags) (string, error) {
	if !isRunSource(image) {
		return image, nil
	}
	helper, err := helperPath()
	if err != nil {
		return "", err
	}
	args := []string{"cache", "sif"}
	if !g.Verbose() {
		args = append(args, "-q")
	}
	if noHTTPS {
		args = append(args, "--nohttps")
	}
	args = append(args, image)
	cmd := exec.Command(helper, args...)
	if e := reg.env(); len(e) > 0 {
		cmd.Env = append(os.Environ(), e...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Run()
	msg := strings.TrimSpace(stderr.String())
	if err != nil {
		last := strings.TrimPrefix(strings.TrimSpace(msg[strings.LastIndex(msg, "\n")+1:]), "FATAL:")
		if last = strings.TrimSpace(last); last == "" {
			last = err.Error()
		}
		if strings.Contains(last, image) {
			return "", errors.New(last)
		}
		return "", fmt.Errorf("%s: %s", image, last)
	}
	if msg != "" {
		fmt.Fprintln(g.stderr, msg)
	}
	p := strings.TrimSpace(stdout.String())
	if p == "" || strings.Contains(p, "\n") {
		return "", errors.New(image + ": the helper " + HelperName + " named no cached image")
	}
	return p, nil
}

// imageToRead is the image file that inspect and run-help read for their
// IMAGE argument: for instance://NAME the image the user's running instance
// NAME was started from (its record; a stale one is an error), otherwise
// what resolveImage gives.
func imageToRead(g *globals, image string) (string, error) {
	name, ok := strings.CutPrefix(image, container.InstanceScheme)
	if !ok {
		return resolveImage(g, image, false, registryFlags{})
	}
	if err := instance.CheckName(name); err != nil {
		return "", err
	}
	store, err := instance.Open(os.Getuid(), userHome(), os.Getenv)
	if err != nil {
		return "", err
	}
	defer store.Close()
	live, _, err := store.Live()
	if err != nil {
		return "", err
	}
	found := ""
	for _, e := range live {
		if e.Name == name {
			found = e.Image
		}
		if e.Proc != nil {
			e.Proc.Close()
		}
	}
	if found != "" {
		return resolveImage(g, found, false, registryFlags{})
	}
	return "", fmt.Errorf("%s: no instance %s of yours is running on this host (launch instance list)", image, name)
}

// registryFlags are the registry options of exec, run and shell, as
// Apptainer has them there: for a docker:// or oras:// IMAGE, handed to
// the helper that puts its SIF in the cache (launch-oci cache sif).
type registryFlags struct {
	user, pass, authFile string
}

func (r *registryFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.StringVar(&r.user, "docker-username", "", "registry user name for a docker:// or oras:// IMAGE")
	fl.StringVar(&r.pass, "docker-password", "", "registry password or token for a docker:// or oras:// IMAGE")
	fl.StringVar(&r.authFile, "authfile", "", "registry credentials file (Docker config.json form) for a docker:// or oras:// IMAGE")
}

// env is what the helper is given of them: its LAUNCH_ variables (which
// win over any APPTAINER_ ones), not arguments, which every user of the
// node could read in its command line.
func (r registryFlags) env() []string {
	var e []string
	for _, o := range []struct{ flag, v string }{{"docker-username", r.user}, {"docker-password", r.pass}, {"authfile", r.authFile}} {
		if o.v != "" {
			e = append(e, EnvName(o.flag)+"="+o.v)
		}
	}
	return e
}
