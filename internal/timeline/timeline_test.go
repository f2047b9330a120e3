package timeline

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		value string
		on    bool
	}{
		{"", false},
		{"1", true},
		{"yes", true},
	} {
		t.Setenv(EnvVar, tc.value)
		if got := FromEnv("stage") != nil; got != tc.on {
			t.Errorf("%s=%q: on=%v, want %v", EnvVar, tc.value, got, tc.on)
		}
	}
}

func TestMark(t *testing.T) {
	var nilT *T
	nilT.Mark("nothing") // a nil timeline writes nothing and does not panic

	var buf bytes.Buffer
	tl := &T{w: &buf, role: "launcher", pid: "42"}
	before := Now()
	tl.Mark("clone")
	tl.Mark("stage-reaped")
	after := Now()

	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2: %q", len(lines), buf.String())
	}
	last := before
	for i, want := range []string{"clone", "stage-reaped"} {
		f := strings.Fields(lines[i])
		if len(f) != 5 || f[0] != Prefix || f[2] != "42" || f[3] != "launcher" || f[4] != want {
			t.Fatalf("line %d = %q, want %q MICROSECONDS 42 launcher %s", i, lines[i], Prefix, want)
		}
		us, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || us < last || us > after {
			t.Errorf("line %d: time %s not within [%d, %d] and in order", i, f[1], last, after)
		}
		last = us
	}
}
