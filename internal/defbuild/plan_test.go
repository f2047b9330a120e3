package defbuild

import (
	"reflect"
	"testing"

	"github.com/launch-hpc/launch/internal/deffile"
)

func TestPlan(t *testing.T) {
	cases := []struct {
		name   string
		text   string
		noTest bool
		want   []Kind
	}{
		{"scratch only", "Bootstrap: scratch\n", false, []Kind{Bootstrap, Metadata}},
		{"every section", "Bootstrap: scratch\n%pre\n true\n%setup\n true\n%files\n a /a\n%post\n true\n%test\n true\n", false,
			[]Kind{Pre, Bootstrap, Setup, CopyHost, Post, Metadata, Test}},
		{"notest", "Bootstrap: scratch\n%test\n true\n", true, []Kind{Bootstrap, Metadata}},
		{"multi-stage", "Bootstrap: scratch\nStage: one\n%test\n true\nBootstrap: scratch\n%files from one\n /a /b\n%files\n c /c\n", false,
			[]Kind{Bootstrap, Metadata, Bootstrap, CopyFrom, CopyHost, Metadata}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := deffile.Parse("t.def", []byte(c.text), nil)
			if err != nil {
				t.Fatal(err)
			}
			steps, err := Plan(d, PlanOptions{NoTest: c.noTest})
			if err != nil {
				t.Fatal(err)
			}
			var got []Kind
			for _, s := range steps {
				got = append(got, s.Kind)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestPlanFromStage(t *testing.T) {
	d, err := deffile.Parse("t.def", []byte("Bootstrap: scratch\nStage: one\nBootstrap: scratch\n%files from one\n /a /b\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	steps, _ := Plan(d, PlanOptions{})
	if s := steps[3]; s.Kind != CopyFrom || s.From != 0 || s.Stage != 1 || s.Line != 4 {
		t.Errorf("CopyFrom step: %+v", s)
	}
}

func TestPlanApps(t *testing.T) {
	cases := []struct {
		name, text string
		want       []Kind
		postLine   int
	}{
		{"run only", "Bootstrap: scratch\n%apprun foo\n echo\n", []Kind{Bootstrap, Apps, Metadata}, 0},
		{"install without post", "Bootstrap: scratch\n%apprun foo\n echo\n%appinstall foo\n true\n", []Kind{Bootstrap, Apps, Post, Metadata}, 4},
		{"install and post", "Bootstrap: scratch\n%appinstall foo\n true\n%post\n true\n", []Kind{Bootstrap, Apps, Post, Metadata}, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := deffile.Parse("t.def", []byte(c.text), nil)
			if err != nil {
				t.Fatal(err)
			}
			steps, err := Plan(d, PlanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var got []Kind
			for _, s := range steps {
				got = append(got, s.Kind)
				if s.Kind == Post && s.Line != c.postLine {
					t.Errorf("Post step at line %d, want %d", s.Line, c.postLine)
				}
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}
