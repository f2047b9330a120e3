package cli

import "testing"

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
