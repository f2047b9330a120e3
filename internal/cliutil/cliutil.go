// Package cliutil is what the two command-line packages share:
// internal/cli (the commands of the launch binary) and internal/ocicli (the
// OCI commands of its launch-oci helper). It owns the view a command has of
// the command line around it (Globals), the argument-count rules with
// their messages, and the flags of pull and build (OCIFlags).
//
// It must not import internal/cli or internal/ocicli, and does no work of
// its own: no file system, no images, no network.
package cliutil

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/msg"
)

// Globals is what a command learns from the command line it runs in: the
// flags every command shares (-q, -v, -d), where to write, and the
// arguments as given.
type Globals interface {
	// Stdout is where commands print their results.
	Stdout() io.Writer
	// Stderr is where messages go.
	Stderr() io.Writer
	// Quiet reports -q.
	Quiet() bool
	// Verbose reports -v or -d.
	Verbose() bool
	// Log returns the logger for the level chosen on the command line.
	Log() *msg.Logger
	// Args is the command line without the program name, as launch got
	// it (it hands it to launch-oci unchanged).
	Args() []string
}

// ExactArgs is cobra.ExactArgs with an error that names the command and
// says what it wanted.
func ExactArgs(n int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s needs %s (got %d argument%s; see '%s --help')",
				c.CommandPath(), what, len(args), Plural(len(args)), c.CommandPath())
		}
		return nil
	}
}

// MinArgs is cobra.MinimumNArgs with a clear error.
func MinArgs(n int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) < n {
			return fmt.Errorf("%s needs %s (see '%s --help')", c.CommandPath(), what, c.CommandPath())
		}
		return nil
	}
}

// Plural is "s" unless n is 1.
func Plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// GroupOnly makes c a command that only groups others: alone it prints
// its help; an argument that names none of them fails with one line that
// names it and the commands c has.
func GroupOnly(c *cobra.Command) {
	c.Args = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		var names []string
		for _, s := range c.Commands() {
			if s.IsAvailableCommand() {
				names = append(names, s.Name())
			}
		}
		return fmt.Errorf("%s: unknown command %q (known: %s; see '%s --help')",
			c.CommandPath(), args[0], strings.Join(names, ", "), c.CommandPath())
	}
	c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
}
