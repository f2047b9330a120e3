package deffile

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// normalize drops what a round trip through text may change: line numbers,
// the texts, defaults (the rendered %arguments are the templated ones) and
// header order (Render writes Bootstrap first).
func normalize(stages []Stage) []Stage {
	out := make([]Stage, len(stages))
	for i, st := range stages {
		st.Line, st.Raw, st.Original, st.Defaults = 0, nil, nil, nil
		h := append(Header(nil), st.Header...)
		for j := range h {
			h[j].Line = 0
		}
		sort.Slice(h, func(a, b int) bool { return h[a].Key < h[b].Key })
		st.Header = h
		for _, s := range []*Script{&st.Pre, &st.Setup, &st.Post, &st.Environment, &st.Runscript,
			&st.Startscript, &st.Test, &st.Help, &st.Arguments} {
			s.Line = 0
		}
		st.Files = append([]FileSet(nil), st.Files...)
		for j := range st.Files {
			st.Files[j].Line = 0
			st.Files[j].Entries = noLines(st.Files[j].Entries)
		}
		st.Labels = noLabelLines(st.Labels)
		st.Apps = append([]App(nil), st.Apps...)
		for j := range st.Apps {
			a := &st.Apps[j]
			a.Line = 0
			for _, s := range []*Script{&a.Install, &a.Run, &a.Start, &a.Test, &a.Env, &a.Help} {
				s.Line = 0
			}
			a.Files = noLines(a.Files)
			a.Labels = noLabelLines(a.Labels)
		}
		out[i] = st
	}
	return out
}

func noLines(es []FileEntry) []FileEntry {
	var out []FileEntry
	for _, e := range es {
		e.Line = 0
		out = append(out, e)
	}
	return out
}

func noLabelLines(ls []Label) []Label {
	var out []Label
	for _, l := range ls {
		l.Line = 0
		out = append(out, l)
	}
	return out
}

// checkRoundTrip checks that Render's text and the stored Raw text parse
// back to the same stages (when no placeholder is left in them to fill).
func checkRoundTrip(t *testing.T, d *Definition) {
	t.Helper()
	want := normalize(d.Stages)
	for _, text := range [][]byte{d.Render(), d.Raw} {
		if bytes.Contains(text, []byte("{{")) {
			continue
		}
		again, err := Parse("again.def", text, nil)
		if err != nil {
			t.Fatalf("text does not parse again: %v\n%s", err, text)
		}
		if got := normalize(again.Stages); !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip differs:\n got %+v\nwant %+v\ntext:\n%s", got, want, text)
		}
	}
}

// TestRenderRoundTrip: every testdata file renders to text that reads
// back the same.
func TestRenderRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.def")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	args := map[string]string{"BASE": "b.sif", "file_text": "t", "first_value": "f"}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			checkRoundTrip(t, load(t, filepath.Base(f), args))
		})
	}
}

// TestRenderHeaderValues: values that need continuation lines survive.
func TestRenderHeaderValues(t *testing.T) {
	for _, v := range []string{
		"plain", "", "a\nb", "a\n", "\n", "\nb", "a\n\nb", `a\`, `a\` + "\nb", `x\n`, `x\n` + "\ny", `a\\`, "a \nb",
	} {
		st := Stage{Header: Header{{Key: "bootstrap", Value: "scratch"}, {Key: "stage", Value: v}}}
		text := st.Render()
		d, err := Parse("t.def", text, nil)
		if err != nil {
			t.Errorf("%q: %v\n%s", v, err, text)
			continue
		}
		if got := d.Stages[0].Name(); got != v {
			t.Errorf("%q renders as %q and reads back as %q", v, text, got)
		}
	}
}

// TestRenderText: a definition made in code (a build from a URI) renders
// the way Apptainer writes one, with the spellings of the keyword table; a
// parsed one gives its stored text.
func TestRenderText(t *testing.T) {
	d := &Definition{Stages: []Stage{{Header: Header{{Key: "from", Value: "alpine"}, {Key: "bootstrap", Value: "docker"}}}}}
	if got := string(d.Text()); got != "Bootstrap: docker\nFrom: alpine\n\n" {
		t.Errorf("Text = %q", got)
	}
	st := Stage{
		Header:    Header{{Key: "bootstrap", Value: "docker"}, {Key: "from", Value: "a"}, {Key: "otherurl3", Value: "u"}},
		Post:      Script{Args: "-c /bin/bash", Body: "echo hi"},
		Runscript: Script{Body: "exec app\n"},
		Labels:    []Label{{Key: "A", Value: "1"}, {Key: "B"}},
		Files: []FileSet{{Entries: []FileEntry{{Src: "/a b", Dst: `"q"`}, {Src: "#x"}, {Src: "%y", Dst: "/z"}}},
			{Args: "from s", From: "s", Entries: []FileEntry{{Src: "/o"}}}},
		Apps: []App{{Name: "x", Run: Script{Body: " r\n"}, Files: []FileEntry{{Src: "s", Dst: "d e"}}, Labels: []Label{{Key: "K", Value: "V"}}}},
	}
	want := "Bootstrap: docker\nFrom: a\nOtherURL3: u\n\n" +
		"%labels\n    A 1\n    B\n" +
		"%files\n    \"/a b\" '\"q\"'\n    \"#x\"\n    \"%y\" /z\n%files from s\n    /o\n" +
		"%runscript\nexec app\n%post -c /bin/bash\necho hi\n" +
		"%apprun x\n r\n%applabels x\n    K V\n%appfiles x\n    s d e\n"
	if got := string(st.Render()); got != want {
		t.Errorf("Render =\n%s\nwant\n%s", got, want)
	}
	src, err := os.ReadFile("testdata/comments.def")
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, string(src), nil)
	if got := string(p.Text()); !strings.HasPrefix(got, "Bootstrap: docker\n") || !strings.HasSuffix(string(src), got) {
		t.Errorf("Text of a parsed file = %q", got)
	}
}
