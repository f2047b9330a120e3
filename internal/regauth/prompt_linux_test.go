package regauth

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// promptChildEnv makes the test binary a child that asks for a password.
const promptChildEnv = "LAUNCH_TEST_PROMPT_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(promptChildEnv) != "" {
		_, err := Prompt("registry.example.org", "alice")
		fmt.Fprintln(os.Stderr, "prompt returned:", err)
		os.Exit(3)
	}
	os.Exit(m.Run())
}

// openPty opens a new pseudo-terminal: its master and its slave.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("opening the pty's slave: %v", err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// TestPromptSignalRestoresEcho: a SIGINT or SIGTERM while the password is
// read with echo off turns echo back on, says so in one line and ends the
// process with 128 + the signal.
func TestPromptSignalRestoresEcho(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			master, slave := openPty(t)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), promptChildEnv+"=1")
			cmd.Stdin, cmd.Stdout = slave, slave
			var stderr strings.Builder
			cmd.Stderr = &stderr
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill() //nolint:errcheck
			// Wait for the prompt, then until echo is off.
			r := bufio.NewReader(master)
			got := make(chan error, 1)
			go func() {
				_, err := r.ReadString(':')
				got <- err
			}()
			select {
			case err := <-got:
				if err != nil {
					t.Fatalf("reading the prompt: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("no password prompt")
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
				if err != nil {
					t.Fatal(err)
				}
				if tio.Lflag&unix.ECHO == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("echo never went off")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
				t.Fatalf("child ended with %v, want exit status %d; stderr %q", err, tc.code, stderr.String())
			}
			tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
			if err != nil {
				t.Fatal(err)
			}
			if tio.Lflag&unix.ECHO == 0 {
				t.Error("echo is still off after the signal")
			}
			if lines := strings.Split(strings.TrimSpace(stderr.String()), "\n"); len(lines) != 1 ||
				!strings.HasPrefix(lines[0], "FATAL: interrupted") {
				t.Errorf("stderr %q, want one FATAL line", stderr.String())
			}
		})
	}
}
