package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

func newSifCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "sif", RunE: func(*cobra.Command, []string) error { return errors.New("PLACEHOLDER") }}
}
