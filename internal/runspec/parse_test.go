package runspec

import (
	"strings"
	"testing"
)

func TestParseOverlay(t *testing.T) {
	cases := []struct {
		in   string
		want Overlay
		err  string
	}{
		{"/o", Overlay{Dir: "/o"}, ""},
		{"/o/:ro", Overlay{Dir: "/o", ReadOnly: true}, ""},
		{"/o:rw", Overlay{Dir: "/o"}, ""},
		{"rel", Overlay{Dir: "/cwd/rel"}, ""},
		{"/a:b:ro", Overlay{Dir: "/a:b", ReadOnly: true}, ""},
		{"/o:rx", Overlay{}, `unknown option "rx"`},
		{":ro", Overlay{}, "empty directory"},
	}
	for _, c := range cases {
		got, err := ParseOverlay(c.in, "/cwd")
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseOverlay(%q) error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseOverlay(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func TestParseHome(t *testing.T) {
	cases := []struct {
		in   string
		want Home
		err  string
	}{
		{"/h", Home{Flag: "/h", Src: "/h", Dst: "/h"}, ""},
		{"/h:/home/me", Home{Flag: "/h:/home/me", Src: "/h", Dst: "/home/me"}, ""},
		{"rel/h", Home{Flag: "rel/h", Src: "/cwd/rel/h", Dst: "/cwd/rel/h"}, ""},
		{"/h//x/", Home{Flag: "/h//x/", Src: "/h//x/", Dst: "/h//x/"}, ""}, // cleaned where it is used
		{":/home/me", Home{}, `--home ":/home/me": empty source`},
		{"/h:rel", Home{}, "--home /h:rel: destination rel is not an absolute path"},
		{"/h:/proc", Home{}, "--home /h:/proc: cannot bind over /proc"},
		{"/h:/a/../b", Home{}, "contains '..'"},
	}
	for _, c := range cases {
		got, err := ParseHome(c.in, "/cwd")
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseHome(%q) error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseHome(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func TestParseWorkdir(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"/wd/", "/wd"},
		{"wd", "/cwd/wd"},
		{"../wd", "/wd"},
	} {
		if got := ParseWorkdir(c.in, "/cwd"); got != c.want {
			t.Errorf("ParseWorkdir(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
