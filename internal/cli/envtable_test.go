package cli

import (
	"fmt"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestApplyCompatEnv: APPTAINER_ and SINGULARITY_ variables set the options
// Apptainer binds them to, below LAUNCH_ and the command line, only with
// compat on; variables for options launch lacks come back as ignored, and
// the directory variables come back as their LAUNCH_ names.
func TestApplyCompatEnv(t *testing.T) {
	cases := []struct {
		name    string
		cmd     string
		env     map[string]string
		args    []string
		compat  bool
		flag    string // option to look at
		want    string
		from    string // variable named in the annotation ("" none)
		ignored string // "NAME:quiet|warn,..."
		dirs    string // "NAME=VALUE,..."
		err     string
	}{
		{name: "apptainer bool", env: map[string]string{"APPTAINER_CONTAINALL": "1"}, compat: true,
			flag: "containall", want: "true", from: "APPTAINER_CONTAINALL"},
		{name: "compat off", env: map[string]string{"APPTAINER_CONTAINALL": "1", "SINGULARITY_PWD": "/s"}, compat: false,
			flag: "containall", want: "false"},
		{name: "singularity", env: map[string]string{"SINGULARITY_PWD": "/s"}, compat: true,
			flag: "pwd", want: "/s", from: "SINGULARITY_PWD"},
		{name: "apptainer over singularity", env: map[string]string{"SINGULARITY_PWD": "/s", "APPTAINER_PWD": "/a"}, compat: true,
			flag: "pwd", want: "/a", from: "APPTAINER_PWD"},
		{name: "launch over apptainer", env: map[string]string{"LAUNCH_PWD": "/l", "SINGULARITY_PWD": "/s", "APPTAINER_PWD": "/a"}, compat: true,
			flag: "pwd", want: "/l", from: "LAUNCH_PWD"},
		{name: "command line over all", env: map[string]string{"LAUNCH_PWD": "/l", "APPTAINER_PWD": "/a"}, args: []string{"--cwd", "/c"}, compat: true,
			flag: "pwd", want: "/c"},
		{name: "cwd key", env: map[string]string{"APPTAINER_CWD": "/c"}, compat: true, flag: "pwd", want: "/c", from: "APPTAINER_CWD"},
		{name: "apptainer cwd over singularity pwd", env: map[string]string{"APPTAINER_TARGET_CWD": "/c", "SINGULARITY_PWD": "/s"}, compat: true,
			flag: "pwd", want: "/c", from: "APPTAINER_TARGET_CWD"},
		{name: "second key", env: map[string]string{"APPTAINER_UNSHARE_PID": "yes"}, compat: true, flag: "pid", want: "true", from: "APPTAINER_UNSHARE_PID"},
		{name: "list", env: map[string]string{"APPTAINER_NO_MOUNT": "tmp,cwd"}, compat: true, flag: "no-mount", want: "[tmp,cwd]", from: "APPTAINER_NO_MOUNT"},
		{name: "opposite on the command line", env: map[string]string{"APPTAINER_NO_HOME": "1"}, args: []string{"-H", "/h"}, compat: true,
			flag: "no-home", want: "false"},
		{name: "opposite from launch", env: map[string]string{"APPTAINER_NO_HOME": "1", "LAUNCH_HOME": "/h"}, compat: true,
			flag: "no-home", want: "false"},
		{name: "option launch lacks", env: map[string]string{"APPTAINER_COMPAT32": "1", "SINGULARITY_USERNS": "1", "APPTAINER_SANDBOX": "1"}, compat: true,
			flag: "compat32", ignored: "APPTAINER_COMPAT32:warn"},
		{name: "option launch already behaves as", env: map[string]string{"SINGULARITY_USERNS": "1"}, compat: true,
			flag: "userns", want: "true", from: "SINGULARITY_USERNS"},
		{name: "lacking, compat off", env: map[string]string{"APPTAINER_COMPAT32": "1"}, flag: "compat32"},
		{name: "APPTAINER_NV", env: map[string]string{"APPTAINER_NV": "1"}, compat: true, flag: "nv", want: "true", from: "APPTAINER_NV"},
		{name: "LAUNCH_NV over APPTAINER_NV", env: map[string]string{"APPTAINER_NV": "1", "LAUNCH_NV": "false"}, compat: true,
			flag: "nv", want: "false", from: "LAUNCH_NV"},
		{name: "APPTAINER_ROCM", env: map[string]string{"APPTAINER_ROCM": "true"}, compat: true, flag: "rocm", want: "true", from: "APPTAINER_ROCM"},
		{name: "shell", cmd: "shell", env: map[string]string{"APPTAINER_SHELL": "/bin/zsh"}, compat: true, flag: "shell", want: "/bin/zsh", from: "APPTAINER_SHELL"},
		{name: "no shell on exec", env: map[string]string{"APPTAINER_SHELL": "/bin/zsh"}, compat: true, flag: "shell"},
		{name: "dirs", env: map[string]string{"APPTAINER_CACHEDIR": "/ac", "SINGULARITY_CACHEDIR": "/sc", "SINGULARITY_TMPDIR": "/st"}, compat: true,
			flag: "pwd", want: "", dirs: "LAUNCH_CACHEDIR=/ac,LAUNCH_TMPDIR=/st"},
		{name: "launch dir wins", env: map[string]string{"APPTAINER_CACHEDIR": "/ac", "LAUNCH_CACHEDIR": "/l"}, compat: true, flag: "pwd"},
		{name: "dirs compat off", env: map[string]string{"APPTAINER_CACHEDIR": "/ac"}, flag: "pwd"},
		{name: "build credentials", cmd: "build", env: map[string]string{"APPTAINER_DOCKER_USERNAME": "u", "SINGULARITY_DOCKER_PASSWORD": "p", "APPTAINER_NOHTTPS": "1"},
			compat: true, flag: "docker-password", want: "p", from: "SINGULARITY_DOCKER_PASSWORD"},
		{name: "build nohttps", cmd: "build", env: map[string]string{"APPTAINER_NO_HTTPS": "true"}, compat: true, flag: "nohttps", want: "true", from: "APPTAINER_NO_HTTPS"},
		{name: "build arch key", cmd: "build", env: map[string]string{"APPTAINER_BUILD_ARCH": "arm64", "APPTAINER_PULL_ARCH": "ppc64le"}, compat: true,
			flag: "arch", want: "arm64", from: "APPTAINER_BUILD_ARCH"},
		{name: "bad value names the variable", env: map[string]string{"SINGULARITY_CONTAIN": "maybe"}, compat: true,
			flag: "contain", err: "SINGULARITY_CONTAIN=maybe: invalid value for --contain"},
		{name: "bind is not a flag default", env: map[string]string{"APPTAINER_BIND": "/x"}, compat: true, flag: "bind", want: "[]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cmd *cobra.Command
			args := append(append([]string{}, c.args...), "img", "true")
			switch c.cmd {
			case "", "exec":
				cmd = newExecCmd(&globals{})
			case "shell":
				cmd = newShellCmd(&globals{})
			case "build":
				cmd = newBuildCmd(&globals{})
				args = append(append([]string{}, c.args...), "out.sif", "docker://x")
			}
			if err := cmd.ParseFlags(args); err != nil {
				t.Fatal(err)
			}
			got, err := applyEnvFlags(cmd, func(k string) string { return c.env[k] }, c.compat)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fl := cmd.Flags().Lookup(c.flag); fl != nil {
				v := fl.Value.String()
				if v != c.want {
					t.Errorf("--%s = %q, want %q", c.flag, v, c.want)
				}
				from := strings.Join(fl.Annotations[envAnnotation], ",")
				if from != c.from {
					t.Errorf("--%s set by %q, want %q", c.flag, from, c.from)
				}
			} else if c.want != "" {
				t.Fatalf("no --%s", c.flag)
			}
			var ig []string
			for _, v := range got.ignored {
				ig = append(ig, v.name+":"+map[bool]string{true: "quiet", false: "warn"}[v.quiet])
			}
			if s := strings.Join(ig, ","); s != c.ignored {
				t.Errorf("ignored %q, want %q", s, c.ignored)
			}
			var ds []string
			for _, d := range got.dirs {
				ds = append(ds, d[0]+"="+d[1])
			}
			if s := strings.Join(ds, ","); s != c.dirs {
				t.Errorf("dirs %q, want %q", s, c.dirs)
			}
		})
	}
}

// TestCompatKeysNameFlags: every entry of the table that names an option
// launch has on one of its commands names it on a command of the entry's
// group, so that a typo in the table (or a renamed launch flag) does not
// silently turn an honoured variable into an ignored one.
func TestCompatKeysNameFlags(t *testing.T) {
	g := &globals{oci: forwarders()}
	root := newRoot(g, "")
	honoured := map[string]bool{ // options the table must find on launch's commands
		"exec/cleanenv": true, "exec/contain": true, "exec/containall": true, "exec/cwd": true, "exec/pwd": true,
		"exec/home": true, "exec/no-home": true, "exec/no-mount": true, "exec/hostname": true, "exec/pid": true,
		"exec/ipc": true, "exec/net": true, "exec/uts": true, "exec/overlay": true, "exec/scratch": true,
		"exec/workdir": true, "exec/writable": true, "exec/writable-tmpfs": true, "exec/env-file": true,
		"exec/mount": true, "shell/shell": true, "build/docker-username": true, "build/docker-password": true,
		"build/nohttps": true, "build/disable-cache": true, "build/force": true, "build/sandbox": true, "build/arch": true,
		"exec/debug": true, "exec/quiet": true, "exec/verbose": true,
	}
	found := map[string]bool{}
	for _, e := range compatKeys {
		for _, sub := range root.Commands() {
			if !inGroup(e.group, sub.Name()) || e.dirVar != "" || e.group == groupAll && sub.Name() != "exec" {
				continue
			}
			fs := sub.Flags()
			fs.AddFlagSet(root.PersistentFlags())
			if fs.Lookup(e.flag) != nil {
				found[sub.Name()+"/"+e.flag] = true
			}
		}
	}
	for k := range honoured {
		if !found[k] {
			t.Errorf("%s: no launch option for the table's entry", k)
		}
	}
	if got := fmt.Sprint(BindEnvNames(true)); got != "[SINGULARITY_BINDPATH SINGULARITY_BIND APPTAINER_BINDPATH APPTAINER_BIND LAUNCH_BINDPATH LAUNCH_BIND]" {
		t.Errorf("BindEnvNames(true) = %s", got)
	}
	if got := fmt.Sprint(BindEnvNames(false)); got != "[LAUNCH_BINDPATH LAUNCH_BIND]" {
		t.Errorf("BindEnvNames(false) = %s", got)
	}
}
