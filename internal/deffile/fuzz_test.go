package deffile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics; it fails with one *Error line naming the
// file, or returns stages of supported agents whose stored and rendered
// texts read back to the same stages. The second input is the value of a
// build argument A.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.def")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "x")
	}
	for _, s := range []string{
		head + "%post\n {{ A }}\n",
		head + "%files\n \"a b\" 'c d'\n%labels\n K V\n%appfiles z\n s d\n",
		"Bootstrap: docker\nFrom: a\\n\\\n  b\\\nc\n%arguments\n B={{ A }}\n%runscript\n{{ B }}\n",
		"  Bootstrap: scratch\nbootstrap: scratch\nStage: s\nBOOTSTRAP: scratch\n%files from s\n x\n",
	} {
		f.Add([]byte(s), "%post\n")
	}
	f.Fuzz(func(t *testing.T, data []byte, value string) {
		d, err := Parse("f.def", data, map[string]string{"A": value})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.File != "f.def" || strings.Contains(err.Error(), "\n") ||
				e.Line < 0 || e.Line > bytes.Count(data, []byte("\n"))+1 {
				t.Fatalf("bad error %T %q", err, err)
			}
			return
		}
		if len(d.Stages) == 0 {
			t.Fatal("no stages and no error")
		}
		var raw []byte
		for _, st := range d.Stages {
			if a, ok := LookupAgent(st.Bootstrap()); !ok || !a.Supported {
				t.Fatalf("stage with agent %q", st.Bootstrap())
			}
			raw = append(raw, st.Raw...)
		}
		if !bytes.Equal(raw, d.Raw) || len(d.Raw) > MaxSize {
			t.Fatal("Raw is not the stages' texts")
		}
		for _, w := range d.Warnings {
			if strings.Contains(w.String(), "\n") {
				t.Fatalf("warning on two lines: %q", w)
			}
		}
		checkRoundTrip(t, d)
	})
}
