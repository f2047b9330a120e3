package e2e

// scripts/cluster runs as root and acts on its run directory (reads the
// state, kills the pids named there, writes the munge key): it refuses one
// that another user could have made or can change, and never runs what its
// state file holds.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestClusterDirUntrusted: a run directory of another user's, a symbolic
// link, a group-writable one, or a state file with shell in it, and
// scripts/cluster stops with a message, having run nothing.
func TestClusterDirUntrusted(t *testing.T) {
	if !isRoot() {
		t.Skip("scripts/cluster runs as root only")
	}
	script, err := clusterScript()
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.MkdirTemp(sharedBase(), "launch-e2e-clusterdir.")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	mk := func(name string, mode os.FileMode) string {
		d := filepath.Join(base, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
		return d
	}
	foreign := mk("foreign", 0o755)
	if err := os.Chown(foreign, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	target := mk("target", 0o755)
	link := filepath.Join(base, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	groupw := mk("groupw", 0o775)
	under := filepath.Join(foreign, "run") // made by root, below another user's directory
	if err := os.Mkdir(under, 0o755); err != nil {
		t.Fatal(err)
	}
	shell := mk("shell", 0o755)
	pwned := filepath.Join(base, "pwned")
	if err := os.WriteFile(filepath.Join(shell, "state.env"), []byte("NODES=1\nNET=$(touch "+pwned+")\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	killed := exec.Command("sleep", "60")
	if err := killed.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = killed.Process.Kill(); _ = killed.Wait() }()
	if err := os.MkdirAll(filepath.Join(foreign, "ctld"), 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(foreign, "state.env"), []byte("NODES=1\n"), 0o644)
	_ = os.WriteFile(filepath.Join(foreign, "ctld", "slurmctld.pid"), []byte(strconv.Itoa(killed.Process.Pid)), 0o644)
	for _, tc := range []struct {
		dir, verb, want string
	}{
		{foreign, "down", "belongs to uid 65534, not root"},
		{foreign, "up", "belongs to uid 65534, not root"},
		{link, "status", "not a directory (symbolic link)"},
		{groupw, "status", "writable by group or others"},
		{under, "down", "belongs to uid 65534, not root"},
		{filepath.Join(foreign, "new"), "up", "its parent is not trusted"},
		{shell, "status", "unexpected line NET=$(touch"},
		{"relative/dir", "status", "want an absolute path"},
	} {
		cmd := exec.Command(script, tc.verb)
		cmd.Env = append(os.Environ(), "CLUSTER_DIR="+tc.dir)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("CLUSTER_DIR=%s scripts/cluster %s: %v, %q; want a failure saying %q", tc.dir, tc.verb, err, out, tc.want)
		}
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Errorf("scripts/cluster ran the shell in a state file")
	}
	if killed.ProcessState != nil || killed.Process.Signal(syscall.Signal(0)) != nil {
		t.Errorf("scripts/cluster killed the pid named in another user's run directory")
	}
}
