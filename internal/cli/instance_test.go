package cli

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRawFlags(t *testing.T) {
	for _, tc := range []struct {
		all, pos []string
		want     string
	}{
		{[]string{"instance", "start", "img", "db"}, []string{"img", "db"}, ""},
		{[]string{"-d", "instance", "start", "-B", "/x", "--pid", "img", "db", "a", "-b"}, []string{"img", "db", "a", "-b"}, "-B /x --pid"},
		{[]string{"instance", "run", "-e", "--", "img", "db"}, []string{"img", "db"}, "-e --"},
	} {
		got, err := rawFlags(tc.all, tc.pos)
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("rawFlags(%q, %q) = %q, %v; want %q", tc.all, tc.pos, got, err, tc.want)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want unix.Signal
	}{{"TERM", unix.SIGTERM}, {"sigint", unix.SIGINT}, {"SIGKILL", unix.SIGKILL}, {"10", unix.Signal(10)}, {"NOPE", 0}, {"0", 0}, {"65", 0}} {
		got, err := parseSignal(tc.in)
		if (err == nil) != (tc.want != 0) || got != tc.want {
			t.Errorf("parseSignal(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}
