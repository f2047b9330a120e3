package mountplan

import (
	"strings"
	"testing"
)

func dests(p Plan) string {
	var out []string
	for _, op := range p.Ops {
		out = append(out, op.Name+":"+string(op.Kind)+":"+op.Dest)
	}
	return strings.Join(out, " ")
}

func TestBuild(t *testing.T) {
	base := "proc:bind:/proc sys:bind:/sys dev:bind:/dev tmp:bind:/tmp tmp:bind:/var/tmp passwd:file:/etc/passwd " +
		"group:file:/etc/group hosts:bind:/etc/hosts resolv:bind:/etc/resolv.conf localtime:bind:/etc/localtime"
	cases := []struct {
		name string
		spec Spec
		want string
		err  string
	}{
		{"defaults", Spec{Home: "/home/alice", Cwd: "/scratch/alice/run"},
			base + " home:bind:/home/alice cwd:bind:/scratch/alice/run", ""},
		{"cwd inside home is not bound twice", Spec{Home: "/home/alice", Cwd: "/home/alice/project"},
			base + " home:bind:/home/alice", ""},
		{"cwd inside tmp", Spec{Home: "/home/alice", Cwd: "/tmp/x"}, base + " home:bind:/home/alice", ""},
		{"cwd is root", Spec{Home: "/home/alice", Cwd: "/"}, base + " home:bind:/home/alice", ""},
		{"pid namespace gets a fresh proc", Spec{Home: "/root", Cwd: "/", PIDNamespace: true},
			strings.Replace(base, "proc:bind:/proc", "proc:proc:/proc", 1) + " home:bind:/root", ""},
		{"no-mount home,cwd,hosts", Spec{Home: "/home/alice", Cwd: "/data", Disabled: map[string]bool{"home": true, "cwd": true, "hosts": true}},
			strings.Replace(base, " hosts:bind:/etc/hosts", "", 1), ""},
		{"unknown no-mount", Spec{Disabled: map[string]bool{"homer": true}}, "", `unknown mount "homer"`},
		{"relative home", Spec{Home: "home/alice"}, "", "not an absolute path"},
		{"home is root", Spec{Home: "/", Cwd: "/"}, base, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Build(c.spec)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := dests(p); got != c.want {
				t.Errorf("plan\n got %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestReadOnlyDefaults(t *testing.T) {
	p, err := Build(Spec{Home: "/home/a", Cwd: "/"})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range p.Ops {
		wantRO := op.Name == "hosts" || op.Name == "resolv" || op.Name == "localtime"
		if op.ReadOnly != wantRO {
			t.Errorf("%s: ReadOnly=%v, want %v", op, op.ReadOnly, wantRO)
		}
	}
}
