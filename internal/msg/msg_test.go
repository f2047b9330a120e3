package msg

import (
	"errors"
	"strings"
	"testing"
)

func TestFatalIsOneLine(t *testing.T) {
	cases := []struct{ err, want string }{
		{"image x.sif does not exist", "FATAL:   image x.sif does not exist\n"},
		{"keeps  inner  spaces", "FATAL:   keeps  inner  spaces\n"},
		{"unknown command \"exce\" for \"launch\"\n\nDid you mean this?\n\texec\n", "FATAL:   unknown command \"exce\" for \"launch\" Did you mean this? exec\n"},
		{"mksquashfs failed:\n  disk full  \n", "FATAL:   mksquashfs failed: disk full\n"},
	}
	for _, c := range cases {
		var b strings.Builder
		Fatal(&b, errors.New(c.err))
		if b.String() != c.want {
			t.Errorf("Fatal(%q) printed %q, want %q", c.err, b.String(), c.want)
		}
	}
}
