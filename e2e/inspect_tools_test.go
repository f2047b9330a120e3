package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInspectToolsUnsquashfs: `launch inspect` of a SIF or SquashFS image
// reads it with the unsquashfs launch.conf names (tools.unsquashfs), not
// with whatever "unsquashfs" PATH finds: a wrapper named there records each
// call and runs the real one, and a name that does not exist is a FATAL
// naming it.
func TestInspectToolsUnsquashfs(t *testing.T) {
	real, err := exec.LookPath("unsquashfs")
	if err != nil {
		t.Skip("unsquashfs not installed")
	}
	imgs := images(t)
	for _, kind := range []string{"sif", "squashfs"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			log := filepath.Join(dir, "calls.log")
			wrapper := filepath.Join(dir, "my-unsquashfs")
			script := fmt.Sprintf("#!/bin/sh\necho \"$*\" >> %q\nexec %q \"$@\"\n", log, real)
			if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			conf := filepath.Join(dir, "launch.conf")
			if err := os.WriteFile(conf, []byte(fmt.Sprintf("[tools]\nunsquashfs = %q\n", wrapper)), 0o644); err != nil {
				t.Fatal(err)
			}
			r := launchWith(t, runOpts{Env: []string{"LAUNCH_CONF=" + conf}}, "inspect", "--all", imgs[kind])
			wantOK(t, r)
			if !strings.Contains(r.Stdout, "maintainer: hpc team") || !strings.Contains(r.Stdout, "echo hello from runscript") {
				t.Errorf("inspect --all printed %q", r.Stdout)
			}
			b, err := os.ReadFile(log)
			if err != nil {
				t.Fatalf("the unsquashfs of launch.conf was not run: %v", err)
			}
			calls := string(b)
			if !strings.Contains(calls, "-lc") || !strings.Contains(calls, "-cat") || !strings.Contains(calls, imgs[kind]) {
				t.Errorf("calls of the configured unsquashfs:\n%s\nwant a listing (-lc) and reads (-cat) of %s", calls, imgs[kind])
			}

			missing := filepath.Join(dir, "no-such-unsquashfs")
			if err := os.WriteFile(conf, []byte(fmt.Sprintf("[tools]\nunsquashfs = %q\n", missing)), 0o644); err != nil {
				t.Fatal(err)
			}
			wantFatal(t, launchWith(t, runOpts{Env: []string{"LAUNCH_CONF=" + conf}}, "inspect", imgs[kind]), missing)
		})
	}
}
