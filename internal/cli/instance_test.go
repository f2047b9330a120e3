package cli

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRawFlags(t *testing.T) {
	for _, tc := range []struct {
		all, pos []string
		dash     bool
		want     string
	}{
		{[]string{"instance", "start", "img", "db"}, []string{"img", "db"}, false, ""},
		{[]string{"-d", "instance", "start", "-B", "/x", "--pid", "img", "db", "a", "-b"}, []string{"img", "db", "a", "-b"}, false, "-B /x --pid"},
		{[]string{"instance", "run", "-e", "--", "img", "db"}, []string{"img", "db"}, true, "-e"},
		{[]string{"instance", "start", "img", "db", "--", "-x"}, []string{"img", "db", "-x"}, true, ""},
		{[]string{"instance", "start", "-B", "/x", "img", "db", "a", "--", "-x"}, []string{"img", "db", "a", "-x"}, true, "-B /x"},
	} {
		got, err := rawFlags(tc.all, tc.pos, tc.dash)
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
