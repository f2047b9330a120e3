package paths

import "testing"

func TestWithinBelow(t *testing.T) {
	for _, c := range []struct {
		p, dir        string
		within, below bool
	}{
		{"/a", "/a", true, false},
		{"/a/b", "/a", true, true},
		{"/a/b/c", "/a", true, true},
		{"/ab", "/a", false, false},
		{"/a", "/ab", false, false},
		{"/a", "/a/b", false, false},
		{"/", "/", true, false},
		{"/a", "/", true, true},
		{"/a/b", "/", true, true},
		{"/a/", "/a", true, false},
		{"/a", "/a/", true, false},
		{"/a/b/", "/a/", true, true},
		{"/a//b", "/a", true, true},
		{"/a/./b", "/a", true, true},
		{"/a/../b", "/a", false, false},
		{"/a/b/..", "/a", true, false},
		{"/b", "/a/..", true, true},
		{"a/b", "a", true, true},
		{"a", "/a", false, false},
		{"/a", "a", false, false},
		{"ab", "a", false, false},
		{"/proc", "/proc", true, false},
		{"/proc/self", "/proc", true, true},
		{"/procfs", "/proc", false, false},
	} {
		if got := Within(c.p, c.dir); got != c.within {
			t.Errorf("Within(%q, %q) = %v, want %v", c.p, c.dir, got, c.within)
		}
		if got := Below(c.p, c.dir); got != c.below {
			t.Errorf("Below(%q, %q) = %v, want %v", c.p, c.dir, got, c.below)
		}
	}
}

func TestUserDir(t *testing.T) {
	for _, c := range []struct {
		home string
		elem []string
		want string
	}{
		{"/home/u", nil, "/home/u/.launch"},
		{"/home/u/", []string{"cache"}, "/home/u/.launch/cache"},
		{"/home/u", []string{"instances", "logs", "h"}, "/home/u/.launch/instances/logs/h"},
	} {
		if got := UserDir(c.home, c.elem...); got != c.want {
			t.Errorf("UserDir(%q, %q) = %q, want %q", c.home, c.elem, got, c.want)
		}
	}
}
