package cliutil

import (
	"testing"

	"github.com/spf13/cobra"
)

func TestArgs(t *testing.T) {
	root := &cobra.Command{Use: "launch"}
	c := &cobra.Command{Use: "sif"}
	root.AddCommand(c)
	cases := []struct {
		name string
		rule cobra.PositionalArgs
		args []string
		want string // "" for no error
	}{
		{"exact", ExactArgs(1, "a SIF file"), []string{"x"}, ""},
		{"exact, none", ExactArgs(1, "a SIF file"), nil, "launch sif needs a SIF file (got 0 arguments; see 'launch sif --help')"},
		{"exact, one too many", ExactArgs(0, "no arguments"), []string{"x"}, "launch sif needs no arguments (got 1 argument; see 'launch sif --help')"},
		{"min", MinArgs(2, "an image and a command"), []string{"a", "b", "c"}, ""},
		{"min, too few", MinArgs(2, "an image and a command"), []string{"a"}, "launch sif needs an image and a command (see 'launch sif --help')"},
	}
	for _, tc := range cases {
		err := tc.rule(c, tc.args)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestPlural(t *testing.T) {
	for n, want := range map[int]string{0: "s", 1: "", 2: "s"} {
		if got := Plural(n); got != want {
			t.Errorf("Plural(%d) = %q, want %q", n, got, want)
		}
	}
}
