package cli

import (
	"reflect"
	"testing"
)

// TestInspectArgs: -d after the word inspect is --deffile; before it, and
// for other commands, it stays the global --debug.
func TestInspectArgs(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{[]string{"inspect", "-d", "x.sif"}, []string{"inspect", "--deffile", "x.sif"}},
		{[]string{"-d", "inspect", "x.sif"}, []string{"-d", "inspect", "x.sif"}},
		{[]string{"-q", "inspect", "-l", "-d", "x.sif"}, []string{"-q", "inspect", "-l", "--deffile", "x.sif"}},
		{[]string{"inspect", "--", "-d"}, []string{"inspect", "--", "-d"}},
		{[]string{"exec", "-d", "x.sif", "true"}, []string{"exec", "-d", "x.sif", "true"}},
		{[]string{"-d", "exec", "x.sif", "inspect", "-d"}, []string{"-d", "exec", "x.sif", "inspect", "-d"}},
	} {
		if got := inspectArgs(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("inspectArgs(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
