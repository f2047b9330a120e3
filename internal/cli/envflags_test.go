package cli

import (
	"errors"
	"strings"
	"testing"
)

func TestApplyEnvFlags(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string // resulting flags: cleanenv pid pwd envs
		err  string
	}{
		{"nothing set", nil, nil, "false false  []", ""},
		{"bool words and strings", map[string]string{"LAUNCH_CLEANENV": "yes", "LAUNCH_PID": "1", "LAUNCH_PWD": "/x"}, nil, "true true /x []", ""},
		{"command line wins", map[string]string{"LAUNCH_PWD": "/x", "LAUNCH_PID": "true"}, []string{"--pwd", "/y", "--pid=false"}, "false false /y []", ""},
		{"arrays", map[string]string{"LAUNCH_ENV": "A=1"}, nil, "false false  [A=1]", ""},
		{"bind is not taken from LAUNCH_BIND here", map[string]string{"LAUNCH_BIND": "/a"}, nil, "false false  []", ""},
		{"bad bool", map[string]string{"LAUNCH_CONTAIN": "maybe"}, nil, "", "LAUNCH_CONTAIN=maybe: invalid value for --contain"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := &globals{}
			cmd := newExecCmd(g)
			if err := cmd.ParseFlags(append(c.args, "img", "true")); err != nil {
				t.Fatal(err)
			}
			_, err := applyEnvFlags(cmd, func(k string) string { return c.env[k] }, false)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fl := cmd.Flags()
			cl, _ := fl.GetBool("cleanenv")
			pid, _ := fl.GetBool("pid")
			pwd, _ := fl.GetString("pwd")
			envs, _ := fl.GetStringArray("env")
			bind, _ := fl.GetStringArray("bind")
			if len(bind) != 0 {
				t.Errorf("bind set from the environment: %q", bind)
			}
			got := strings.Join([]string{boolStr(cl), boolStr(pid), pwd, "[" + strings.Join(envs, ",") + "]"}, " ")
			if got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
	// A variable for a flag that contradicts one given on the command line
	// is not applied: the command line wins.
	cmd := newExecCmd(&globals{})
	if err := cmd.ParseFlags([]string{"-H", "/x", "img", "true"}); err != nil {
		t.Fatal(err)
	}
	if _, err := applyEnvFlags(cmd, func(k string) string { return map[string]string{"LAUNCH_NO_HOME": "yes"}[k] }, false); err != nil {
		t.Fatal(err)
	}
	if nh, _ := cmd.Flags().GetBool("no-home"); nh {
		t.Error("LAUNCH_NO_HOME applied although -H was given")
	}
	if EnvName("no-home") != "LAUNCH_NO_HOME" {
		t.Errorf("EnvName(no-home) = %s", EnvName("no-home"))
	}
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestBlameEnvFlags(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		args []string
		err  string
		want string
	}{
		{"from the variable", map[string]string{"LAUNCH_PWD": "rel"}, nil,
			"--pwd rel is not an absolute path", "--pwd rel is not an absolute path (--pwd was set by LAUNCH_PWD)"},
		{"from the command line", nil, []string{"--pwd", "rel"},
			"--pwd rel is not an absolute path", "--pwd rel is not an absolute path"},
		{"another option named", map[string]string{"LAUNCH_PID": "1"}, nil,
			"--pidfile is unknown", "--pidfile is unknown"},
		{"two", map[string]string{"LAUNCH_PID": "1", "LAUNCH_NET": "1"}, nil,
			"--pid and --net are not allowed", "--pid and --net are not allowed (--net was set by LAUNCH_NET; --pid was set by LAUNCH_PID)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := newExecCmd(&globals{})
			if err := cmd.ParseFlags(append(c.args, "img", "true")); err != nil {
				t.Fatal(err)
			}
			if _, err := applyEnvFlags(cmd, func(k string) string { return c.env[k] }, false); err != nil {
				t.Fatal(err)
			}
			if got := blameEnvFlags(cmd, errors.New(c.err)).Error(); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

// TestApplyEnvFlagsOCI: the registry credentials and --disable-cache of
// build (and of pull, which registers the same cliutil.OCIFlags) come from
// LAUNCH_DOCKER_USERNAME, LAUNCH_DOCKER_PASSWORD and LAUNCH_DISABLE_CACHE
// through the flag binding, and the command line wins; ocicli reads no
// variable of its own.
func TestApplyEnvFlagsOCI(t *testing.T) {
	env := map[string]string{"LAUNCH_DOCKER_USERNAME": "envuser", "LAUNCH_DOCKER_PASSWORD": "envpass", "LAUNCH_DISABLE_CACHE": "1"}
	for _, c := range []struct {
		args []string
		want string // user pass disable-cache
	}{
		{nil, "envuser envpass true"},
		{[]string{"--docker-username", "u", "--docker-password", "p", "--disable-cache=false"}, "u p false"},
		{[]string{"--docker-password", "p"}, "envuser p true"},
	} {
		cmd := newBuildCmd(&globals{})
		if err := cmd.ParseFlags(append(c.args, "out.sif", "docker://x")); err != nil {
			t.Fatal(err)
		}
		if _, err := applyEnvFlags(cmd, func(k string) string { return env[k] }, false); err != nil {
			t.Fatal(err)
		}
		fl := cmd.Flags()
		u, _ := fl.GetString("docker-username")
		p, _ := fl.GetString("docker-password")
		dc, _ := fl.GetBool("disable-cache")
		if got := u + " " + p + " " + boolStr(dc); got != c.want {
			t.Errorf("%q: got %q, want %q", c.args, got, c.want)
		}
	}
}
