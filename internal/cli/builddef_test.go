package cli

import (
	"slices"
	"strings"
	"testing"
)

func TestLooksLikeDef(t *testing.T) {
	for _, c := range []struct {
		text string
		want bool
	}{
		{"Bootstrap: docker\nFrom: alpine\n", true},
		{"# comment\n\n  bootstrap:scratch\n", true},
		{"%post\n true\n", true},
		{"hello\n", false},
		{"", false},
		{"\x7fELF\x02", false},
	} {
		if got := looksLikeDef([]byte(c.text)); got != c.want {
			t.Errorf("looksLikeDef(%q) = %v, want %v", c.text, got, c.want)
		}
	}
}

func TestBuildBinds(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name    string
		values  []string
		want    []string
		wantErr string
	}{
		{"none", nil, nil, ""},
		{"dest defaults to source", []string{dir}, []string{dir + ":" + dir}, ""},
		{"comma list, ro", []string{dir + ":/mnt:ro," + dir + ":/srv"}, []string{dir + ":/mnt:ro", dir + ":/srv"}, ""},
		{"missing source", []string{dir + "/nope:/mnt"}, nil, "nope"},
		{"bad option", []string{dir + ":/mnt:bogus"}, nil, "bogus"},
		{"root dest", []string{dir + ":/"}, nil, "--bind"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := buildBinds(c.values)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("buildBinds(%q) error %v, want one naming %q", c.values, err, c.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, c.want) {
				t.Errorf("buildBinds(%q) = %q, %v; want %q", c.values, got, err, c.want)
			}
		})
	}
}
