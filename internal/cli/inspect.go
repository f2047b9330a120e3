package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

func newInspectCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "inspect", RunE: func(*cobra.Command, []string) error { return errors.New("PLACEHOLDER") }}
}
