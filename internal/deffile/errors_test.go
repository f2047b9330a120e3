package deffile

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestParseErrors: every error Parse reports, one line each, with the line
// it is about.
func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		name, text string
		args       map[string]string
		line       int
		msg        string
	}{
		// Not a definition file at all.
		{"empty", "", nil, 0, "empty definition file"},
		{"only comments", "# a\n\n   # b\n", nil, 0, "empty definition file"},
		{"NUL byte", "Bootstrap: docker\nFrom: a\x00\n", nil, 2, "contains a NUL byte: not a text file"},
		{"invalid UTF-8", "Bootstrap: docker\n\nFrom: \xff\n", nil, 3, "is not valid UTF-8"},
		{"byte-order mark", "\ufeffBootstrap: docker\n", nil, 1, "byte-order mark"},
		{"too large", "Bootstrap: scratch\n%post\n" + strings.Repeat("#\n", MaxSize/2), nil, 0, "is larger than 4 MiB"},
		{"build arg not text", head, map[string]string{"A": "\xff"}, 0, `build argument "A": the value is not text`},

		// Header.
		{"no Bootstrap", "From: alpine\n%post\n", nil, 1, `no Bootstrap header`},
		{"no Bootstrap after comments", "# c\n\nFrom: alpine\n", nil, 3, `no Bootstrap header`},
		{"sections only", "%post\n echo\n", nil, 1, "no Bootstrap header"},
		{"Bootstrap not first", "From: a\nBootstrap: docker\nFrom: a\n", nil, 1, "no Bootstrap header"},
		{"header line without colon", "Bootstrap: docker\nFrom: a\njust words\n", nil, 3, `header line "just words" is not "KEY: VALUE"`},
		{"unknown keyword", "Bootstrap: docker\nFrom: a\nColour: blue\n", nil, 3, `unknown header keyword "Colour"`},
		{"OtherURL needs digits", "Bootstrap: docker\nFrom: a\nOtherURL: x\n", nil, 3, `unknown header keyword "OtherURL"`},
		{"keyword with inner space", "Bootstrap: docker\nOS Version: 1\n", nil, 2, `unknown header keyword "OS Version"`},
		{"empty keyword", "Bootstrap: docker\n: x\n", nil, 2, `unknown header keyword ""`},

		// Agents.
		{"unknown agent", "Bootstrap: podman\n", nil, 1, `unknown bootstrap agent "podman"; launch builds from busybox, debootstrap, docker,`},
		{"agent in upper case", "Bootstrap: Docker\nFrom: a\n", nil, 1, `unknown bootstrap agent "Docker" (agent names are lower case)`},
		{"empty agent", "Bootstrap:\n", nil, 1, `unknown bootstrap agent ""`},
		{"unsupported agent", "# x\nBootstrap: library\nFrom: alpine\n", nil, 2, "Bootstrap: library is not supported: launch does not speak the Library API"},
		{"missing From", "Bootstrap: docker\n", nil, 1, "Bootstrap: docker needs a From header"},
		{"empty From", "Bootstrap: localimage\nFrom:   # nothing\n", nil, 1, "Bootstrap: localimage needs a From header"},
		{"debootstrap without MirrorURL", "Bootstrap: debootstrap\nOSVersion: bookworm\n", nil, 1, "Bootstrap: debootstrap needs a MirrorURL header"},
		{"second stage without From", "Bootstrap: scratch\nBootstrap: oci\n", nil, 2, "Bootstrap: oci needs a From header"},

		// Sections.
		{"unknown section", head + "%post\n x\n%postinstall\n y\n", nil, 5, `unknown section "%postinstall"`},
		{"unknown section keeps the spelling", head + "%Install\n", nil, 3, `unknown section "%Install"`},
		{"tab after the name", head + "%post\t-c /bin/bash\n", nil, 3, `unknown section "%post\t-c"`},
		{"indented section", head + "%post\n x\n  %runscript\n", nil, 5, `"%runscript" starts a section but is indented`},
		{"script line starting with %", head + "%post\n  %d items\n", nil, 4, `"%d" starts a section but is indented`},
		{"app section without name", head + "%apprun\n x\n", nil, 3, "%apprun needs an app name: %apprun NAME"},
		{"app section with only spaces", head + "%appinstall   \n", nil, 3, "%appinstall needs an app name"},
		{"app name with a slash", head + "%appinstall ../etc\n", nil, 3, `app name "../etc" is not usable`},
		{"app name dot-dot", head + "%appenv ..\n", nil, 3, `app name ".." is not usable`},
		{"app name with a tab", head + "%appenv a\tb\n", nil, 3, `app name "a\tb" is not usable`},
		{"post -c without shell", head + "%post -c # oops\n x\n", nil, 3, "%post: section argument -c needs a shell"},
		{"setup -c without shell", head + "%setup -c\n", nil, 3, "%setup: section argument -c needs a shell"},
		{"the last arguments count", head + "%post -c /bin/bash\n a\n%post -c\n b\n", nil, 5, "%post: section argument -c needs a shell"},

		// %files.
		{"files with a stray argument", head + "%files /etc\n a\n", nil, 3, `%files takes no argument or "from STAGE", not "/etc"`},
		{"files from without a stage", head + "%files from\n a\n", nil, 3, `not "from"`},
		{"files from two stages", head + "%files from a b\n", nil, 3, `not "from a b"`},
		{"unterminated quote", head + "%files\n  \"/a b\n", nil, 4, `%files line "\"/a b": unterminated " quote`},
		{"quote inside a word", head + "%files\n  /a\"b c\"\n", nil, 4, "a \" quote inside a word"},
		{"word after a closing quote", head + "%files\n  \"/a\"b\n", nil, 4, "a closing \" quote must end the word"},
		{"empty source", head + "%files\n  \"\" /b\n", nil, 4, "the source path is empty"},
		{"files from an unknown stage", head + "%files from nope\n a\n", nil, 3, "%files from nope: no stage is named nope"},
		{"files from a later stage", head + "Stage: one\n%files from two\n a\nBootstrap: scratch\nStage: two\n", nil, 4, "stage two is not built yet here"},
		{"files from itself", head + "Stage: one\n%files from one\n a\n", nil, 4, "a stage cannot copy files from itself"},
		{"duplicate stage names", "Bootstrap: scratch\nStage: a\nBootstrap: scratch\nStage: a\n", nil, 4, `stage name "a" is already used by the stage at line 1`},

		// Templating.
		{"variable without value", head + "%post\n  echo {{ NAME }}\n", nil, 4, "build variable NAME has no value: give --build-arg NAME=VALUE"},
		{"variable in the header", "Bootstrap: docker\nFrom: alpine:{{ TAG }}\n", nil, 2, "build variable TAG has no value"},
		{"default of another stage", "Bootstrap: scratch\n%arguments\n A=1\nBootstrap: scratch\n%post\n {{ A }}\n", nil, 6, "build variable A has no value"},
		{"after a multi-line placeholder", head + "%post\n {{ \nA }}\n%bogus\n", map[string]string{"A": "x"}, 6, `unknown section "%bogus"`},
		{"after a multi-line value", head + "%post\n {{ A }}\n%bogus\n", map[string]string{"A": "1\n2\n3"}, 5, `unknown section "%bogus"`},
		{"a value that starts a section", head + "%post\n{{ A }}\n", map[string]string{"A": "%bogus"}, 4, `unknown section "%bogus"`},
		{"a value that starts a stage", head + "%post\n{{ A }}: scratch\n", map[string]string{"A": "bootstrap"}, 4, `templating makes this line start with "bootstrap:"`},
		{"a value that breaks the header", "Bootstrap: docker\nFrom: {{ A }}\n", map[string]string{"A": "a\nb"}, 2, `header line "b" is not "KEY: VALUE"`},
		{"templating too large", head + "%arguments\n A=" + strings.Repeat("x", 1<<20) + "\n%post\n" + strings.Repeat("{{A}}", 5) + "\n", nil, 6, "filling {{ A }} makes the definition larger than 4 MiB"},
		{"nested templating too large", head + "%arguments\n A=" + strings.Repeat("x", 1<<20) + "\n B=# {{A}}{{A}}{{A}}{{A}}{{A}}\n%post\n{{B}}\n", nil, 7, "filling {{ B }} makes the definition larger"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := Parse("t.def", []byte(c.text), c.args)
			if err == nil {
				t.Fatalf("no error; stages %+v", d.Stages)
			}
			wantErr(t, err, c.line, c.msg)
		})
	}
}

// TestWarnings: what Apptainer accepts and launch mentions.
func TestWarnings(t *testing.T) {
	for _, c := range []struct {
		name, text string
		want       []string
	}{
		{"none", head + "%post\n x\n", nil},
		{"Fingerprints", "Bootstrap: localimage\nFrom: a.sif\nFingerprints: ABC\n", []string{"t.def:3: Fingerprints: launch does not verify SIF signatures yet; the base image is used unverified"}},
		{"bad %arguments line", head + "%arguments\n  A=1\n  not a pair\n  =x\n", []string{
			`t.def:5: %arguments line skipped: "not a pair" is not KEY=VALUE`,
			`t.def:6: %arguments line skipped: "=x" has no KEY before the =`}},
		{"repeated header", "Bootstrap: docker\nFrom: a\nFROM: b\n", []string{"t.def:3: header From given again (line 2): the last value is used"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := parse(t, c.text, nil)
			var got []string
			for _, w := range d.Warnings {
				got = append(got, w.String())
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

// TestErrorText: the one-line formats.
func TestErrorText(t *testing.T) {
	for _, c := range []struct {
		e    Error
		want string
	}{
		{Error{File: "a.def", Line: 3, Msg: "m"}, "a.def:3: m"},
		{Error{File: "a.def", Msg: "m"}, "a.def: m"},
		{Error{Msg: "m"}, "m"},
		{Error{Line: 2, Msg: "m"}, "line 2: m"},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.e, got, c.want)
		}
		if got := Warning(c.e).String(); got != c.want {
			t.Errorf("warning %+v: %q, want %q", c.e, got, c.want)
		}
	}
}

// TestLargeFiles: 1 MiB files that hit every per-section and
// per-placeholder path parse in linear time (a quadratic path would take
// minutes here).
func TestLargeFiles(t *testing.T) {
	const size = MaxSize / 4
	var apps, urls strings.Builder
	for i := 0; apps.Len() < size; i++ {
		fmt.Fprintf(&apps, "%%apprun a%d\n x\n", i)
	}
	for i := 0; urls.Len() < size; i++ {
		fmt.Fprintf(&urls, "OtherURL%d: u\n", i)
	}
	for _, c := range []struct{ name, text string }{
		{"many sections", head + strings.Repeat("%post\n x\n", size/9)},
		{"many files sections", head + strings.Repeat("%files\n a\n", size/10)},
		{"many apps", head + apps.String()},
		{"many header fields", head + urls.String()},
		{"many commented placeholders on one line", head + "%post\n# " + strings.Repeat("{{A}}", size/5)},
		{"many placeholders", head + "%arguments\nA=\n%post\n" + strings.Repeat("{{A}}", size/5)},
		{"many stages", strings.Repeat("Bootstrap: scratch\n", size/19)},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			if _, err := Parse("t.def", []byte(c.text), nil); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}
