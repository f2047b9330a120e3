package runspec

import (
	"strings"
	"testing"

	"github.com/launch-hpc/launch/internal/config"
	"github.com/launch-hpc/launch/internal/mountplan"
)

// validSpec is a Spec that passes every check, on the built-in defaults.
func validSpec() *Spec {
	site := config.Defaults()
	return &Spec{Mode: ModeExec, Image: "/img.sif", Args: []string{"true"}, Cwd: "/work", Site: &site}
}

// TestValidate runs each check on a Spec that breaks it (and on one that
// keeps to it), starting from a valid Spec; check names which check of
// the table the case is for.
func TestValidate(t *testing.T) {
	cases := []struct {
		name  string
		check string
		edit  func(s *Spec)
		err   string // "" for valid
	}{
		{"valid", "", func(*Spec) {}, ""},
		{"run and shell", "mode", func(s *Spec) { s.Mode = ModeShell }, ""},
		{"unknown mode", "mode", func(s *Spec) { s.Mode = "instance" }, `unknown run mode "instance"`},
		{"test", "mode", func(s *Spec) { s.Mode = ModeTest }, ""},

		{"app", "--app", func(s *Spec) { s.App = "my-app_2" }, ""},
		{"app ..", "--app", func(s *Spec) { s.App = ".." }, `--app ".." is not an app name`},
		{"app with /", "--app", func(s *Spec) { s.App = "../etc" }, `--app "../etc" is not an app name`},
		{"app with space", "--app", func(s *Spec) { s.App = "a b" }, "is not an app name"},

		{"allowed namespaces", "namespaces", func(s *Spec) { s.Namespaces = Namespaces{PID: true, IPC: true, Net: true, UTS: true} }, ""},
		{"pid off", "namespaces", func(s *Spec) { s.Namespaces.PID = true; s.Site.Namespaces.AllowPID = false },
			"--pid is switched off on this site (launch.conf namespaces.allow_pid = false)"},
		{"ipc off via containall", "namespaces", func(s *Spec) {
			s.ContainAll, s.Contain, s.Namespaces.PID, s.Namespaces.IPC = true, true, true, true
			s.Site.Namespaces.AllowIPC = false
		}, "--ipc (from --containall) is switched off on this site (launch.conf namespaces.allow_ipc = false)"},
		{"pid off via containall", "namespaces", func(s *Spec) {
			s.ContainAll, s.Namespaces.PID, s.Namespaces.IPC = true, true, true
			s.Site.Namespaces.AllowPID = false
		}, "--pid (from --containall)"},
		{"net off", "namespaces", func(s *Spec) { s.Namespaces.Net = true; s.Site.Namespaces.AllowNet = false },
			"--net is switched off on this site (launch.conf namespaces.allow_net = false)"},
		{"uts off", "namespaces", func(s *Spec) { s.Namespaces.UTS = true; s.Site.Namespaces.AllowUTS = false },
			"--uts/--hostname is switched off on this site (launch.conf namespaces.allow_uts = false)"},
		{"net off, none asked", "namespaces", func(s *Spec) { s.Site.Namespaces.AllowNet = false }, ""},

		{"user binds", "user binds", func(s *Spec) { s.Binds = []mountplan.BindSpec{{Source: "/a", Dest: "/a", Origin: "--bind"}} }, ""},
		{"user binds off", "user binds", func(s *Spec) {
			s.Binds = []mountplan.BindSpec{{Source: "/a", Dest: "/b", ReadOnly: true, Origin: "LAUNCH_BIND"}, {Source: "/c", Dest: "/c", Origin: "--bind"}}
			s.Site.Binds.AllowUser = false
		}, "LAUNCH_BIND /a:/b:ro: user binds are switched off on this site (launch.conf binds.allow_user = false)"},
		{"user binds off, none asked", "user binds", func(s *Spec) { s.Site.Binds.AllowUser = false }, ""},

		{"scratch", "--scratch", func(s *Spec) { s.Scratch = []string{"/s/a/", "/b"} }, ""},
		{"relative scratch", "--scratch", func(s *Spec) { s.Scratch = []string{"/ok", "x"} }, "--scratch x: destination x is not an absolute path"},
		{"scratch over /dev", "--scratch", func(s *Spec) { s.Scratch = []string{"/dev"} }, "--scratch /dev: cannot bind over /dev"},
		{"scratch under /proc", "--scratch", func(s *Spec) { s.Scratch = []string{"/proc/x"} }, "cannot bind under /proc"},
		{"scratch with ..", "--scratch", func(s *Spec) { s.Scratch = []string{"/a/../etc"} }, "contains '..'"},

		{"writable", "--writable", func(s *Spec) { s.Writable = true }, ""},
		{"writable and tmpfs", "--writable", func(s *Spec) { s.Writable, s.WritableTmpfs = true, true },
			"--writable writes into the sandbox itself and cannot be combined with --writable-tmpfs or --overlay"},
		{"writable and overlay", "--writable", func(s *Spec) { s.Writable, s.Overlays = true, []Overlay{{Dir: "/o", ReadOnly: true}} },
			"cannot be combined with --writable-tmpfs or --overlay"},

		{"overlays", "--overlay", func(s *Spec) {
			s.Overlays = []Overlay{{Dir: "/a", ReadOnly: true}, {Dir: "/b"}, {Dir: "/c", ReadOnly: true}}
		}, ""},
		{"tmpfs over read-only overlays", "--overlay", func(s *Spec) {
			s.WritableTmpfs, s.Overlays = true, []Overlay{{Dir: "/a", ReadOnly: true}}
		}, ""},
		{"same overlay twice", "--overlay", func(s *Spec) { s.Overlays = []Overlay{{Dir: "/o"}, {Dir: "/o", ReadOnly: true}} },
			"--overlay /o: the same directory is given twice"},
		{"two writable overlays", "--overlay", func(s *Spec) { s.Overlays = []Overlay{{Dir: "/a"}, {Dir: "/b"}} },
			"--overlay /b: only one writable overlay is possible (/a is one already; add :ro to stack it read-only)"},
		{"writable overlay and tmpfs", "--overlay", func(s *Spec) { s.WritableTmpfs, s.Overlays = true, []Overlay{{Dir: "/o"}} },
			"--overlay /o: a writable overlay and --writable-tmpfs both ask for the top layer; add :ro to stack it below"},

		{"home", "--home", func(s *Spec) { s.Home = &Home{Flag: "/h", Src: "/h", Dst: "/h"} }, ""},
		{"no-home", "--home", func(s *Spec) { s.NoHome = true }, ""},
		{"home and no-home", "--home", func(s *Spec) { s.Home, s.NoHome = &Home{Flag: "/h", Src: "/h", Dst: "/h"}, true },
			"--home and --no-home contradict each other"},
		{"home with user binds off", "--home", func(s *Spec) {
			s.Home = &Home{Flag: "/h:/home/x", Src: "/h", Dst: "/home/x"}
			s.Site.Binds.AllowUser = false
		}, "--home /h:/home/x: user binds are switched off on this site (launch.conf binds.allow_user = false)"},

		{"pwd", "--pwd", func(s *Spec) { s.Pwd = "/data" }, ""},
		{"relative pwd", "--pwd", func(s *Spec) { s.Pwd = "rel" }, "--pwd rel is not an absolute path"},

		{"cdi device", "--device", func(s *Spec) { s.Devices.CDI = []string{"nvidia.com/gpu=0", "example.com/x=all"} }, ""},
		{"unqualified device", "--device", func(s *Spec) { s.Devices.CDI = []string{"nvidia.com/gpu=0", "gpu0"} }, `--device "gpu0" is not a CDI device name`},
		{"device without name", "--device", func(s *Spec) { s.Devices.CDI = []string{"nvidia.com/gpu="} }, `--device "nvidia.com/gpu="`},
		{"device without class", "--device", func(s *Spec) { s.Devices.CDI = []string{"nvidia.com=0"} }, `--device "nvidia.com=0"`},
	}
	tested := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := validSpec()
			c.edit(s)
			err := s.Validate()
			if c.err == "" {
				if err != nil {
					t.Fatalf("Validate: %v, want no error", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("Validate: %v, want %q", err, c.err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q is not one line", err)
			}
			// The error comes from the check the case is for.
			var got string
			for _, ch := range checks {
				if ch.run(s) != nil {
					got = ch.name
					break
				}
			}
			if got != c.check {
				t.Errorf("the first failing check is %q, the case is for %q", got, c.check)
			}
			tested[c.check] = true
		})
	}
	for _, ch := range checks {
		if !tested[ch.name] {
			t.Errorf("check %q has no failing case", ch.name)
		}
	}
}

// TestValidateOrder: when several checks fail, the first in the table is
// reported.
func TestValidateOrder(t *testing.T) {
	s := validSpec()
	s.Pwd = "rel"
	s.Home, s.NoHome = &Home{Flag: "/h", Src: "/h", Dst: "/h"}, true
	s.Namespaces.Net, s.Site.Namespaces.AllowNet = true, false
	if err := s.Validate(); err == nil || !strings.HasPrefix(err.Error(), "--net ") {
		t.Fatalf("Validate: %v, want the namespaces error first", err)
	}
}

func TestValidateNeedsSite(t *testing.T) {
	s := validSpec()
	s.Site = nil
	if err := s.Validate(); err == nil {
		t.Fatal("a Spec without a site configuration passed")
	}
}

func TestNamespacesExtra(t *testing.T) {
	for _, c := range []struct {
		ns   Namespaces
		want bool
	}{
		{Namespaces{}, false},
		{Namespaces{PID: true}, true},
		{Namespaces{IPC: true}, true},
		{Namespaces{Net: true}, true},
		{Namespaces{UTS: true}, true},
		{Namespaces{Hostname: "h"}, true},
	} {
		if got := c.ns.Extra(); got != c.want {
			t.Errorf("%+v.Extra() = %v, want %v", c.ns, got, c.want)
		}
	}
}
