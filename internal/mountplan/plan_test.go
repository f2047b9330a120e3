package mountplan

import (
	"path/filepath"
	"slices"
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
		{"-H src:dst", Spec{Home: "/home/alice", HomeSrc: "/scratch/alice/h", HomeDst: "/home/alice", HomeGiven: true, Cwd: "/"},
			base + " home:bind:/home/alice", ""},
		{"-H with relative dst", Spec{Home: "/home/alice", HomeSrc: "/x", HomeDst: "y", Cwd: "/"}, "", "not an absolute path"},
		{"contain", Spec{Home: "/home/alice", Cwd: "/data", Contain: true},
			"proc:bind:/proc sys:bind:/sys dev:tmpfs:/dev dev:bind:/dev/null dev:bind:/dev/zero dev:bind:/dev/full " +
				"dev:bind:/dev/random dev:bind:/dev/urandom dev:bind:/dev/tty dev:devpts:/dev/pts dev:symlink:/dev/ptmx " +
				"dev:tmpfs:/dev/shm dev:symlink:/dev/fd dev:symlink:/dev/stdin dev:symlink:/dev/stdout dev:symlink:/dev/stderr " +
				"tmp:tmpfs:/tmp tmp:tmpfs:/var/tmp passwd:file:/etc/passwd group:file:/etc/group hosts:bind:/etc/hosts " +
				"resolv:bind:/etc/resolv.conf localtime:bind:/etc/localtime home:tmpfs:/home/alice", ""},
		{"contain keeps an explicit home", Spec{Home: "/home/alice", HomeGiven: true, Contain: true, Cwd: "/",
			Disabled: map[string]bool{"dev": true, "tmp": true, "passwd": true, "group": true, "hosts": true, "resolv": true, "localtime": true}},
			"proc:bind:/proc sys:bind:/sys home:bind:/home/alice", ""},
		{"system then user binds, user last", Spec{Home: "/home/alice", Cwd: "/",
			System: []BindSpec{{Source: "/opt/site", Dest: "/opt/site", ReadOnly: true}},
			Binds:  []BindSpec{{Source: "/scratch/alice", Dest: "/scratch"}, {Source: "/data", Dest: "/data"}}},
			base + " home:bind:/home/alice system:bind:/opt/site bind:bind:/scratch bind:bind:/data", ""},
		{"no-mount bind-paths leaves out every site bind", Spec{Home: "/home/alice", Cwd: "/",
			System:   []BindSpec{{Source: "/opt/site", Dest: "/opt/site"}, {Source: "/apps", Dest: "/apps"}},
			Binds:    []BindSpec{{Source: "/data", Dest: "/data"}},
			Disabled: map[string]bool{"bind-paths": true}},
			base + " home:bind:/home/alice bind:bind:/data", ""},
		{"no-mount a site bind's destination", Spec{Home: "/home/alice", Cwd: "/",
			System:   []BindSpec{{Source: "/opt/site", Dest: "/opt/site"}, {Source: "/apps", Dest: "/apps"}},
			Disabled: map[string]bool{"/opt/site/": true, "/elsewhere": true}},
			base + " home:bind:/home/alice system:bind:/apps", ""},
		{"no-mount hostfs changes nothing", Spec{Home: "/home/alice", Cwd: "/", Disabled: map[string]bool{"hostfs": true}},
			base + " home:bind:/home/alice", ""},
		{"no-mount devpts under contain", Spec{Home: "/home/alice", HomeGiven: true, Cwd: "/", Contain: true,
			Disabled: map[string]bool{"devpts": true, "tmp": true}},
			"proc:bind:/proc sys:bind:/sys dev:tmpfs:/dev dev:bind:/dev/null dev:bind:/dev/zero dev:bind:/dev/full dev:bind:/dev/random " +
				"dev:bind:/dev/urandom dev:bind:/dev/tty dev:tmpfs:/dev/shm dev:symlink:/dev/fd dev:symlink:/dev/stdin dev:symlink:/dev/stdout " +
				"dev:symlink:/dev/stderr passwd:file:/etc/passwd group:file:/etc/group hosts:bind:/etc/hosts resolv:bind:/etc/resolv.conf " +
				"localtime:bind:/etc/localtime home:bind:/home/alice", ""},
		{"devices after system binds, before user binds", Spec{Home: "/root", Cwd: "/",
			System:  []BindSpec{{Source: "/opt/site", Dest: "/opt/site"}},
			Devices: []DeviceMount{{Source: "/usr/lib/libcuda.so.550", Dest: "/.singularity.d/libs/libcuda.so.1", ReadOnly: true}, {Source: "/usr/bin/nvidia-smi", Dest: "/usr/bin/nvidia-smi", IfAbsent: true}},
			Binds:   []BindSpec{{Source: "/data", Dest: "/.singularity.d/libs/libcuda.so.1"}}},
			base + " home:bind:/root system:bind:/opt/site device:bind:/.singularity.d/libs/libcuda.so.1 device:bind:/usr/bin/nvidia-smi bind:bind:/.singularity.d/libs/libcuda.so.1", ""},
		{"scratch tmpfs before user binds", Spec{Home: "/root", Cwd: "/", Scratch: []string{"/s/a/", "/b"}, ScratchSize: "1g",
			Binds: []BindSpec{{Source: "/data", Dest: "/b"}}},
			base + " home:bind:/root scratch:tmpfs:/s/a scratch:tmpfs:/b bind:bind:/b", ""},
		{"scratch and contain under a workdir", Spec{Home: "/root", HomeGiven: true, Cwd: "/", Contain: true, Workdir: "/wd", Scratch: []string{"/out/run"},
			Disabled: map[string]bool{"dev": true, "passwd": true, "group": true, "hosts": true, "resolv": true, "localtime": true}},
			"proc:bind:/proc sys:bind:/sys tmp:bind:/tmp tmp:bind:/var/tmp home:bind:/root scratch:bind:/out/run", ""},
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

func TestParseBinds(t *testing.T) {
	cases := []struct {
		value string
		want  string // BindSpec strings joined by space
		err   string
	}{
		{"/data", "/data:/data", ""},
		{"/data:/mnt", "/data:/mnt", ""},
		{"/data:/mnt:ro", "/data:/mnt:ro", ""},
		{"/data:/mnt:rw,/opt:/opt:ro", "/data:/mnt /opt:/opt:ro", ""},
		{"/data:/mnt:rw,ro", "/data:/mnt:ro", ""},
		{"/data:/mnt:ro,rw,/opt", "/data:/mnt:ro /opt:/opt", ""},
		{"/data,ro", "/data:/data /work/ro:/work/ro", ""}, // no OPTS field: ro is a path
		{"/data:/mnt,rw", "/data:/mnt /work/rw:/work/rw", ""},
		{"/a.img:/b:image-src=/x", "", "bind option image-src= (a directory from inside an image file) is not supported yet"},
		{"/a.img:/b:ro,id=2", "", "bind option id= "},
		{" /a , ,/b/../c ", "/a:/a /c:/c", ""},
		{"rel/dir:/in", "/work/rel/dir:/in", ""},
		{"/a:/b/", "/a:/b", ""},
		{"/a:rel", "", "not an absolute path"},
		{"/a:/b/../etc", "", "contains '..'"},
		{"/a:/b:rx", "", `unknown bind option "rx"`},
		{"/a:/b:ro:x", "", "too many ':'"},
		{"/a:/proc", "", "cannot bind over /proc"},
		{"/x:/proc", "", "--bind /x:/proc: cannot bind over /proc"}, // moved from TestBuild: Build no longer checks again
		{"/a:/proc/sys", "", "cannot bind under /proc"},
		{"/a:/dev", "", "cannot bind over /dev"},
		{"/a:/", "", "cannot bind over /"},
		{":/b", "", "empty source"},
	}
	for _, c := range cases {
		t.Run(c.value, func(t *testing.T) {
			bs, err := ParseBinds(c.value, "/work", "--bind")
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.HasPrefix(err.Error(), "--bind ") {
					t.Fatalf("error %v, want --bind … %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range bs {
				got = append(got, b.String())
			}
			if strings.Join(got, " ") != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestParseMount(t *testing.T) {
	cases := []struct {
		value string
		want  string
		err   string
	}{
		{"type=bind,src=/a,dst=/b", "/a:/b", ""},
		{"type=bind,source=/a:1,destination=/b:2,ro", "/a:1:/b:2:ro", ""},
		{`type=bind,"src=/a,b",dst=/c,readonly=true`, "/a,b:/c:ro", ""},
		{"type=bind,src=/a,target=/b,ro=false", "/a:/b", ""},
		{"type=bind,src=/a", "/a:/a", ""},
		{"type=tmpfs,dst=/b", "", "type=tmpfs is not supported"},
		{"src=/a,dst=/b", "", "type= is not supported"},
		{"type=bind,dst=/b", "", "no src="},
		{"type=bind,src=/a,dst=/b,ro=maybe", "", "want true or false"},
		{"type=bind,src=/a,dst=/b,propagation=shared", "", `unknown field "propagation"`},
		{`type=bind,"src=/a`, "", "--mount"},
		{"type=bind,src=/a,dst=/b/../c", "", "contains '..'"},
	}
	for _, c := range cases {
		t.Run(c.value, func(t *testing.T) {
			b, err := ParseMount(c.value, "/work")
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.String() != c.want {
				t.Errorf("got %q, want %q", b.String(), c.want)
			}
		})
	}
}

// checkParsedBind fails t unless b is a bind the plan can use: an absolute,
// clean source and a destination that passes CheckDest, neither with a ".."
// component (a name such as "0..000" is allowed).
func checkParsedBind(t *testing.T, v string, b BindSpec) {
	t.Helper()
	if err := CheckDest(b.Dest); err != nil {
		t.Fatalf("%q gave bad dest %q: %v", v, b.Dest, err)
	}
	for _, p := range []string{b.Source, b.Dest} {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p || slices.Contains(strings.Split(p, "/"), "..") {
			t.Fatalf("%q gave %+v", v, b)
		}
	}
}

// checkErr fails t when a parse error is not one line.
func checkErr(t *testing.T, err error) {
	t.Helper()
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("multi-line error %q", err)
	}
}

// FuzzParseBinds checks that any -B value either fails cleanly or yields
// binds whose destinations pass CheckDest and whose sources are absolute.
func FuzzParseBinds(f *testing.F) {
	for _, s := range []string{"/a", "/a:/b:ro", "x,y:/z", "/a:/b/../c", "::", "/a:/proc", ",,,",
		"/:/0..000", "/a..b:/c..d", "/x/..:/y", "a/../..:/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		bs, err := ParseBinds(v, "/work", "--bind")
		if err != nil {
			checkErr(t, err)
			return
		}
		for _, b := range bs {
			checkParsedBind(t, v, b)
		}
	})
}

// FuzzParseMount is FuzzParseBinds for --mount values (CSV fields).
func FuzzParseMount(f *testing.F) {
	for _, s := range []string{"type=bind,src=/a,dst=/b", `type=bind,"src=/a,b",dst=/c,readonly=true`,
		"type=bind,src=/a,dst=/b/../c", "type=bind,src=x/../..,dst=/0..0,ro=0", `"type=bind,src=/a`,
		"type=bind,src=/a,dst=/proc/x", "type=bind,source=/a:1,target=/b:2,rw", "type=bind,src=/a\n,dst=/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		b, err := ParseMount(v, "/work")
		if err != nil {
			checkErr(t, err)
			return
		}
		checkParsedBind(t, v, b)
		if b.Origin != "--mount" {
			t.Fatalf("%q: origin %q", v, b.Origin)
		}
	})
}

func TestWorkdirPath(t *testing.T) {
	for dest, want := range map[string]string{
		"/tmp": "/wd/tmp", "/var/tmp": "/wd/var_tmp", "/out/run": "/wd/scratch/out_run", "/s": "/wd/scratch/s",
	} {
		if got := WorkdirPath("/wd", dest); got != want {
			t.Errorf("WorkdirPath(/wd, %s) = %s, want %s", dest, got, want)
		}
	}
}

// The binds from below a workdir say so (Beneath), so the stage opens them
// without following links; no other op does.
func TestWorkdirOpsBeneath(t *testing.T) {
	p, err := Build(Spec{Home: "/root", Cwd: "/", Contain: true, Workdir: "/wd", Scratch: []string{"/out/run"}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, op := range p.Ops {
		under := op.Kind == Bind && strings.HasPrefix(op.Source, "/wd/")
		if (op.Beneath == "/wd") != under {
			t.Errorf("%s: Beneath %q", op, op.Beneath)
		}
		if under {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d binds from the workdir, want 3 (/tmp, /var/tmp, /out/run)", n)
	}
}
