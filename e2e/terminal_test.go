package e2e

import (
	"bytes"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestShellUnderTerminal runs `launch shell` under a pseudo-terminal (util-linux
// script) and uses job control and Ctrl-C the way a person at a login node does.
func TestShellUnderTerminal(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("util-linux script is not installed")
	}
	img := busyboxImage(t, nil)
	cmd := exec.Command("script", "-qec", launchBin(t)+" shell "+img, "/dev/null")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	steps := []string{
		"sleep 300 &\n", "jobs\n", "kill %1\n", "wait\n",
		"sleep 301\n", "\x03", // Ctrl-C interrupts the foreground job only
		"echo tty=$(tty) after-interrupt\n", "exit 4\n",
	}
	for _, s := range steps {
		time.Sleep(300 * time.Millisecond)
		if _, err := io.WriteString(in, s); err != nil {
			t.Fatalf("writing %q: %v (output so far: %s)", s, err, out.String())
		}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if exitStatus(err) != 4 {
			t.Errorf("shell exit: %v, want status 4; output:\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("shell under a terminal did not finish; output:\n%s", out.String())
	}
	o := out.String()
	for _, want := range []string{"Running", "Terminated", "tty=/dev/pts/", "after-interrupt"} {
		if !strings.Contains(o, want) {
			t.Errorf("terminal output lacks %q:\n%s", want, o)
		}
	}
}
