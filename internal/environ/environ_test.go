package environ

import (
	"reflect"
	"strings"
	"testing"
)

func TestBuild(t *testing.T) {
	host := []string{"HOME=/home/a", "FOO=host", "PATH=/host/bin", "LD_LIBRARY_PATH=/host/lib", "PS1=$ ",
		"TERM=xterm", "SLURM_PROCID=3", "PYTHONPATH=/mods", "LAUNCHENV_FOO=prefixed", "LAUNCHENV_BAR=b",
		"APPTAINERENV_BAR=apptainer", "APPTAINERENV_ONLY=a", "LAUNCHENV_PREPEND_PATH=/pre", "NOEQUALS"}
	cases := []struct {
		name     string
		req      Request
		base     []string
		override string // overrides joined by space
		err      string
	}{
		{"host passes in except image-owned and prefixed",
			Request{Host: host},
			[]string{"HOME=/home/a", "FOO=host", "TERM=xterm", "SLURM_PROCID=3", "PYTHONPATH=/mods"},
			"BAR=b FOO=prefixed PREPEND_PATH=/pre", ""},
		{"compat prefixes below LAUNCHENV_",
			Request{Host: host, Compat: true},
			[]string{"HOME=/home/a", "FOO=host", "TERM=xterm", "SLURM_PROCID=3", "PYTHONPATH=/mods"},
			"BAR=apptainer ONLY=a BAR=b FOO=prefixed PREPEND_PATH=/pre", ""},
		{"cleanenv keeps the listed names and prefixes",
			Request{Host: host, Cleanenv: true, Keep: []string{"HOME", "TERM", "SLURM_*"}},
			[]string{"HOME=/home/a", "TERM=xterm", "SLURM_PROCID=3", "LANG=C"},
			"BAR=b FOO=prefixed PREPEND_PATH=/pre", ""},
		{"cleanenv keeps a LANG the site keeps",
			Request{Host: []string{"LANG=de_DE.UTF-8", "LC_ALL=de_DE.UTF-8"}, Cleanenv: true, Keep: []string{"LANG"}},
			[]string{"LANG=de_DE.UTF-8"}, "", ""},
		{"precedence: LAUNCHENV_ < env-file < --env, path edits last",
			Request{Host: []string{"LAUNCHENV_X=1"}, Files: [][]Var{{{"X", "2"}, {"APPEND_PATH", "/app"}}}, Flags: []string{"X=3,Y=a,b", "Z="}},
			nil, "X=1 X=2 X=3 Y=a,b Z= APPEND_PATH=/app", ""},
		{"SINGULARITYENV_ < APPTAINERENV_ whatever the host order",
			Request{Host: []string{"APPTAINERENV_X=app", "SINGULARITYENV_X=sing"}, Compat: true},
			nil, "X=sing X=app", ""},
		{"Apptainer's settings stay out with compat, as Apptainer keeps them out",
			Request{Host: []string{"LAUNCH_MARK=1", "APPTAINER_CACHEDIR=/a", "SINGULARITY_TMPDIR=/s", "APPTAINERX=1"}, Compat: true},
			[]string{"LAUNCH_MARK=1", "APPTAINERX=1"}, "", ""},
		{"without compat Apptainer's are plain variables",
			Request{Host: []string{"LAUNCH_TMPDIR=/t", "APPTAINER_CACHEDIR=/a"}},
			[]string{"LAUNCH_TMPDIR=/t", "APPTAINER_CACHEDIR=/a"}, "", ""},
		{"reserved names", Request{Flags: []string{"__launch_n=3"}}, nil, "", "__launch_n: names starting with __launch_ are reserved"},
		{"bad LAUNCHENV_ name", Request{Host: []string{"LAUNCHENV_1X=1"}}, nil, "", `LAUNCHENV_1X: "1X" is not a valid variable name`},
		{"empty LAUNCHENV_ name", Request{Host: []string{"LAUNCHENV_=1"}}, nil, "", "not a valid variable name"},
		{"bad --env", Request{Flags: []string{"no-equals"}}, nil, "", `--env "no-equals"`},
		{"bad --env name", Request{Flags: []string{"A-B=1"}}, nil, "", "valid variable name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := Build(c.req)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Base, c.base) {
				t.Errorf("base %q, want %q", res.Base, c.base)
			}
			var ov []string
			for _, v := range res.Overrides {
				ov = append(ov, v.String())
			}
			if got := strings.Join(ov, " "); got != c.override {
				t.Errorf("overrides %q, want %q", got, c.override)
			}
		})
	}
}

func TestApply(t *testing.T) {
	env := []string{"PATH=/usr/bin", "A=1"}
	got := Apply(env, []Var{{"A", "2"}, {"B", "x y"}, {PrependPath, "/pre"}, {AppendPath, "/app"}})
	want := []string{"A=2", "B=x y", "PATH=/pre:/usr/bin:/app"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParseFile(t *testing.T) {
	cases := []struct {
		name, body string
		want       string
		err        string
	}{
		{"forms", "# comment\n\nA=1\nexport B=two\n  C='x y $Z'\nD=\"a \\\"q\\\" \\$HOME \\n\" # note\nE=\nF=v # c\nG=w\t# tab before the comment\nH=x#y\n",
			`A=1 B=two C=x y $Z D=a "q" $HOME \n E= F=v G=w H=x#y`, ""},
		{"missing equals", "A=1\nJUSTAWORD\n", "", "line 2: \"JUSTAWORD\" is not NAME=VALUE"},
		{"bad name", "1A=x\n", "", "line 1: \"1A\" is not a valid variable name"},
		{"unquoted space", "A=b c\n", "", "line 1: A: value \"b c\" holds whitespace"},
		{"unterminated", "A=\"open\n", "", "line 1: A: unterminated double quote"},
		{"unterminated single", "A='open\n", "", "unterminated single quote"},
		{"trailing junk", "A='x' y\n", "", "unexpected \"y\""},
		{"quote inside", "A=it's\n", "", "quote inside"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vars, err := ParseFile("f.env", []byte(c.body))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.HasPrefix(err.Error(), "env file f.env ") {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range vars {
				got = append(got, v.String())
			}
			if strings.Join(got, " ") != c.want {
				t.Errorf("got %q\nwant %q", strings.Join(got, " "), c.want)
			}
		})
	}
}

// FuzzParseFile checks the env-file parser never panics, reports errors on
// one line, and only yields valid names.
func FuzzParseFile(f *testing.F) {
	for _, s := range []string{"A=1\n", "export B='x'\n", "C=\"a\\\"b\"\n", "# c\n\nD=\n", "E=\"open", "1=2"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		vars, err := ParseFile("f", data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		for _, v := range vars {
			if !ValidName(v.Name) {
				t.Fatalf("invalid name %q accepted", v.Name)
			}
		}
	})
}

// FuzzParseFlag checks --env parsing: only valid names, errors on one line.
func FuzzParseFlag(f *testing.F) {
	for _, s := range []string{"A=1", "A=1,B=2", "A=1,2,B=3", "=x", "A"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		vars, err := ParseFlag(s)
		if err != nil {
			return
		}
		for _, v := range vars {
			if !ValidName(v.Name) {
				t.Fatalf("invalid name %q from %q", v.Name, s)
			}
		}
	})
}
