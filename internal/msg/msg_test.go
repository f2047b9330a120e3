package msg

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
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

func TestFatalClipsLongWords(t *testing.T) {
	long := "/tmp/" + strings.Repeat("a", 5000) + "/file"
	wide := strings.Repeat("é", 300) // two bytes each
	cases := []struct {
		name, err string
		want      func(string) bool
	}{
		{"long path", "cannot read " + long + ": file name too long", func(s string) bool {
			return strings.HasPrefix(s, "FATAL:   cannot read /tmp/aaa") && strings.Contains(s, "aaa...aaa") &&
				strings.HasSuffix(s, "a/file: file name too long\n") && len(s) < 2*keepWord+80
		}},
		{"short words kept", "a " + strings.Repeat("b", maxWord) + " c", func(s string) bool {
			return s == "FATAL:   a "+strings.Repeat("b", maxWord)+" c\n"
		}},
		{"utf-8 kept whole", "x " + wide, func(s string) bool { return utf8.ValidString(s) && strings.Contains(s, "é...é") }},
		{"many words", strings.Repeat("word ", 1000), func(s string) bool {
			return len(s) < maxMessage+20 && strings.Contains(s, " ... ") && strings.HasPrefix(s, "FATAL:   word word")
		}},
	}
	for _, c := range cases {
		var b strings.Builder
		Fatal(&b, errors.New(c.err))
		if !c.want(b.String()) || strings.Count(b.String(), "\n") != 1 {
			t.Errorf("%s: Fatal printed %q", c.name, b.String())
		}
	}
	var b strings.Builder
	New(&b, Normal).Warnf("unsquashfs: %s", long)
	if b.Len() > 2*keepWord+60 || !strings.HasPrefix(b.String(), "WARNING: unsquashfs: /tmp/aaa") {
		t.Errorf("Warnf printed %q", b.String())
	}
}

func TestOneLine(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"one line", "one line"},
		{"  keeps  no  inner  runs \t", "keeps no inner runs"},
		{"mksquashfs: failed\n\n  disk full\r\n", "mksquashfs: failed disk full"},
		{"\n\t\n", ""},
	} {
		if got := OneLine(c.in); got != c.want {
			t.Errorf("OneLine(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
