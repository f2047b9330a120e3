package cli

import (
	"strings"
	"testing"

	"github.com/launch-hpc/launch/internal/container"
)

func TestParseOverlay(t *testing.T) {
	cases := []struct {
		in   string
		want container.Overlay
		err  string
	}{
		{"/o", container.Overlay{Dir: "/o"}, ""},
		{"/o/:ro", container.Overlay{Dir: "/o", ReadOnly: true}, ""},
		{"/o:rw", container.Overlay{Dir: "/o"}, ""},
		{"rel", container.Overlay{Dir: "/cwd/rel"}, ""},
		{"/a:b:ro", container.Overlay{Dir: "/a:b", ReadOnly: true}, ""},
		{"/o:rx", container.Overlay{}, `unknown option "rx"`},
		{":ro", container.Overlay{}, "empty directory"},
	}
	for _, c := range cases {
		got, err := parseOverlay(c.in, "/cwd")
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseOverlay(%q) error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("parseOverlay(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}
