// Package signcli is the command line of the launch-sign helper: `launch
// key`, `launch sign`, `launch verify` (launch hands them over with their
// arguments) and the hidden verdict command the launch-time policy check
// runs on a cache miss (internal/imagetrust). It turns flags into calls of
// internal/keyring and internal/signing, asks for passphrases, and prints
// one FATAL line (exit 255) for any error.
package signcli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/launch-hpc/launch/internal/keyring"
	"github.com/launch-hpc/launch/internal/msg"
)

// Passphrase sources, for scripts and batch jobs.
const (
	EnvPassphrase     = "LAUNCH_KEY_PASSPHRASE"
	EnvPassphraseFile = "LAUNCH_KEY_PASSPHRASE_FILE"
)

// exitFailed is the status of a launcher error.
const exitFailed = 255

// app is what every command of the helper shares.
type app struct {
	stdout, stderr        io.Writer
	quiet, verbose, debug bool
}

func (a *app) log() *msg.Logger {
	switch {
	case a.debug:
		return msg.New(a.stderr, msg.Debug)
	case a.verbose:
		return msg.New(a.stderr, msg.Verbose)
	case a.quiet:
		return msg.New(a.stderr, msg.Quiet)
	}
	return msg.New(a.stderr, msg.Normal)
}

// Main runs the helper's command line args (without the program name) and
// returns the exit status.
func Main(args []string) int {
	a := &app{stdout: os.Stdout, stderr: os.Stderr}
	root := &cobra.Command{
		Use:           "launch",
		Short:         "Sign and verify SIF images, and manage the keys for it",
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	pf := root.PersistentFlags()
	pf.BoolVarP(&a.quiet, "quiet", "q", false, "print only errors")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "print what the launcher does")
	pf.BoolVarP(&a.debug, "debug", "d", false, "print everything")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%s: %w (see '%s --help')", c.CommandPath(), err, c.CommandPath())
	})
	root.AddCommand(NewKeyCmd(a), NewSignCmd(a), NewVerifyCmd(a), newVerdictCmd(a))
	root.SetArgs(args)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	if err := root.Execute(); err != nil {
		msg.Fatal(a.stderr, err)
		return exitFailed
	}
	return 0
}

// ring is the user's keyring.
func ring() (keyring.Ring, error) { return keyring.Default() }

// passphrase returns the passphrase: from $LAUNCH_KEY_PASSPHRASE, from the
// file $LAUNCH_KEY_PASSPHRASE_FILE (its first line), else asked on the
// terminal (twice when confirm). what names the key in the prompt.
func passphrase(what string, confirm bool) ([]byte, error) {
	if p, ok := os.LookupEnv(EnvPassphrase); ok {
		return []byte(p), nil
	}
	if f := os.Getenv(EnvPassphraseFile); f != "" {
		b, err := keyring.ReadBounded(f, true)
		if err != nil {
			return nil, fmt.Errorf("reading the passphrase (%s): %w", EnvPassphraseFile, err)
		}
		line, _, _ := bytes.Cut(b, []byte("\n"))
		return bytes.TrimSuffix(line, []byte("\r")), nil
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil || !term.IsTerminal(int(tty.Fd())) {
		if tty != nil {
			tty.Close()
		}
		return nil, fmt.Errorf("a passphrase is needed for %s and there is no terminal to ask it on: set %s or %s", what, EnvPassphrase, EnvPassphraseFile)
	}
	defer tty.Close()
	ask := func(prompt string) ([]byte, error) {
		fmt.Fprint(tty, prompt)
		b, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		return b, err
	}
	p, err := ask("Passphrase for " + what + ": ")
	if err != nil {
		return nil, fmt.Errorf("reading the passphrase: %w", err)
	}
	if confirm {
		q, err := ask("Again: ")
		if err != nil {
			return nil, fmt.Errorf("reading the passphrase: %w", err)
		}
		if !bytes.Equal(p, q) {
			return nil, errors.New("the passphrases differ")
		}
	}
	return p, nil
}

// askLine asks a question on the terminal; err when there is none.
func askLine(question string) (string, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil || !term.IsTerminal(int(tty.Fd())) {
		if tty != nil {
			tty.Close()
		}
		return "", errors.New("no terminal")
	}
	defer tty.Close()
	fmt.Fprint(tty, question)
	var b []byte
	one := make([]byte, 1)
	for len(b) < 1024 {
		n, err := tty.Read(one)
		if n == 0 || err != nil || one[0] == '\n' {
			break
		}
		b = append(b, one[0])
	}
	return strings.TrimSpace(string(b)), nil
}

// timeNow is the time keys are judged at.
func timeNow() time.Time { return time.Now() }
