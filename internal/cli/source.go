package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

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
func resolveImage(g *globals, image string, noHTTPS bool) (string, error) {
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
		return resolveImage(g, image, false)
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
		return resolveImage(g, found, false)
	}
	return "", fmt.Errorf("%s: no instance %s of yours is running on this host (launch instance list)", image, name)
}
