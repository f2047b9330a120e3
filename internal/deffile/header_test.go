package deffile

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// parse parses text as "t.def" with args, failing the test on error.
func parse(t *testing.T, text string, args map[string]string) *Definition {
	t.Helper()
	d, err := Parse("t.def", []byte(text), args)
	if err != nil {
		t.Fatalf("Parse(%q): %v", text, err)
	}
	return d
}

// TestHeaderKeywords: every keyword of the table is accepted in any case,
// as Apptainer compares them in lower case.
func TestHeaderKeywords(t *testing.T) {
	keys := []string{"OtherURL0", "otherurl12"}
	for k := range headerKeywords {
		if k != "bootstrap" && k != "from" {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		for _, spelled := range []string{k, strings.ToUpper(k), strings.ToUpper(k[:1]) + k[1:]} {
			text := fmt.Sprintf("bootstrap: docker\nFROM: alpine\n%s:   some value  \n", spelled)
			st := parse(t, text, nil).Stages[0]
			if v, ok := st.Header.Get(k); !ok || v != "some value" {
				t.Errorf("%s: Get(%q) = %q, %v", spelled, k, v, ok)
			}
			if f := st.Header[2]; f.Key != strings.ToLower(k) || f.Line != 3 {
				t.Errorf("%s: field = %+v", spelled, f)
			}
		}
	}
}

// TestHeaderValues covers comments, white space and continuation lines.
func TestHeaderValues(t *testing.T) {
	for _, c := range []struct {
		name, header string
		want         string // From's value
	}{
		{"plain", "From: alpine:3.20", "alpine:3.20"},
		{"spaces around the colon", "From   :    alpine  ", "alpine"},
		{"indented", "    From: alpine", "alpine"},
		{"colon in value", "From: localhost:5000/alpine:3.20", "localhost:5000/alpine:3.20"},
		{"comment cut", "From: alpine # the small one", "alpine"},
		{"hash cuts even inside a value", "From: alpine#digest", "alpine"},
		{"continuation", "From: local\\\n   host/alpine", "localhost/alpine"},
		{"continuation with \\n", "From: a\\n\\\n  b", "a\nb"},
		{"continuation over three lines", "From: a\\\nb\\\nc", "abc"},
		{"continuation cut by a blank line keeps the value", "From: a\\\n\nStage: x", "a"},
		{"continuation cut by a comment", "From: a\\\n# note\nStage: x", "a"},
		{"continuation at the end of the header", "From: a\\\n%post\n", "a"},
		{"continuation line with a colon", "From: a\\\nb:c", "ab:c"},
		{"last value wins", "From: one\nFrom: two", "two"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := parse(t, "Bootstrap: docker\n"+c.header+"\n", nil).Stages[0]
			if got, _ := st.Header.Get("from"); got != c.want {
				t.Errorf("From = %q, want %q", got, c.want)
			}
		})
	}
}

// TestHeaderOrderAndWarnings: fields keep file order; a repeated one keeps
// its first place and line, with a warning.
func TestHeaderOrderAndWarnings(t *testing.T) {
	d := parse(t, "Bootstrap: docker\nFrom: a\nStage: s\nfrom: b\n", nil)
	want := Header{{"bootstrap", "docker", 1}, {"from", "b", 2}, {"stage", "s", 3}}
	if !reflect.DeepEqual(d.Stages[0].Header, want) {
		t.Errorf("Header = %+v", d.Stages[0].Header)
	}
	if len(d.Warnings) != 1 || d.Warnings[0].String() != "t.def:4: header From given again (line 2): the last value is used" {
		t.Errorf("warnings = %v", d.Warnings)
	}
}

// TestStageSplitting: stages start where Apptainer starts them, at a line
// beginning with "bootstrap:" in any case.
func TestStageSplitting(t *testing.T) {
	for _, c := range []struct {
		name, text string
		agents     []string
		post       string // the first stage's %post body
	}{
		{"indented first Bootstrap", "  Bootstrap: docker\n  From: a\n", []string{"docker"}, ""},
		{"comments before", "# c\n\n# d\nBootstrap: docker\nFrom: a\n", []string{"docker"}, ""},
		{"header keys before Bootstrap go to it when indented", "From: a\n  Bootstrap: docker\n", []string{"docker"}, ""},
		{"lower case splits", "Bootstrap: docker\nFrom: a\n%post\n  x\nbootstrap: scratch\n", []string{"docker", "scratch"}, "  x\n"},
		{"indented Bootstrap inside a section does not split", "Bootstrap: docker\nFrom: a\n%post\n  Bootstrap: scratch\n", []string{"docker"}, "  Bootstrap: scratch\n"},
		{"space before the colon does not split", "Bootstrap: docker\nFrom: a\n%post\nBootstrap : scratch\n", []string{"docker"}, "Bootstrap : scratch\n"},
		{"a header without sections", "Bootstrap: docker\nFrom: a\nBootstrap: scratch\n", []string{"docker", "scratch"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := parse(t, c.text, nil)
			var agents []string
			for _, st := range d.Stages {
				agents = append(agents, st.Bootstrap())
			}
			if !reflect.DeepEqual(agents, c.agents) || d.Stages[0].Post.Body != c.post {
				t.Errorf("agents %v, post %q", agents, d.Stages[0].Post.Body)
			}
		})
	}
}

// TestAgentsTable: every agent of the table is accepted or refused with a
// line naming it; the required headers are enforced.
func TestAgentsTable(t *testing.T) {
	full := "From: x\nOSVersion: v\nMirrorURL: m\n"
	for _, a := range agents {
		_, err := Parse("t.def", []byte("Bootstrap: "+a.Name+"\n"+full), nil)
		if a.Supported {
			if err != nil {
				t.Errorf("%s: %v", a.Name, err)
			}
			for _, req := range a.Required {
				var without []string
				for _, l := range strings.Split(full, "\n") {
					if !strings.HasPrefix(strings.ToLower(l), req+":") {
						without = append(without, l)
					}
				}
				_, err := Parse("t.def", []byte("Bootstrap: "+a.Name+"\n"+strings.Join(without, "\n")), nil)
				name, _ := lookupHeader(req)
				wantErr(t, err, 1, "Bootstrap: "+a.Name+" needs a "+name+" header")
			}
			continue
		}
		wantErr(t, err, 1, "Bootstrap: "+a.Name+" is not supported: "+a.Why)
	}
	if got := SupportedAgents(); !reflect.DeepEqual(got, []string{"busybox", "debootstrap", "docker", "docker-archive", "localimage", "oci", "oci-archive", "scratch"}) {
		t.Errorf("SupportedAgents = %v", got)
	}
}

// wantErr checks that err is one *Error line "t.def:LINE: ..." containing
// msg (LINE 0: "t.def: ...").
func wantErr(t *testing.T, err error, line int, msg string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Errorf("error %v (%T), want *Error at line %d: %s", err, err, line, msg)
		return
	}
	s := err.Error()
	prefix := fmt.Sprintf("t.def:%d: ", line)
	if line == 0 {
		prefix = "t.def: "
	}
	if !strings.HasPrefix(s, prefix) || !strings.Contains(s, msg) || strings.Contains(s, "\n") || e.Line != line {
		t.Errorf("error %q, want %q...%q on one line", s, prefix, msg)
	}
}
