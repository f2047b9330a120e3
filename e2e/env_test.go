package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEnvPrecedence checks host < image < LAUNCHENV_ < --env-file < --env,
// on an image with Apptainer environment scripts (applied by the image's
// shell) and on one without (applied by launch itself).
func TestEnvPrecedence(t *testing.T) {
	withScripts := busyboxImage(t, map[string]string{
		".singularity.d/env/90-environment.sh": "export IMG=image\nexport A=image B=image C=image D=image\nexport PATH=/opt/img/bin:$PATH\n",
	})
	without := busyboxImage(t, nil)
	envFile := filepath.Join(t.TempDir(), "job.env")
	if err := os.WriteFile(envFile, []byte("# job settings\nC=file\nexport D=\"file value\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	host := []string{"HOSTONLY=host", "IMG=host", "A=host", "B=host", "C=host", "D=host",
		"LAUNCHENV_B=prefixed", "LAUNCHENV_C=prefixed", "LAUNCHENV_D=prefixed",
		"LAUNCHENV_PREPEND_PATH=/pre", "LAUNCHENV_APPEND_PATH=/app", "PATH=/host/only/bin:/usr/bin:/bin"}
	cases := []struct {
		name, image, want string
	}{
		{"with env scripts", withScripts, "host|image|image|prefixed|file|flag|x,y|/pre:/opt/img/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/app\n0"},
		{"without env scripts", without, "host|host|host|prefixed|file|flag|x,y|/pre:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/app\n0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := launchWith(t, runOpts{Env: host}, "exec", "--env-file", envFile, "--env", "D=flag,E=x,y", c.image, "sh", "-c",
				`echo "$HOSTONLY|$IMG|$A|$B|$C|$D|$E|$PATH"; env | grep -c '^LAUNCHENV_' || true`)
			wantOK(t, r)
			if got := strings.TrimSpace(r.Stdout); got != c.want {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
		})
	}
	// --env D= on an env-file value sets it empty; values keep spaces.
	r := launchWith(t, runOpts{Env: host}, "exec", "--env-file", envFile, withScripts, "sh", "-c", `echo "[$D]"`)
	wantOK(t, r)
	if strings.TrimSpace(r.Stdout) != "[file value]" {
		t.Errorf("env-file value with spaces: got %q", r.Stdout)
	}
}

func TestCleanenv(t *testing.T) {
	image := busyboxImage(t, nil)
	host := []string{"FOO=host", "TERM=xterm-test", "SLURM_PROCID=7", "OMPI_COMM_WORLD_RANK=7", "LAUNCHENV_BAR=bar",
		"https_proxy=http://proxy:3128", "NO_PROXY=.cluster", "LANG=de_DE.UTF-8", "LC_ALL=de_DE.UTF-8"}
	show := `echo "$FOO|$TERM|$SLURM_PROCID|$OMPI_COMM_WORLD_RANK|$BAR|$HOME|$https_proxy|$NO_PROXY|$LANG|$LC_ALL"`
	r := launchWith(t, runOpts{Env: host}, "exec", "--cleanenv", image, "sh", "-c", show)
	wantOK(t, r)
	home, _ := os.UserHomeDir()
	// As Apptainer: TERM and the proxies pass, the locale is C.
	if want := "|xterm-test|7|7|bar|" + home + "|http://proxy:3128|.cluster|C|"; strings.TrimSpace(r.Stdout) != want {
		t.Errorf("got  %q\nwant %q", strings.TrimSpace(r.Stdout), want)
	}
	l := launchWith(t, runOpts{Env: host}, "exec", "--cleanenv", "--env", "LANG=en_US.UTF-8", image, "sh", "-c", `echo "$LANG"`)
	if wantOK(t, l); strings.TrimSpace(l.Stdout) != "en_US.UTF-8" {
		t.Errorf("--cleanenv --env LANG=en_US.UTF-8: LANG %q", l.Stdout)
	}
	// Without --cleanenv the host's locale passes.
	h := launchWith(t, runOpts{Env: host}, "exec", image, "sh", "-c", `echo "$LANG"`)
	if wantOK(t, h); strings.TrimSpace(h.Stdout) != "de_DE.UTF-8" {
		t.Errorf("without --cleanenv: LANG %q", h.Stdout)
	}
}

// TestLaunchOptionVariables: every long option can be set as
// LAUNCH_<OPTION>; the command line wins.
func TestLaunchOptionVariables(t *testing.T) {
	image := busyboxImage(t, nil)
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"LAUNCH_CLEANENV=1", []string{"LAUNCH_CLEANENV=1", "FOO=host"}, nil, "FOO=|/"},
		{"LAUNCH_PWD, LAUNCH_ENV", []string{"LAUNCH_PWD=/etc", "LAUNCH_ENV=FOO=env"}, nil, "FOO=env|/etc"},
		{"the command line wins", []string{"LAUNCH_PWD=/etc"}, []string{"--pwd", "/bin"}, "FOO=|/bin"},
		{"LAUNCH_CONTAINALL=yes", []string{"LAUNCH_CONTAINALL=yes", "FOO=host"}, []string{"--pwd", "/"}, "FOO=|/"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append(append([]string{"exec"}, c.args...), image, "sh", "-c", `echo "FOO=$FOO|$(pwd)"`)
			opts := runOpts{Env: c.env, Dir: "/"}
			r := launchWith(t, opts, args...)
			wantOK(t, r)
			if got := strings.TrimSpace(r.Stdout); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
	wantFatal(t, launchWith(t, runOpts{Env: []string{"LAUNCH_PID=perhaps"}}, "exec", image, "true"), "LAUNCH_PID=perhaps", "--pid")
}

func TestEnvBadInput(t *testing.T) {
	image := busyboxImage(t, nil)
	bad := filepath.Join(t.TempDir(), "bad.env")
	if err := os.WriteFile(bad, []byte("A=1\nthis is not an assignment\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"malformed env-file line", nil, []string{"--env-file", bad}, []string{bad, "line 2"}},
		{"missing env-file", nil, []string{"--env-file", "/no/such.env"}, []string{"--env-file /no/such.env", "no such file"}},
		{"invalid LAUNCHENV_ name", []string{"LAUNCHENV_1BAD=x"}, nil, []string{"LAUNCHENV_1BAD", "not a valid variable name"}},
		{"invalid --env", nil, []string{"--env", "NOVALUE"}, []string{`--env "NOVALUE"`}},
		{"invalid --env name", nil, []string{"--env", "A-B=1"}, []string{"A-B=1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append(append([]string{"exec"}, c.args...), image, "true")
			wantFatal(t, launchWith(t, runOpts{Env: c.env}, args...), c.want...)
		})
	}
}

// TestEnvScriptCannotEatOverrides: an image env script that uses "set --"
// or "shift" must not disturb the overrides or the command.
func TestEnvScriptCannotEatOverrides(t *testing.T) {
	image := busyboxImage(t, map[string]string{
		".singularity.d/env/90-environment.sh": "set -- x y\nshift\nexport IMG=image\n",
	})
	r := launch(t, "exec", "--env", "FOO=bar", image, "sh", "-c", `echo "$FOO $IMG $#"`, "zero", "one")
	wantOK(t, r)
	if got := strings.TrimSpace(r.Stdout); got != "bar image 1" {
		t.Errorf("got %q, want %q", got, "bar image 1")
	}
}

// TestLaunchOptionVariableBadValue: an invalid value that came from a
// LAUNCH_<OPTION> variable is reported with the variable's name (the user
// typed no such option), in one FATAL line.
func TestLaunchOptionVariableBadValue(t *testing.T) {
	image := busyboxImage(t, nil)
	r := launchWith(t, runOpts{Env: []string{"LAUNCH_PWD=relative/dir"}}, "exec", image, "true")
	wantFatal(t, r, "--pwd", "relative/dir", "LAUNCH_PWD")
	r = launch(t, "exec", "--pwd", "relative/dir", image, "true")
	wantFatal(t, r, "--pwd", "relative/dir")
	if strings.Contains(r.Stderr, "LAUNCH_PWD") {
		t.Errorf("the option came from the command line, not LAUNCH_PWD: %s", r.Stderr)
	}
}
