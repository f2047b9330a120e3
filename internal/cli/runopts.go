package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/launch-hpc/launch/internal/buildinfo"
	"github.com/launch-hpc/launch/internal/config"
	"github.com/launch-hpc/launch/internal/container"
	"github.com/launch-hpc/launch/internal/environ"
	"github.com/launch-hpc/launch/internal/image"
	"github.com/launch-hpc/launch/internal/mountplan"
)

// ConfEnv names the variable that points launch at another config file.
// It is documented in docs/admin.md as one of the things a user can always
// change: the config is a set of site defaults, not a security boundary.
const ConfEnv = "LAUNCH_CONF"

// loadConfig reads the site config (or the file named by LAUNCH_CONF).
// A missing site config means the built-in defaults; a missing file that
// LAUNCH_CONF names is an error, since its settings were clearly wanted.
func loadConfig() (*config.Loaded, error) {
	p := os.Getenv(ConfEnv)
	if p == "" {
		return config.Load(buildinfo.ConfigFile())
	}
	l, err := config.Load(p)
	if err == nil && !l.Found {
		return nil, fmt.Errorf("%s=%s: no such file", ConfEnv, p)
	}
	return l, err
}

// bindEnvs are the variables that add binds, lowest precedence first; all
// of them apply, before the --bind flags. The Apptainer and Singularity ones
// count only when the site keeps env.apptainer_compat on.
var bindEnvs = []struct {
	name   string
	compat bool
}{
	{"SINGULARITY_BINDPATH", true}, {"SINGULARITY_BIND", true},
	{"APPTAINER_BINDPATH", true}, {"APPTAINER_BIND", true},
	{"LAUNCH_BINDPATH", false}, {"LAUNCH_BIND", false},
}

// resolve turns the flags, the environment and the site config into the
// container's Config. It checks everything it can before any namespace
// exists, so bad input fails fast with one line.
func resolve(f *runFlags, conf *config.Config, mode container.Mode, imagePath string, args []string, hostEnv []string) (*container.Config, error) {
	img, err := openImage(conf, imagePath)
	if err != nil {
		return nil, err
	}
	if f.containAll {
		f.contain, f.cleanenv, f.pid, f.ipc = true, true, true, true
	}
	ns := container.Namespaces{PID: f.pid, IPC: f.ipc, Net: f.net, UTS: f.uts || f.hostname != "", Hostname: f.hostname}
	if err := checkNamespaces(conf, ns, f.containAll); err != nil {
		return nil, err
	}
	user := container.CurrentUser()
	cwd, _ := os.Getwd()
	getenv := func(k string) string { return environ.Get(hostEnv, k) }

	binds, err := userBinds(f, conf, cwd, getenv)
	if err != nil {
		return nil, err
	}
	spec := mountplan.Spec{Home: user.Home, Cwd: cwd, PIDNamespace: ns.PID, Disabled: disabledMounts(conf, f),
		Contain: f.contain, ContainSize: conf.Tmpfs.Contain, Binds: binds,
		Scratch: f.scratch, ScratchSize: conf.Tmpfs.Writable}
	if err := prepareWorkdir(f, cwd, user.UID, &spec); err != nil {
		return nil, err
	}
	lay, err := layers(f, conf, img, user.UID, cwd)
	if err != nil {
		return nil, err
	}
	if f.home != "" {
		if f.noHome {
			return nil, errors.New("--home and --no-home contradict each other")
		}
		if err := homeSpec(f.home, cwd, conf, &spec); err != nil {
			return nil, err
		}
		user.Home = spec.HomeDst
	}
	for _, s := range conf.Mounts.System {
		bs, err := mountplan.ParseBinds(s, "/", "launch.conf mounts.system")
		if err != nil {
			return nil, err
		}
		spec.System = append(spec.System, bs...)
	}
	plan, err := mountplan.Build(spec)
	if err != nil {
		return nil, err
	}
	env, err := environment(f, conf, hostEnv)
	if err != nil {
		return nil, err
	}
	cfg := &container.Config{
		Image:        *img,
		Plan:         plan,
		User:         user,
		Cwd:          cwd,
		Pwd:          f.pwd,
		QuietCwd:     f.contain,
		Env:          env.Base,
		EnvOverrides: env.Overrides,
		Mode:         mode,
		Args:         args,
		Shell:        f.shell,
		Namespaces:   ns,
		Squashfuse:   conf.Tools.Squashfuse,
		Layers:       lay,
		Writable:     f.writable,
		Share:        conf.Images.ShareMounts && !f.noShare,
	}
	if f.pwd != "" && !filepath.IsAbs(f.pwd) {
		return nil, fmt.Errorf("--pwd %s is not an absolute path", f.pwd)
	}
	return cfg, nil
}

// openImage opens the image and checks it against the site's rules.
func openImage(conf *config.Config, path string) (*image.Image, error) {
	img, err := image.Open(path)
	if err != nil {
		return nil, err
	}
	if err := img.CheckArch(); err != nil {
		return nil, err
	}
	allowed := false
	for _, f := range conf.Images.Formats {
		allowed = allowed || f == img.Format.String()
	}
	if !allowed {
		return nil, fmt.Errorf("image %s: %s images are not allowed on this site (launch.conf images.formats = %q)",
			path, img.Format, conf.Images.Formats)
	}
	if len(conf.Images.AllowedPaths) > 0 {
		real, err := filepath.EvalSymlinks(img.Path)
		if err != nil {
			return nil, fmt.Errorf("resolving image %s: %w", path, err)
		}
		if !under(real, conf.Images.AllowedPaths) {
			return nil, fmt.Errorf("image %s is outside the directories this site allows (launch.conf images.allowed_paths = %q)",
				path, conf.Images.AllowedPaths)
		}
	}
	return img, nil
}

// checkNamespaces refuses namespaces the site switched off.
func checkNamespaces(conf *config.Config, ns container.Namespaces, containAll bool) error {
	via := func(flag string) string {
		if containAll && (flag == "--pid" || flag == "--ipc") {
			return flag + " (from --containall)"
		}
		return flag
	}
	for _, c := range []struct {
		want, allowed bool
		flag, key     string
	}{
		{ns.PID, conf.Namespaces.AllowPID, "--pid", "allow_pid"},
		{ns.IPC, conf.Namespaces.AllowIPC, "--ipc", "allow_ipc"},
		{ns.Net, conf.Namespaces.AllowNet, "--net", "allow_net"},
		{ns.UTS, conf.Namespaces.AllowUTS, "--uts/--hostname", "allow_uts"},
	} {
		if c.want && !c.allowed {
			return fmt.Errorf("%s is switched off on this site (launch.conf namespaces.%s = false)", via(c.flag), c.key)
		}
	}
	return nil
}

// userBinds gathers the user's binds: LAUNCH_BIND and friends, then
// --bind, then --mount; each source must exist and be allowed.
func userBinds(f *runFlags, conf *config.Config, cwd string, getenv func(string) string) ([]mountplan.BindSpec, error) {
	var binds []mountplan.BindSpec
	for _, e := range bindEnvs {
		if e.compat && !conf.Env.Apptainer {
			continue
		}
		if v := getenv(e.name); v != "" {
			bs, err := mountplan.ParseBinds(v, cwd, e.name)
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
	if len(binds) > 0 && !conf.Binds.AllowUser {
		return nil, fmt.Errorf("%s %s: user binds are switched off on this site (launch.conf binds.allow_user = false)", binds[0].Origin, binds[0])
	}
	for _, b := range binds {
		if err := checkSource(b.Source, conf); err != nil {
			return nil, fmt.Errorf("%s %s: %w", b.Origin, b, err)
		}
	}
	return binds, nil
}

// checkSource checks that a user-given host path exists and is allowed.
func checkSource(src string, conf *config.Config) error {
	if _, err := os.Stat(src); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("source %s does not exist", src)
		}
		return fmt.Errorf("source %s: %w", src, unwrapPath(err))
	}
	if len(conf.Binds.AllowedPaths) > 0 {
		real, err := filepath.EvalSymlinks(src)
		if err != nil {
			return fmt.Errorf("resolving source %s: %w", src, err)
		}
		if !under(real, conf.Binds.AllowedPaths) {
			return fmt.Errorf("source %s is outside the directories this site allows binding (launch.conf binds.allowed_paths = %q)",
				real, conf.Binds.AllowedPaths)
		}
	}
	return nil
}

// homeSpec applies -H SRC[:DST].
func homeSpec(v, cwd string, conf *config.Config, spec *mountplan.Spec) error {
	src, dst, _ := strings.Cut(v, ":")
	if src == "" {
		return fmt.Errorf("--home %q: empty source", v)
	}
	if !filepath.IsAbs(src) {
		src = filepath.Join(cwd, src)
	}
	if dst == "" {
		dst = src
	}
	if err := mountplan.CheckDest(dst); err != nil {
		return fmt.Errorf("--home %s: %w", v, err)
	}
	if !conf.Binds.AllowUser {
		return fmt.Errorf("--home %s: user binds are switched off on this site (launch.conf binds.allow_user = false)", v)
	}
	if err := checkSource(src, conf); err != nil {
		return fmt.Errorf("--home %s: %w", v, err)
	}
	if fi, err := os.Stat(src); err == nil && !fi.IsDir() {
		return fmt.Errorf("--home %s: %s is not a directory", v, src)
	}
	spec.HomeSrc, spec.HomeDst, spec.HomeGiven = filepath.Clean(src), filepath.Clean(dst), true
	return nil
}

// disabledMounts merges the site's switched-off default mounts with
// --no-mount and --no-home.
func disabledMounts(conf *config.Config, f *runFlags) map[string]bool {
	m := conf.Mounts
	d := map[string]bool{}
	for name, on := range map[string]bool{"proc": m.Proc, "sys": m.Sys, "dev": m.Dev, "tmp": m.Tmp, "home": m.Home,
		"cwd": m.Cwd, "hosts": m.Hosts, "localtime": m.Localtime, "resolv": m.Resolv} {
		if !on {
			d[name] = true
		}
	}
	for _, n := range f.noMount {
		d[strings.TrimSpace(n)] = true
	}
	if f.noHome {
		d["home"] = true
	}
	return d
}

// environment applies the environment rules.
func environment(f *runFlags, conf *config.Config, hostEnv []string) (environ.Result, error) {
	var files [][]environ.Var
	for _, p := range f.envFiles {
		vars, err := environ.ReadFile(p)
		var pe *os.PathError
		if errors.As(err, &pe) {
			return environ.Result{}, fmt.Errorf("--env-file %s: %w", p, pe.Err)
		}
		if err != nil {
			return environ.Result{}, err
		}
		files = append(files, vars)
	}
	return environ.Build(environ.Request{
		Host: hostEnv, Cleanenv: f.cleanenv, Keep: conf.Env.CleanenvKeep, Compat: conf.Env.Apptainer,
		Files: files, Flags: f.envs,
	})
}

// under reports whether path (symlinks resolved) is one of dirs or below
// one of them; dirs are resolved too, as sites often have /home or /scratch
// as symlinks.
func under(path string, dirs []string) bool {
	for _, d := range dirs {
		if real, err := filepath.EvalSymlinks(d); err == nil {
			d = real
		}
		d = filepath.Clean(d)
		if path == d || strings.HasPrefix(path, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}

// unwrapPath drops the path from an *os.PathError, whose message the
// caller already names.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
