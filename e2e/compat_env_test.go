package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCompatEnvOptions: with launch.conf env.apptainer_compat on (the
// default), the APPTAINER_ and SINGULARITY_ variables that Apptainer binds
// to its options set launch's, below LAUNCH_ and the command line
// (LAUNCH_ > APPTAINER_ > SINGULARITY_); with it off they do nothing.
func TestCompatEnvOptions(t *testing.T) {
	image := busyboxImage(t, nil)
	off := withConf(t, "[env]\napptainer_compat = false\n")
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"APPTAINER_CONTAINALL=1", []string{"APPTAINER_CONTAINALL=1", "FOO=host"}, nil, "FOO=|/"},
		{"SINGULARITY_CLEANENV", []string{"SINGULARITY_CLEANENV=true", "FOO=host"}, nil, "FOO=|/"},
		{"SINGULARITY_PWD", []string{"SINGULARITY_PWD=/etc"}, nil, "FOO=|/etc"},
		{"APPTAINER_CWD", []string{"APPTAINER_CWD=/etc"}, nil, "FOO=|/etc"},
		{"APPTAINER_ over SINGULARITY_", []string{"SINGULARITY_PWD=/etc", "APPTAINER_PWD=/bin"}, nil, "FOO=|/bin"},
		{"LAUNCH_ over APPTAINER_", []string{"SINGULARITY_PWD=/etc", "APPTAINER_PWD=/bin", "LAUNCH_PWD=/usr"}, nil, "FOO=|/usr"},
		{"command line over all", []string{"APPTAINER_PWD=/bin", "LAUNCH_PWD=/usr"}, []string{"--cwd", "/etc"}, "FOO=|/etc"},
		{"compat off", append([]string{"APPTAINER_CONTAINALL=1", "SINGULARITY_PWD=/etc", "FOO=host"}, off...), nil, "FOO=host|/"},
		{"compat off, LAUNCH_ still", append([]string{"APPTAINER_PWD=/etc", "LAUNCH_PWD=/bin"}, off...), nil, "FOO=|/bin"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append(append([]string{"exec"}, c.args...), image, "sh", "-c", `echo "FOO=$FOO|$(pwd)"`)
			r := launchWith(t, runOpts{Env: c.env, Dir: "/"}, args...)
			wantOK(t, r)
			if got := strings.TrimSpace(r.Stdout); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
	// --containall from APPTAINER_CONTAINALL also means a PID namespace.
	r := launchWith(t, runOpts{Env: []string{"APPTAINER_CONTAINALL=1"}}, "exec", image, "sh", "-c", "ls /proc | grep -c '^[0-9]'")
	wantOK(t, r)
	if n := strings.TrimSpace(r.Stdout); n == "" || len(n) > 1 {
		t.Errorf("APPTAINER_CONTAINALL: %s processes in /proc, want a fresh PID namespace", n)
	}
}

// TestCompatEnvBadValue: a bad value from an Apptainer variable is one
// FATAL line naming the variable.
func TestCompatEnvBadValue(t *testing.T) {
	image := busyboxImage(t, nil)
	wantFatal(t, launchWith(t, runOpts{Env: []string{"APPTAINER_PWD=relative/dir"}}, "exec", image, "true"),
		"--pwd", "relative/dir", "--pwd was set by APPTAINER_PWD")
	wantFatal(t, launchWith(t, runOpts{Env: []string{"SINGULARITY_CONTAIN=maybe"}}, "exec", image, "true"),
		"SINGULARITY_CONTAIN=maybe", "--contain")
}

// TestCompatEnvUnsupported: an Apptainer variable for an option launch does
// not have is a warning (one line, the run goes on); one for an option
// whose absence changes nothing is silent without -d.
func TestCompatEnvUnsupported(t *testing.T) {
	image := busyboxImage(t, nil)
	r := launchWith(t, runOpts{Env: []string{"APPTAINER_COMPAT32=1", "SINGULARITY_USERNS=1"}}, "exec", image, "true")
	wantOK(t, r)
	if !strings.Contains(r.Stderr, "WARNING: APPTAINER_COMPAT32 is set, but launch exec has no --compat32") || strings.Count(r.Stderr, "\n") != 1 {
		t.Errorf("stderr %q, want one warning about APPTAINER_COMPAT32", r.Stderr)
	}
	off := withConf(t, "[env]\napptainer_compat = false\n")
	r = launchWith(t, runOpts{Env: append([]string{"APPTAINER_COMPAT32=1"}, off...)}, "exec", image, "true")
	wantOK(t, r)
	if r.Stderr != "" {
		t.Errorf("compat off: stderr %q, want nothing", r.Stderr)
	}
}

// TestCompatEnvCacheDir: APPTAINER_CACHEDIR (then SINGULARITY_CACHEDIR)
// moves the cache, below LAUNCH_CACHEDIR.
func TestCompatEnvCacheDir(t *testing.T) {
	base := t.TempDir()
	a, s, l := filepath.Join(base, "a"), filepath.Join(base, "s"), filepath.Join(base, "l")
	cases := []struct {
		name string
		env  []string
		want string
	}{
		{"APPTAINER_CACHEDIR", []string{"APPTAINER_CACHEDIR=" + a, "SINGULARITY_CACHEDIR=" + s}, a},
		{"SINGULARITY_CACHEDIR", []string{"SINGULARITY_CACHEDIR=" + s}, s},
		{"LAUNCH_CACHEDIR wins", []string{"APPTAINER_CACHEDIR=" + a, "LAUNCH_CACHEDIR=" + l}, l},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// An inherited LAUNCH_CACHEDIR is cleared first (the last
			// of duplicate names is the one the child gets).
			r := launchWith(t, runOpts{Env: append([]string{"LAUNCH_CACHEDIR="}, c.env...)}, "cache", "list")
			wantOK(t, r)
			if !strings.Contains(r.Stdout, " in "+c.want+"\n") {
				t.Errorf("cache list: %q, want the cache in %s", r.Stdout, c.want)
			}
		})
	}
}
