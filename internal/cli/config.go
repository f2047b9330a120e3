package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/cliutil"
	"github.com/launch-hpc/launch/internal/config"
)

func newConfigCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "config",
		Short: "Show the site configuration",
	}
	cliutil.GroupOnly(c)
	c.AddCommand(&cobra.Command{
		Use:   "show",
		Short: "Print the effective configuration and where each value came from",
		Long: `Print every setting of launch.conf with its effective value, as TOML,
each followed by where it came from: the file and line that set it, or the
built-in default. The file is the one fixed at build time, or $` + config.ConfEnv + `.`,
		Args: cliutil.ExactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			l, err := config.LoadSite()
			if err != nil {
				return err
			}
			w := c.OutOrStdout()
			state := "read"
			if !l.Found {
				state = "not found: built-in defaults"
			}
			fmt.Fprintf(w, "# config file: %s (%s)\n", l.Path, state)
			table := ""
			for _, s := range l.Settings() {
				t, key, _ := strings.Cut(s.Key, ".")
				if t != table {
					fmt.Fprintf(w, "\n[%s]\n", t)
					table = t
				}
				fmt.Fprintf(w, "%s = %s  # %s\n", key, tomlValue(s.Value), s.Origin)
			}
			return nil
		},
	})
	return c
}

// tomlValue writes a config value the way it would be written in the file.
func tomlValue(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case []string:
		q := make([]string, len(x))
		for i, s := range x {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	default:
		return fmt.Sprint(x)
	}
}
