package ocibuild

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/launch-hpc/launch/internal/layout"
)

func TestEnvScript(t *testing.T) {
	got, bad := envScript([]string{"PATH=/opt/bin:/bin", `A=x "y" $z \w` + "`c`", "EMPTY=", "NOVALUE", "bad-name=1", "=x", "_OK9=1"})
	want := "#!/bin/sh\n" +
		"export PATH=\"/opt/bin:/bin\"\n" +
		"export A=\"${A:-x \\\"y\\\" \\$z \\\\w\\`c\\`}\"\n" +
		"export EMPTY=\"${EMPTY:-}\"\n" +
		"export NOVALUE=\"${NOVALUE:-}\"\n" +
		"export _OK9=\"${_OK9:-1}\"\n"
	if got != want {
		t.Errorf("envScript:\n got %q\nwant %q", got, want)
	}
	if strings.Join(bad, ",") != "bad-name," {
		t.Errorf("bad names: %q", bad)
	}
	// The shell gives back exactly the image's values, and the host's win.
	out := runSh(t, got+`printf '%s|%s|%s' "$A" "$PATH" "$_OK9"`, "_OK9=host")
	if out != `x "y" $z \w`+"`c`"+`|/opt/bin:/bin|host` {
		t.Errorf("sourced: %q", out)
	}
}

func runSh(t *testing.T, script string, env ...string) string {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sh: %v: %s", err, out)
	}
	return string(out)
}

func TestRunscript(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  ispec.ImageConfig
		args []string
		want string
		code int
	}{
		{"entrypoint and cmd", ispec.ImageConfig{Entrypoint: []string{"printf", "[%s]"}, Cmd: []string{"it's", "$HOME"}}, nil, "[it's][$HOME]", 0},
		{"args replace cmd", ispec.ImageConfig{Entrypoint: []string{"printf", "[%s]"}, Cmd: []string{"x"}}, []string{"a b", "'c'"}, "[a b]['c']", 0},
		{"cmd only", ispec.ImageConfig{Cmd: []string{"printf", "%s", "cmd"}}, nil, "cmd", 0},
		{"args without entrypoint", ispec.ImageConfig{Cmd: []string{"false"}}, []string{"printf", "%s", "arg"}, "arg", 0},
		{"workdir", ispec.ImageConfig{Cmd: []string{"pwd"}, WorkingDir: dir}, nil, dir + "\n", 0},
		{"nothing to run", ispec.ImageConfig{}, nil, "FATAL:   this image has no ENTRYPOINT or CMD: give a command to run\n", 255},
		{"missing workdir", ispec.ImageConfig{Cmd: []string{"pwd"}, WorkingDir: filepath.Join(dir, "nope")}, nil, "", 255},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "runscript")
			if err := os.WriteFile(p, []byte(runscript(tt.cfg)), 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(p, tt.args...)
			cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/home/x"}
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != tt.code || (tt.want != "" && string(out) != tt.want) {
				t.Errorf("got %d %q, want %d %q\nrunscript:\n%s", code, out, tt.code, tt.want, runscript(tt.cfg))
			}
		})
	}
}

func TestConfigSection(t *testing.T) {
	raw := []byte(`{"architecture":"amd64","config":{"Env":["A=1"],  "Cmd":["sh"]},"rootfs":{}}`)
	if got := string(configSection(raw)); got != `{"Env":["A=1"],  "Cmd":["sh"]}` {
		t.Errorf("configSection = %s", got)
	}
	if got := string(configSection([]byte(`{"config":null}`))); got != "{}" {
		t.Errorf("configSection(null) = %s", got)
	}
}

func TestWriteInRootStaysInside(t *testing.T) {
	d := t.TempDir()
	root, outside := filepath.Join(d, "root"), filepath.Join(d, "outside")
	os.Mkdir(root, 0o755)
	os.Mkdir(outside, 0o755)
	// A hostile image: /.singularity.d is a symlink out, runscript too.
	os.Symlink(outside, filepath.Join(root, ".singularity.d"))
	if err := writeInRoot(root, layout.Runscript, []byte("x"), 0o755); err == nil {
		// Resolved inside: root/<outside>/runscript, or refused.
		if _, err := os.Stat(filepath.Join(outside, "runscript")); err == nil {
			t.Fatal("writeInRoot wrote through a symlink to outside the root")
		}
	}
	os.Remove(filepath.Join(root, ".singularity.d"))
	os.Mkdir(filepath.Join(root, ".singularity.d"), 0o755)
	os.Symlink(filepath.Join(outside, "victim"), filepath.Join(root, layout.Runscript))
	if err := writeInRoot(root, layout.Runscript, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(outside, "victim")); err == nil {
		t.Fatal("writeInRoot followed the runscript symlink")
	}
	if b, _ := os.ReadFile(filepath.Join(root, layout.Runscript)); string(b) != "x" {
		t.Errorf("runscript content %q", b)
	}
}
