package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// withConf writes a launch.conf and returns the environment that points
// launch at it.
func withConf(t *testing.T, body string) []string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "launch.conf")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"LAUNCH_CONF=" + p}
}

func TestConfigShow(t *testing.T) {
	env := withConf(t, "# site\n[mounts]\nhome = false\n\n[tmpfs]\ncontain = \"1g\"\n")
	r := launchWith(t, runOpts{Env: env}, "config", "show")
	wantOK(t, r)
	conf := strings.TrimPrefix(env[0], "LAUNCH_CONF=")
	for _, want := range []string{
		"# config file: " + conf + " (read)",
		"home = false  # " + conf + ":3",
		`contain = "1g"  # ` + conf + ":6",
		"proc = true  # built-in default",
		`squashfuse = ["launch-squashfs", "squashfuse_ll", `,
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("config show lacks %q:\n%s", want, r.Stdout)
		}
	}
	// The repository's etc/launch/launch.conf is valid and is the defaults.
	shipped, err := filepath.Abs("../etc/launch/launch.conf")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(shipped); err == nil {
		wantOK(t, launchWith(t, runOpts{Env: []string{"LAUNCH_CONF=" + shipped}}, "config", "show"))
	}
}

// TestConfigApplies checks the settings that change what a container gets.
func TestConfigApplies(t *testing.T) {
	image := busyboxImage(t, nil)
	site := hostDir(t, "site", "SITE")
	home, _ := os.UserHomeDir()
	env := withConf(t, "[mounts]\nhome = false\nsystem = [\""+site+":/opt/site:ro\", \"/no/such/site/dir:/opt/gone\"]\n")
	r := launchWith(t, runOpts{Env: env, Dir: "/"}, "exec", image, "sh", "-c",
		`cat /opt/site/file; echo; touch /opt/site/x 2>/dev/null || echo ro; test -e /opt/gone || echo skipped; test -d "`+home+`" && echo home-bound; true`)
	wantOK(t, r)
	got := strings.Fields(r.Stdout)
	want := []string{"SITE", "ro", "skipped"}
	if isRoot() { // /root exists in the image itself
		want = append(want, "home-bound")
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestConfigNoMountSiteBinds: Apptainer's --no-mount values for what is
// not a default mount: bind-paths leaves out every site bind, a
// destination one of them, hostfs changes nothing, and devpts leaves
// --contain's /dev/pts out; APPTAINER_NO_MOUNT takes them too.
func TestConfigNoMountSiteBinds(t *testing.T) {
	image := busyboxImage(t, nil)
	a, b := hostDir(t, "a", "A"), hostDir(t, "b", "B")
	env := withConf(t, "[mounts]\nsystem = [\""+a+":/opt/a\", \""+b+":/opt/b\"]\n")
	show := `for d in /opt/a /opt/b; do test -e $d/file && echo $d; done; test -e /dev/pts/ptmx && echo pts; true`
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"none", nil, nil, "/opt/a /opt/b pts"},
		{"bind-paths", []string{"--no-mount", "bind-paths"}, nil, "pts"},
		{"a destination", []string{"--no-mount", "/opt/a/"}, nil, "/opt/b pts"},
		{"hostfs", []string{"--no-mount", "hostfs"}, nil, "/opt/a /opt/b pts"},
		{"contain", []string{"--contain"}, nil, "/opt/a /opt/b pts"},
		{"devpts under contain", []string{"--contain", "--no-mount", "devpts"}, nil, "/opt/a /opt/b"},
		{"APPTAINER_NO_MOUNT", nil, []string{"APPTAINER_NO_MOUNT=/opt/b,hostfs"}, "/opt/a pts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := launchWith(t, runOpts{Env: append(append([]string{}, env...), tc.env...), Dir: "/"},
				append(append([]string{"exec"}, tc.args...), image, "sh", "-c", show)...)
			wantOK(t, r)
			if got := strings.Join(strings.Fields(r.Stdout), " "); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestConfigRefuses(t *testing.T) {
	image := busyboxImage(t, nil)
	tree := busyboxTree(t)
	a := hostDir(t, "a", "A")
	cases := []struct {
		name, conf string
		args       []string
		want       []string
	}{
		{"user binds off", "[binds]\nallow_user = false\n", []string{"-B", a}, []string{"binds.allow_user = false"}},
		{"bind outside allowed paths", "[binds]\nallowed_paths = [\"/no/such/scratch\"]\n", []string{"-B", a}, []string{a, "binds.allowed_paths"}},
		{"net off", "[namespaces]\nallow_net = false\n", []string{"--net"}, []string{"--net", "namespaces.allow_net = false"}},
		{"pid off via containall", "[namespaces]\nallow_pid = false\n", []string{"--containall"}, []string{"--pid (from --containall)"}},
		{"sandbox not allowed", "[images]\nformats = [\"sif\"]\n", []string{"SANDBOX"}, []string{"sandbox images are not allowed", "images.formats"}},
		{"image outside allowed paths", "[images]\nallowed_paths = [\"/no/such/images\"]\n", nil, []string{"images.allowed_paths"}},
		{"missing squashfuse", "[tools]\nsquashfuse = [\"/no/such/squashfuse_ll\"]\n", nil, []string{"no squashfuse program found", "/no/such/squashfuse_ll", "tools.squashfuse"}},
		{"malformed file", "[mounts]\nhome = \n", nil, []string{"launch.conf:2"}},
		{"unknown key", "[mounts]\nhome = true\nhomer = true\n", nil, []string{"launch.conf:3", "unknown key mounts.homer"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"exec"}
			img := image
			for _, a := range c.args {
				if a == "SANDBOX" {
					img = tree
					continue
				}
				args = append(args, a)
			}
			args = append(args, img, "true")
			wantFatal(t, launchWith(t, runOpts{Env: withConf(t, c.conf)}, args...), c.want...)
		})
	}
}

// TestConfigMissingNamedFile: LAUNCH_CONF naming a file that does not exist
// is an error for every command that reads the config (a missing site
// config means the built-in defaults; a file asked for by name was wanted).
func TestConfigMissingNamedFile(t *testing.T) {
	image := busyboxImage(t, nil)
	missing := filepath.Join(t.TempDir(), "nope.conf")
	env := runOpts{Env: []string{"LAUNCH_CONF=" + missing}}
	for _, args := range [][]string{
		{"exec", image, "true"},
		{"config", "show"},
		{"build", filepath.Join(t.TempDir(), "x.sif"), busyboxTree(t)},
	} {
		wantFatal(t, launchWith(t, env, args...), "LAUNCH_CONF="+missing, "no such file")
	}
}

func TestConfigToolsForBuild(t *testing.T) {
	tree := busyboxTree(t)
	out := filepath.Join(t.TempDir(), "x.sif")
	r := launchWith(t, runOpts{Env: withConf(t, "[tools]\nmksquashfs = \"/no/such/mksquashfs\"\n")}, "build", "-q", out, tree)
	wantFatal(t, r, "/no/such/mksquashfs not found", "tools.mksquashfs")
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed build left its output behind")
	}
}

// TestMissingOCIHelper: launch hands pull, cache and OCI builds to its
// launch-oci helper; a launch installed without it says so in one line.
func TestMissingOCIHelper(t *testing.T) {
	data, err := os.ReadFile(launchBin(t))
	if err != nil {
		t.Fatal(err)
	}
	lone := filepath.Join(t.TempDir(), "launch")
	if err := os.WriteFile(lone, data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"pull", "docker://alpine"}, {"cache", "list"}, {"build", filepath.Join(t.TempDir(), "x.sif"), "docker://alpine"}} {
		r := runProcess(t, exec.Command(lone, args...), 0)
		wantFatal(t, r, "needs the helper program launch-oci", "reinstall launch")
	}
}
