package regauth

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"golang.org/x/sys/unix"
)

// maxAnswer bounds what a prompt reads.
const maxAnswer = 4096

// Prompt asks for a user name (when user is "") and a password on the
// controlling terminal, the password without echo, and returns them.
func Prompt(what, user string) (Credential, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return Credential{}, fmt.Errorf("asking for the %s credentials: no terminal (give --docker-username and --docker-password, or run 'launch registry login' first)", what)
	}
	defer tty.Close()
	r := bufio.NewReader(io.LimitReader(tty, maxAnswer))
	if user == "" {
		fmt.Fprintf(tty, "Username for %s: ", what)
		if user, err = readLine(r); err != nil {
			return Credential{}, err
		}
		if user == "" {
			return Credential{}, errors.New("no user name given")
		}
	}
	fmt.Fprintf(tty, "Password / token for %s@%s: ", user, what)
	pass, err := readNoEcho(tty, r)
	fmt.Fprintln(tty)
	if err != nil {
		return Credential{}, err
	}
	if pass == "" {
		return Credential{}, errors.New("no password given")
	}
	return Credential{Username: user, Password: pass}, nil
}

// readNoEcho reads a line from the terminal tty with echo off.
func readNoEcho(tty *os.File, r *bufio.Reader) (string, error) {
	fd := int(tty.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	// Ctrl-C (or a TERM) while echo is off would leave the terminal
	// without echo: restore it first, then end as the signal would have.
	// The handler is in place before echo goes off.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM)
	done := make(chan struct{})
	defer func() {
		signal.Stop(sigs)
		close(done)
	}()
	go func() {
		select {
		case sig := <-sigs:
			unix.IoctlSetTermios(fd, unix.TCSETS, old) //nolint:errcheck
			fmt.Fprintln(tty)
			fmt.Fprintf(os.Stderr, "FATAL: %s\n", interrupted(sig))
			os.Exit(exitCode(sig))
		case <-done:
		}
	}()
	t := *old
	t.Lflag &^= unix.ECHO
	t.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old) //nolint:errcheck
	return readLine(r)
}

// interrupted says which signal ended the password prompt.
func interrupted(sig os.Signal) string {
	return fmt.Sprintf("interrupted (%v) while reading the password: nothing was saved", sig)
}

// exitCode is the status of a process ended by sig, as a shell shows it
// (128 + the signal's number: 130 for SIGINT, 143 for SIGTERM).
func exitCode(sig os.Signal) int {
	if s, ok := sig.(unix.Signal); ok {
		return 128 + int(s)
	}
	return 1
}

// ReadSecret reads a password from r (--password-stdin): its first line,
// at most maxAnswer bytes.
func ReadSecret(r io.Reader) (string, error) {
	s, err := readLine(bufio.NewReader(io.LimitReader(r, maxAnswer)))
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", errors.New("no password on standard input")
	}
	return s, nil
}

func readLine(r *bufio.Reader) (string, error) {
	s, err := r.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && s != "") {
		if errors.Is(err, io.EOF) {
			return "", nil
		}
		return "", fmt.Errorf("reading the answer: %w", err)
	}
	return strings.TrimRight(s, "\r\n"), nil
}
