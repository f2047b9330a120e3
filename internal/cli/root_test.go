package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func TestCommandName(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"exec", "img", "true"}, "exec"},
		{[]string{"-q", "--verbose", "-d", "run", "img"}, "run"},
		{[]string{"--quiet=false", "version"}, "version"},
		{[]string{"-vd", "sif", "list", "x.sif"}, "sif"},
		{[]string{"--help"}, ""},
		{[]string{"--", "exec"}, ""},
		{[]string{"help", "exec"}, "help"},
		{[]string{"exce", "img"}, "exce"},
	}
	for _, c := range cases {
		if got := commandName(c.args); got != c.want {
			t.Errorf("commandName(%q) = %q, want %q", c.args, got, c.want)
		}
	}
}

// TestRootFlagsAreBool guards commandName: a root flag that takes a value
// would make its value look like the subcommand.
func TestRootFlagsAreBool(t *testing.T) {
	root := newRoot(&globals{oci: forwarders()}, "")
	root.PersistentFlags().VisitAll(func(f *pflag.Flag) {
		if f.NoOptDefVal == "" {
			t.Errorf("root flag --%s takes a value: commandName must learn to skip it", f.Name)
		}
	})
	root.Flags().VisitAll(func(f *pflag.Flag) {
		if f.NoOptDefVal == "" {
			t.Errorf("root flag --%s takes a value: commandName must learn to skip it", f.Name)
		}
	})
}

// TestCommandTable checks that the table of commands names each command as
// the full tree does, and that a tree of one command has it exactly as the
// full tree does (same flags, same subcommands).
func TestCommandTable(t *testing.T) {
	g := &globals{oci: forwarders()}
	full := newRoot(g, "")
	for _, c := range commands(g) {
		sub, _, err := full.Find([]string{c.names[0]})
		if err != nil || sub == full {
			t.Errorf("command %q of the table is not in the full tree", c.names[0])
			continue
		}
		if got := append([]string{sub.Name()}, sub.Aliases...); !slices.Equal(got, c.names) {
			t.Errorf("table names %q, the command calls itself %q", c.names, got)
		}
		for _, name := range c.names {
			one := newRoot(g, name)
			if len(one.Commands()) != 1 {
				t.Fatalf("newRoot(%q) has %d commands, want 1", name, len(one.Commands()))
			}
			if a, b := describe(one.Commands()[0]), describe(sub); a != b {
				t.Errorf("newRoot(%q) makes\n%s\nthe full tree has\n%s", name, a, b)
			}
		}
	}
}

// describe lists a command's path, flags and subcommands, recursively.
func describe(c *cobra.Command) string {
	var b strings.Builder
	b.WriteString(c.CommandPath() + ":")
	c.Flags().VisitAll(func(f *pflag.Flag) { b.WriteString(" --" + f.Name + "=" + f.DefValue) })
	b.WriteString("\n")
	for _, s := range c.Commands() {
		b.WriteString(describe(s))
	}
	return b.String()
}

// TestMainRunsOneCommandTree runs commands through MainWith both ways (a
// known command, which builds a tree of one, and help, which builds all).
func TestMainRunsOneCommandTree(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"version"}, "launch version "},
		{[]string{"-q", "version"}, "launch version "},
		{[]string{"exec", "--help"}, "Run COMMAND from IMAGE"},
		{[]string{"help"}, "Available Commands:"},
		{[]string{"--help"}, "Available Commands:"},
	} {
		out := captureMain(t, c.args)
		if !strings.Contains(out, c.want) {
			t.Errorf("launch %q printed %q, want it to contain %q", c.args, out, c.want)
		}
	}
	// The full list in help names every command.
	out := captureMain(t, []string{"help"})
	for _, c := range commands(&globals{oci: forwarders()}) {
		if !strings.Contains(out, "\n  "+c.names[0]+" ") {
			t.Errorf("help does not list %q:\n%s", c.names[0], out)
		}
	}
}

// captureMain runs the command line args and returns what it printed; it
// fails the test on a non-zero exit status.
func captureMain(t *testing.T, args []string) string {
	t.Helper()
	var out, errOut strings.Builder
	if rc := run(&globals{stdout: &out, stderr: &errOut, args: args, oci: forwarders()}); rc != 0 {
		t.Fatalf("launch %q: exit status %d, stderr %q", args, rc, errOut.String())
	}
	return out.String() + errOut.String()
}
