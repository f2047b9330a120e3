package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/launch-hpc/launch/internal/config"
	"github.com/launch-hpc/launch/internal/environ"
	"github.com/launch-hpc/launch/internal/fakeroot"
	"github.com/launch-hpc/launch/internal/image"
	"github.com/launch-hpc/launch/internal/imagetrust"
	"github.com/launch-hpc/launch/internal/mountplan"
	"github.com/launch-hpc/launch/internal/msg"
	"github.com/launch-hpc/launch/internal/runspec"
)

// prepare turns the checked run specification into the container's
// Config: the launcher side of the run, before any container exists. It
// does what the checks of runspec cannot, since it needs the host: it opens
// the image and checks it against the site's rules, reads the user's
// entry, checks the bind and home sources, reads the --env-file files, and
// builds the mount plan. Only once all of that has passed does it make the
// directories of --workdir and of a writable --overlay, so that bad input
// fails with one line and leaves nothing made.
func prepare(s *runspec.Spec) (*Config, error) {
	inputs := inputsOf(s) // before they are read: a change after is seen
	conf := s.Site
	img, err := openImage(conf, s.Image)
	if err != nil {
		return nil, err
	}
	imageID, err := imagetrust.Check(conf.Images, img.Path, img.Format == image.FormatSIF, msg.Stderr(msg.Level(s.LogLevel)))
	if err != nil {
		return nil, err
	}
	user := CurrentUser()
	host := user // who owns what prepare makes on the host
	for _, b := range s.Binds {
		if err := checkSource(b.Source, conf); err != nil {
			return nil, fmt.Errorf("%s %s: %w", b.Origin, b, err)
		}
	}
	ps := mountplan.Spec{Home: user.Home, Cwd: s.Cwd, PIDNamespace: s.Namespaces.PID, Disabled: s.Disabled,
		Contain: s.Contain, ContainSize: conf.Tmpfs.Contain, Binds: s.Binds,
		Scratch: s.Scratch, ScratchSize: conf.Tmpfs.Writable}
	wd, err := checkWorkdir(s, &ps)
	if err != nil {
		return nil, err
	}
	lay, err := checkLayers(s, img, user.UID, msg.Stderr(msg.Level(s.LogLevel)))
	if err != nil {
		return nil, err
	}
	linger, err := lingerOf(s, conf)
	if err != nil {
		return nil, err
	}
	if h := s.Home; h != nil {
		if err := checkHome(h, conf); err != nil {
			return nil, err
		}
		ps.HomeSrc, ps.HomeDst, ps.HomeGiven = filepath.Clean(h.Src), filepath.Clean(h.Dst), true
		user.Home = ps.HomeDst
	}
	var fake *Fakeroot
	if s.Fakeroot {
		if fake, err = prepareFakeroot(host, fakeroot.Tools{NewUIDMap: conf.Tools.NewUIDMap, NewGIDMap: conf.Tools.NewGIDMap}, msg.Stderr(msg.Level(s.LogLevel))); err != nil {
			return nil, err
		}
		home := ""
		if s.Home != nil {
			home = user.Home
		}
		user = fakerootUser(home)
	}
	for _, v := range conf.Mounts.System {
		bs, err := mountplan.ParseBinds(v, "/", "launch.conf mounts.system")
		if err != nil {
			return nil, err
		}
		ps.System = append(ps.System, bs...)
	}
	devs, err := prepareDevices(s)
	if err != nil {
		return nil, err
	}
	ps.Devices = devs.mounts
	plan, err := mountplan.Build(ps)
	if err != nil {
		return nil, err
	}
	env, err := environment(s.Env, conf)
	if err != nil {
		return nil, err
	}
	env = devs.environment(env, s.Env)
	// Everything is checked: now make what the run needs on the host.
	if err := wd.make(host.UID); err != nil {
		return nil, err
	}
	if err := lay.make(host.UID); err != nil {
		return nil, err
	}
	cfg := &Config{
		Image:        *img,
		Plan:         plan,
		User:         user,
		Cwd:          s.Cwd,
		Pwd:          s.Pwd,
		QuietCwd:     s.Contain,
		Env:          env.Base,
		EnvOverrides: env.Overrides,
		Mode:         s.Mode,
		Args:         s.Args,
		Shell:        s.Shell,
		App:          s.App,
		Namespaces:   s.Namespaces,
		Squashfuse:   conf.Tools.Squashfuse,
		Layers:       lay.layers,
		Writable:     s.Writable && img.Format == image.FormatDir,
		// A shared mount belongs to the user's own namespace: none with
		// --fakeroot.
		Share:         conf.Images.ShareMounts && !s.NoShare && !s.Fakeroot,
		Linger:        linger,
		KeepContainer: conf.Images.KeepContainers,
		Fakeroot:      fake,
		LibPath:       devs.libPath,
		LogLevel:      s.LogLevel,
		Instance:      s.Instance,
	}
	cfg.ImageID = imageID
	cfg.Inputs = inputs
	cfg.Devices = s.Devices.Any()
	logConfig(cfg)
	return cfg, nil
}

// logConfig says, under -d, the plan and the overridden variables, and
// under -v what runs.
func logConfig(cfg *Config) {
	log := msg.Stderr(msg.Level(cfg.LogLevel))
	if log.Level() >= msg.Debug {
		for _, op := range cfg.Plan.Ops {
			log.Debugf("plan: %s", op)
		}
		for _, v := range cfg.EnvOverrides {
			log.Debugf("env override: %s", v.Name)
		}
	}
	log.Verbosef("running %s image %s as %s (uid %d, gid %d)", cfg.Image.Format, cfg.Image.Path, cfg.User.Name, cfg.User.UID, cfg.User.GID)
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

// checkHome checks the host directory of -H: it exists, is allowed and is a
// directory.
func checkHome(h *runspec.Home, conf *config.Config) error {
	if err := checkSource(h.Src, conf); err != nil {
		return fmt.Errorf("--home %s: %w", h.Flag, err)
	}
	if fi, err := os.Stat(h.Src); err == nil && !fi.IsDir() {
		return fmt.Errorf("--home %s: %s is not a directory", h.Flag, h.Src)
	}
	return nil
}

// environment reads the --env-file files and applies the environment rules.
func environment(e runspec.Env, conf *config.Config) (environ.Result, error) {
	var files [][]environ.Var
	for _, p := range e.Files {
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
		Host: e.Host, Cleanenv: e.Cleanenv, Keep: conf.Env.CleanenvKeep, Compat: conf.Env.Apptainer,
		Files: files, Flags: e.Flags,
	})
}
