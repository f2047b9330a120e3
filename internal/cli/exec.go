package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

func newExecCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "exec", RunE: func(*cobra.Command, []string) error { return errors.New("PLACEHOLDER") }}
}
func newRunCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "run", RunE: func(*cobra.Command, []string) error { return errors.New("PLACEHOLDER") }}
}
func newShellCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "shell", RunE: func(*cobra.Command, []string) error { return errors.New("PLACEHOLDER") }}
}
