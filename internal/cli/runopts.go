package cli

import (
	"fmt"
	"strings"

	"github.com/launch-hpc/launch/internal/config"
	"github.com/launch-hpc/launch/internal/environ"
	"github.com/launch-hpc/launch/internal/mountplan"
	"github.com/launch-hpc/launch/internal/runspec"
)

// spec turns the flags, the environment (hostEnv) and the site config into
// the run specification; cwd is the working directory, against which
// relative paths are taken. It parses the option values (binds, --overlay,
// --home) and checks nothing else: runspec.Validate does, and what needs
// the host is done by internal/container. --containall is expanded into
// the Spec's fields; the flags stay as given.
func (f *runFlags) spec(conf *config.Config, mode runspec.Mode, image string, args, hostEnv []string, cwd string) (*runspec.Spec, error) {
	if f.net && f.network != "" && f.network != "none" { // as Apptainer, --network means nothing without --net
		return nil, fmt.Errorf("--network %q: launch has only none (with --net: loopback alone); CNI networks are not supported", f.network)
	}
	s := &runspec.Spec{
		Mode: mode, Image: image, Args: args, Shell: f.shell, Cwd: cwd, App: f.app,
		NoHome: f.noHome, Disabled: disabledMounts(conf, f), Pwd: f.pwd,
		Contain: f.contain || f.containAll, ContainAll: f.containAll,
		Namespaces: runspec.Namespaces{PID: f.pid || f.containAll, IPC: f.ipc || f.containAll, Net: f.net,
			UTS: f.uts || f.hostname != "", Hostname: f.hostname},
		Writable: f.writable, WritableTmpfs: f.writableTmpfs, Scratch: f.scratch,
		Workdir: runspec.ParseWorkdir(f.workdir, cwd),
		Env:     runspec.Env{Host: hostEnv, Cleanenv: f.cleanenv || f.containAll, Files: f.envFiles, Flags: f.envs},
		NoShare: f.noShare, Linger: f.linger, Fakeroot: f.fakeroot, Site: conf, Devices: f.gpu.devicesSpec(conf),
	}
	getenv := func(k string) string { return environ.Get(hostEnv, k) }
	binds, err := userBinds(f, conf, cwd, getenv)
	if err != nil {
		return nil, err
	}
	s.Binds = binds
	for _, v := range f.overlays {
		o, err := runspec.ParseOverlay(v, cwd)
		if err != nil {
			return nil, err
		}
		s.Overlays = append(s.Overlays, o)
	}
	if f.home != "" {
		h, err := runspec.ParseHome(f.home, cwd)
		if err != nil {
			return nil, err
		}
		s.Home = &h
	}
	return s, nil
}

// userBinds parses the user's binds: LAUNCH_BIND and friends, then --bind,
// then --mount (their sources are checked on the host later).
func userBinds(f *runFlags, conf *config.Config, cwd string, getenv func(string) string) ([]mountplan.BindSpec, error) {
	var binds []mountplan.BindSpec
	for _, name := range BindEnvNames(conf.Env.Apptainer) {
		if v := getenv(name); v != "" {
			bs, err := mountplan.ParseBinds(v, cwd, name)
			if err != nil {
				return nil, err
			}
			binds = append(binds, bs...)
		}
	}
	for _, v := range f.binds {
		bs, err := mountplan.ParseBinds(v, cwd, "--bind")
		if err != nil {
			return nil, err
		}
		binds = append(binds, bs...)
	}
	for _, v := range f.mounts {
		b, err := mountplan.ParseMount(v, cwd)
		if err != nil {
			return nil, err
		}
		binds = append(binds, b)
	}
	return binds, nil
}

// disabledMounts merges the site's switched-off default mounts with
// --no-mount and --no-home.
func disabledMounts(conf *config.Config, f *runFlags) map[string]bool {
	d := map[string]bool{}
	for _, name := range conf.Mounts.Off() {
		d[name] = true
	}
	for _, n := range f.noMount {
		d[strings.TrimSpace(n)] = true
	}
	if f.noHome {
		d["home"] = true
	}
	return d
}
