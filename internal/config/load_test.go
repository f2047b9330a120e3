package config

import (
	"time"

	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/launch-hpc/launch/internal/mountplan"
)

func writeConf(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "launch.conf")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadMissingFileMeansDefaults(t *testing.T) {
	l, err := Load(filepath.Join(t.TempDir(), "absent.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if l.Found || !reflect.DeepEqual(l.Config, Defaults()) {
		t.Fatalf("missing file: found=%v config=%+v", l.Found, l.Config)
	}
}

func TestLoadValues(t *testing.T) {
	p := writeConf(t, `# site
[mounts]
home = false
system = ["/opt/site:/opt/site:ro"]

[namespaces]
allow_net = false

[tmpfs]
contain = "2g"
`)
	l, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if l.Mounts.Home || !l.Mounts.Tmp || l.Namespaces.AllowNet || !l.Namespaces.AllowPID {
		t.Errorf("values not applied over defaults: %+v", l.Config)
	}
	if got := l.Mounts.System; len(got) != 1 || got[0] != "/opt/site:/opt/site:ro" {
		t.Errorf("mounts.system = %q", got)
	}
	for key, line := range map[string]int{"mounts.home": 3, "mounts.system": 4, "namespaces.allow_net": 7, "tmpfs.contain": 10} {
		if o := l.Origins[key]; o.File != p || o.Line != line {
			t.Errorf("origin of %s = %v, want %s:%d", key, o, p, line)
		}
	}
	for _, s := range l.Settings() {
		if s.Key == "mounts.proc" && s.Origin.File != "" {
			t.Errorf("mounts.proc should be a built-in default, got %v", s.Origin)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name, body string
		want       []string // substrings of the error
	}{
		{"unknown key", "[mounts]\nhome = true\nhomme = false\n", []string{":3:", "unknown key mounts.homme"}},
		{"unknown table", "\n[mount]\nhome = true\n", []string{":2:", "unknown table [mount]"}},
		{"syntax", "[mounts]\nhome = \n", []string{":2"}},
		{"wrong type", "[mounts]\nhome = \"yes\"\n", []string{"launch.conf:2 (key mounts.home)", "incompatible types"}},
		{"bad format", "[images]\nformats = [\"sif\", \"qcow2\"]\n", []string{":2:", "images.formats", "qcow2"}},
		{"relative path", "[binds]\nallowed_paths = [\"scratch\"]\n", []string{":2:", "binds.allowed_paths", "not an absolute path"}},
		{"bad size", "[tmpfs]\n\ncontain = \"lots\"\n", []string{":3:", "tmpfs.contain", "lots"}},
		{"no squashfuse", "[tools]\nsquashfuse = []\n", []string{":2:", "tools.squashfuse"}},
		{"bad unpacked size", "[build]\nmax_unpacked_size = \"64 GB\"\n", []string{":2:", "build.max_unpacked_size", "64 GB"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeConf(t, c.body)
			_, err := Load(p)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			for _, w := range append(c.want, p) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

// TestShippedConfig checks that the launch.conf in the repository parses
// and matches the built-in defaults, so the documented file is the truth.
func TestShippedConfig(t *testing.T) {
	l, err := Load(filepath.Join("..", "..", "etc", "launch", "launch.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !l.Found {
		t.Fatal("etc/launch/launch.conf not found")
	}
	if !reflect.DeepEqual(l.Config, Defaults()) {
		t.Errorf("shipped launch.conf differs from the built-in defaults:\n file %+v\n code %+v", l.Config, Defaults())
	}
}

func TestIsTmpfsSize(t *testing.T) {
	cases := []struct {
		in   string
		want bool
	}{
		{"50%", true}, {"512m", true}, {"4G", true}, {"100", true}, {"7k", true}, {"0", true},
		{"", false}, {"m", false}, {"%", false}, {"lots", false}, {"5mm", false}, {"5%m", false},
		{"-5m", false}, {"5.5g", false}, {" 5m", false}, {"5m ", false}, {"5t", false},
	}
	for _, c := range cases {
		if got := isTmpfsSize(c.in); got != c.want {
			t.Errorf("isTmpfsSize(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64 // -1: an error
	}{
		{"0", 0}, {"100", 100}, {"7k", 7 << 10}, {"512m", 512 << 20}, {"64g", 64 << 30}, {"2T", 2 << 40},
		{"", -1}, {"m", -1}, {"lots", -1}, {"-5m", -1}, {"+5m", -1}, {"5.5g", -1}, {" 5m", -1}, {"5mm", -1},
		{"50%", -1}, {"9999999999t", -1},
	}
	for _, c := range cases {
		got, err := ParseSize(c.in)
		if c.want < 0 {
			if err == nil {
				t.Errorf("ParseSize(%q) = %d, want an error", c.in, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

// FuzzLoad decodes arbitrary config files (seeded with the shipped one and
// the broken ones above): an error must be one line starting with the
// file's name; a file that loads must list its settings.
func FuzzLoad(f *testing.F) {
	shipped, err := os.ReadFile(filepath.Join("..", "..", "etc", "launch", "launch.conf"))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{string(shipped), "[mounts]\nhome = true\nhomme = false\n", "[mounts]\nhome = \n",
		"[mounts]\nhome = \"yes\"\n", "[tmpfs]\n\ncontain = \"lots\"\n", "[tools]\nsquashfuse = []\n",
		"mounts.home = false\n", "mounts = {home = false}\n", "[[mounts]]\n", "[images]\nformats = [\"sif\", 1]\n"} {
		f.Add([]byte(s))
	}
	const path = "/etc/launch/launch.conf"
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := loadData(path, data)
		if err != nil {
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "config "+path) {
				t.Fatalf("error %q is not one line starting with the file", msg)
			}
			return
		}
		if len(l.Settings()) == 0 || !l.Found {
			t.Fatalf("loaded %+v", l)
		}
	})
}

// TestMountSwitchesMatchDefaults checks that launch.conf's [mounts] switches
// and mountplan's table of default mounts name the same mounts: every
// boolean field of Mounts is tagged with the name of a Default that has
// Switch, and every such Default has a field.
func TestMountSwitchesMatchDefaults(t *testing.T) {
	want := map[string]bool{}
	for _, d := range mountplan.Defaults() {
		if d.Switch {
			want[d.Name] = true
		}
	}
	all := Mounts{}.Off() // every switch off: the names of all of them
	got := map[string]bool{}
	for _, n := range all {
		if !want[n] {
			t.Errorf("launch.conf [mounts] switch %q is not a switchable mountplan default", n)
		}
		got[n] = true
	}
	for n := range want {
		if !got[n] {
			t.Errorf("mountplan default %q has Switch but config.Mounts has no field tagged %q", n, n)
		}
	}
	if off := Defaults().Mounts.Off(); len(off) != 0 {
		t.Errorf("built-in defaults switch off %v, want every default mount on", off)
	}
	m := Defaults().Mounts
	m.Home, m.Resolv = false, false
	if off := m.Off(); len(off) != 2 || off[0] != "home" || off[1] != "resolv" {
		t.Errorf("Off with home and resolv off = %v", off)
	}
}

func TestParseLinger(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"10s", 10 * time.Second, true},
		{"0s", 0, true},
		{"0", 0, true},
		{"1h", time.Hour, true},
		{"1m30s", 90 * time.Second, true},
		{"1h1s", 0, false},
		{"-1s", 0, false},
		{"soon", 0, false},
		{"", 0, false},
	} {
		got, err := ParseLinger(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseLinger(%q) = %v, %v; want %v, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}
