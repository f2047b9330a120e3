package deffile

import (
	"reflect"
	"strings"
	"testing"
)

const head = "Bootstrap: docker\nFrom: alpine\n"

// TestEverySectionName: each section of the table lands where it belongs,
// the name compared in any case and with any number of leading %.
func TestEverySectionName(t *testing.T) {
	for name, kind := range sections {
		for _, spelled := range []string{"%" + name, "%" + strings.ToUpper(name), "%%" + name} {
			arg := ""
			if kind == kindApp {
				arg = " myapp"
			}
			text := head + spelled + arg + "\n    SRC DST\n"
			st := parse(t, text, nil).Stages[0]
			switch kind {
			case kindScript, kindArgs:
				if s := st.script(name); s.Body != "    SRC DST\n" || s.Line != 3 {
					t.Errorf("%s: %+v", spelled, *s)
				}
			case kindFiles:
				if !reflect.DeepEqual(st.Files, []FileSet{{Line: 3, Entries: []FileEntry{{Src: "SRC", Dst: "DST", Line: 4}}}}) {
					t.Errorf("%s: %+v", spelled, st.Files)
				}
			case kindLabels:
				if !reflect.DeepEqual(st.Labels, []Label{{"SRC", "DST", 4}}) {
					t.Errorf("%s: %+v", spelled, st.Labels)
				}
			case kindApp:
				if len(st.Apps) != 1 || st.Apps[0].Name != "myapp" || st.Apps[0].Line != 3 {
					t.Fatalf("%s: apps %+v", spelled, st.Apps)
				}
				a := st.Apps[0]
				switch name {
				case "appfiles":
					if !reflect.DeepEqual(a.Files, []FileEntry{{Src: "SRC", Dst: "DST", Line: 4}}) {
						t.Errorf("%s: %+v", spelled, a.Files)
					}
				case "applabels":
					if !reflect.DeepEqual(a.Labels, []Label{{"SRC", "DST", 4}}) {
						t.Errorf("%s: %+v", spelled, a.Labels)
					}
				default:
					if s := a.script(name); s.Body != "    SRC DST\n" || s.Line != 3 {
						t.Errorf("%s: %+v", spelled, *s)
					}
				}
			}
		}
	}
}

// TestScriptSections covers what Apptainer does with script bodies:
// repeated sections appended, arguments, comments kept, line ends.
func TestScriptSections(t *testing.T) {
	for _, c := range []struct {
		name, text string
		post       Script
	}{
		{"comments and blank lines kept", "%post\n  # comment\n\n  echo # not a comment to sh either\n\n",
			Script{Body: "  # comment\n\n  echo # not a comment to sh either\n\n", Line: 3}},
		{"no final newline", "%post\necho hi", Script{Body: "echo hi\n", Line: 3}},
		{"CRLF line ends", "%post\r\n echo hi\r\n", Script{Body: " echo hi\n", Line: 3}},
		{"empty", "%post\n", Script{Line: 3}},
		{"arguments verbatim", "%post -c /bin/bash  # why\n x\n", Script{Args: "-c /bin/bash  # why", Body: " x\n", Line: 3}},
		{"repeated sections appended", "%post\n a\n%runscript\n r\n%post\n b\n", Script{Body: " a\n b\n", Line: 3}},
		{"later arguments replace earlier", "%post -c /bin/sh\n a\n%post -c /bin/bash\n b\n%post\n c\n",
			Script{Args: "-c /bin/bash", Body: " a\n b\n c\n", Line: 3}},
		{"a bad -c replaced later is fine", "%post -c\n a\n%post -c /bin/bash\n b\n", Script{Args: "-c /bin/bash", Body: " a\n b\n", Line: 3}},
		{"a trailing space clears the arguments", "%post -c /bin/bash\n a\n%post \n b\n", Script{Body: " a\n b\n", Line: 3}},
		{"a % later in a line is text", "%post\n  printf '%s\\n' x\n", Script{Body: "  printf '%s\\n' x\n", Line: 3}},
		{"heredoc text at column 1", "%post\ncat <<EOF >f\nline: with colon\nEOF\n", Script{Body: "cat <<EOF >f\nline: with colon\nEOF\n", Line: 3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := parse(t, head+c.text, nil).Stages[0]
			if st.Post != c.post {
				t.Errorf("%%post = %+v, want %+v", st.Post, c.post)
			}
		})
	}
}

// TestFilesSections covers %files words, quoting and merging.
func TestFilesSections(t *testing.T) {
	for _, c := range []struct {
		name, body string
		want       []FileEntry
		warn       string
	}{
		{"src only", "  /a\n", []FileEntry{{Src: "/a", Line: 4}}, ""},
		{"src dst", "\t/a\t/b  \n", []FileEntry{{Src: "/a", Dst: "/b", Line: 4}}, ""},
		{"double quotes", `  "/a b" "/c d"` + "\n", []FileEntry{{Src: "/a b", Dst: "/c d", Line: 4}}, ""},
		{"single quotes", `  '/a b' /c` + "\n", []FileEntry{{Src: "/a b", Dst: "/c", Line: 4}}, ""},
		{"quotes keep the other quote", `  "it's" 'say "hi"'` + "\n", []FileEntry{{Src: "it's", Dst: `say "hi"`, Line: 4}}, ""},
		{"globs are words", "  /opt/*.so /lib/\n", []FileEntry{{Src: "/opt/*.so", Dst: "/lib/", Line: 4}}, ""},
		{"comments and blanks skipped", "\n  # c\n  /a\n\n", []FileEntry{{Src: "/a", Line: 6}}, ""},
		{"trailing comment", "  /a /b # why\n", []FileEntry{{Src: "/a", Dst: "/b", Line: 4}}, ""},
		{"extra words warned", "  /a /b /c\n", []FileEntry{{Src: "/a", Dst: "/b", Line: 4}}, `t.def:4: %files line "/a /b /c": words after SRC DST are ignored`},
		{"a # inside a word is text", "  /a#1 /b\n", []FileEntry{{Src: "/a#1", Dst: "/b", Line: 4}}, ""},
		{"a dst starting with # is a path, as in Apptainer", "  /a #b\n", []FileEntry{{Src: "/a", Dst: "#b", Line: 4}}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := parse(t, head+"%files\n"+c.body, nil)
			if !reflect.DeepEqual(d.Stages[0].Files[0].Entries, c.want) {
				t.Errorf("entries = %+v, want %+v", d.Stages[0].Files[0].Entries, c.want)
			}
			if (c.warn == "") != (len(d.Warnings) == 0) || (c.warn != "" && !strings.HasPrefix(d.Warnings[0].String(), c.warn)) {
				t.Errorf("warnings = %v, want %q", d.Warnings, c.warn)
			}
		})
	}

	// Sections with the same argument text merge, in order of first
	// appearance, as Apptainer's copy order depends on it.
	text := "Bootstrap: scratch\nStage: s\nBootstrap: scratch\n" +
		"%files\n a\n%files from s\n b\n%files #x\n c\n%files\n d\n%files FROM s\n e\n%files from s\n f\n"
	got := parse(t, text, nil).Stages[1].Files
	want := []FileSet{
		{Line: 4, Entries: []FileEntry{{Src: "a", Line: 5}, {Src: "d", Line: 11}}},
		{Args: "from s", From: "s", Line: 6, Entries: []FileEntry{{Src: "b", Line: 7}, {Src: "f", Line: 15}}},
		{Args: "#x", Line: 8, Entries: []FileEntry{{Src: "c", Line: 9}}},
		{Args: "FROM s", From: "s", Line: 12, Entries: []FileEntry{{Src: "e", Line: 13}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Files = %+v\nwant %+v", got, want)
	}
}

// TestLabelsAndAppFiles: Apptainer's line rules for %labels, %applabels
// and %appfiles.
func TestLabelsAndAppFiles(t *testing.T) {
	d := parse(t, head+"%labels\n  A 1\n  B  two words \n  C\n\n  # no\n  A again\n  Tab\tkey v\n"+
		"%appfiles x\n  src dst with space # comment\n  only\n  # no\n", nil)
	st := d.Stages[0]
	want := []Label{{"A", "1", 4}, {"B", "two words", 5}, {"C", "", 6}, {"A", "again", 9}, {"Tab\tkey", "v", 10}}
	if !reflect.DeepEqual(st.Labels, want) {
		t.Errorf("Labels = %+v", st.Labels)
	}
	if m := LabelMap(st.Labels); m["A"] != "again" || len(m) != 4 {
		t.Errorf("LabelMap = %v", m)
	}
	if len(d.Warnings) != 1 || !strings.HasPrefix(d.Warnings[0].String(), `t.def:10: label name "Tab\tkey" contains white space`) {
		t.Errorf("warnings = %v", d.Warnings)
	}
	wantFiles := []FileEntry{{Src: "src", Dst: "dst with space", Line: 12}, {Src: "only", Line: 13}}
	if !reflect.DeepEqual(st.Apps[0].Files, wantFiles) {
		t.Errorf("appfiles = %+v", st.Apps[0].Files)
	}
}

// TestAppSections: app order, repeated sections, arguments.
func TestAppSections(t *testing.T) {
	d := parse(t, head+"%apprun b\n rb\n%appinstall a\n ia\n%apprun  b\n rb2\n%appinstall a -c /bin/bash\n ia2\n", nil)
	apps := d.Stages[0].Apps
	if len(apps) != 2 || apps[0].Name != "b" || apps[1].Name != "a" {
		t.Fatalf("apps = %+v", apps)
	}
	if apps[0].Run != (Script{Body: " rb\n rb2\n", Line: 3}) || apps[1].Install != (Script{Body: " ia\n ia2\n", Line: 5}) {
		t.Errorf("apps = %+v", apps)
	}
	if len(d.Warnings) != 1 || d.Warnings[0].String() != "t.def:9: %appinstall a: words after the app name are ignored, as in Apptainer" {
		t.Errorf("warnings = %v", d.Warnings)
	}
}

// TestCommandAndShebang: how build-time and runtime scripts are run.
// (%test -c is no error: Apptainer writes it into the test script's #!.)
func TestCommandAndShebang(t *testing.T) {
	for _, c := range []struct {
		args string
		want []string
	}{
		{"", []string{"/bin/sh", "-ex", "/s"}},
		{"# comment", []string{"/bin/sh", "-ex", "/s"}},
		{"-u", []string{"/bin/sh", "-ex", "-u", "/s"}},
		{"-c /bin/bash", []string{"/bin/sh", "-ex", "-c", "/bin/bash /s"}},
		{"-c /bin/bash -eu # strict", []string{"/bin/sh", "-ex", "-c", "/bin/bash -eu /s"}},
		{"-x -c python3", []string{"/bin/sh", "-ex", "-x", "-c", "python3 /s"}},
	} {
		got, err := Script{Args: c.args}.Command("/s")
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("Command(%q) = %q, %v; want %q", c.args, got, err, c.want)
		}
	}
	if _, err := (Script{Args: "-c"}).Command("/s"); err == nil {
		t.Error("Command(-c) without a shell: no error")
	}
	if st := parse(t, head+"%test -c\n x\n", nil).Stages[0]; st.Test.Args != "-c" {
		t.Errorf("%%test -c: %+v", st.Test)
	}
	for _, c := range []struct {
		s            Script
		interp, body string
	}{
		{Script{Body: " echo hi\n"}, "#!/bin/sh", " echo hi\n"},
		{Script{Body: "  #!/bin/bash\n echo hi\n"}, "#!/bin/bash", " echo hi\n"},
		{Script{Body: "\n\n#!/usr/bin/env python3\nprint(1)\n"}, "#!/usr/bin/env python3", "print(1)\n"},
		{Script{Body: " echo hi\n#!/bin/bash\n"}, "#!/bin/sh", " echo hi\n#!/bin/bash\n"},
		{Script{Args: "-e # strict", Body: "x\n"}, "#!/bin/sh -e ", "x\n"},
		{Script{Body: "#!/bin/zsh"}, "#!/bin/zsh", ""},
	} {
		interp, body := c.s.Shebang()
		if interp != c.interp || body != c.body {
			t.Errorf("Shebang(%+v) = %q, %q; want %q, %q", c.s, interp, body, c.interp, c.body)
		}
	}
}
