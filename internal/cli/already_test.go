package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/cliutil"
)

// TestAlreadyOptions: every option of Apptainer's that launch already
// behaves as (the quiet entries of compatKeys) is accepted on the commands
// of its group, long and short, hidden from --help, and said at debug level.
func TestAlreadyOptions(t *testing.T) {
	n := 0
	for _, e := range compatKeys {
		if !e.quiet || e.dirVar != "" {
			continue
		}
		for _, cmd := range strings.Fields(e.group) {
			if cmd == groupAll {
				cmd = "exec"
			}
			spellings := []string{"--" + e.flag}
			if e.short != "" {
				spellings = append(spellings, "-"+e.short)
			}
			for _, sp := range spellings {
				n++
				t.Run(cmd+" "+sp, func(t *testing.T) {
					args := []string{cmd, sp, "--help"}
					if e.group == groupAll {
						args = []string{sp, cmd, "--help"}
					}
					var out, errs bytes.Buffer
					oci := forwarders()
					// A pull that parses its flags, as launch-oci's does.
					oci.Pull = func(cliutil.Globals) *cobra.Command {
						return &cobra.Command{Use: "pull", RunE: func(*cobra.Command, []string) error { return nil }}
					}
					g := &globals{stdout: &out, stderr: &errs, args: args, oci: oci}
					root := newRoot(g, cmd)
					root.SetArgs(args)
					c, err := root.ExecuteC()
					if err != nil {
						t.Fatalf("launch %s: %v", strings.Join(args, " "), err)
					}
					fl := c.Flags().Lookup(e.flag)
					if fl != nil && len(fl.Annotations[alreadyAnnotation]) == 0 {
						return // the command has the option of its own (build --fakeroot)
					}
					if fl == nil || !fl.Hidden {
						t.Errorf("launch %s: --%s is not a hidden option of %s", strings.Join(args, " "), e.flag, c.Name())
					}
					if strings.Contains(out.String(), "--"+e.flag) {
						t.Errorf("launch %s --help shows --%s", cmd, e.flag)
					}
				})
			}
		}
	}
	if n < 12 {
		t.Fatalf("only %d options checked: the quiet entries of compatKeys went missing", n)
	}
}

// TestGlobalArgs: Apptainer's -s before the command is --silent; after it,
// the command's own -s.
func TestGlobalArgs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"-s exec img true", "--silent exec img true"},
		{"-d -s exec img true", "-d --silent exec img true"},
		{"build -s out dir", "build -s out dir"},
		{"exec img -s", "exec img -s"},
		{"-- -s", "-- -s"},
	} {
		got := strings.Join(globalArgs(strings.Fields(tc.in)), " ")
		if got != tc.want {
			t.Errorf("globalArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
