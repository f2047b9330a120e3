package container

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/launch-hpc/launch/internal/config"
	"github.com/launch-hpc/launch/internal/environ"
	"github.com/launch-hpc/launch/internal/filekind"
	"github.com/launch-hpc/launch/internal/gpu"
	"github.com/launch-hpc/launch/internal/layout"
	"github.com/launch-hpc/launch/internal/mountplan"
	"github.com/launch-hpc/launch/internal/msg"
	"github.com/launch-hpc/launch/internal/paths"
	"github.com/launch-hpc/launch/internal/runspec"
)

// hostDev is the host's device directory.
const hostDev = "/dev"

// visibleDevices returns the host variables that say which GPUs a job was
// given (Slurm's --gres sets CUDA_VISIBLE_DEVICES): they pass into the
// container with --nv or --rocm even under --cleanenv. A new slice each
// time: the caller may append to it.
func visibleDevices() []string {
	return []string{"NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES",
		"ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL"}
}

// devicesPlan is what the GPU and device options add to the container.
type devicesPlan struct {
	// mounts go into the mount plan (mountplan.Spec.Devices).
	mounts []mountplan.DeviceMount
	// env are the CDI specs' variables, applied before the user's --env.
	env []environ.Var
	// pass are the visibleDevices() passed in under --cleanenv.
	pass []string
	// libPath are the directories for LD_LIBRARY_PATH (Config.LibPath).
	libPath []string
}

// prepareDevices finds on the host what s.Devices asks for. Without a GPU
// or device option it returns at once: no file is read, nothing is run.
func prepareDevices(s *runspec.Spec) (devicesPlan, error) {
	var p devicesPlan
	d := s.Devices
	if !d.Any() {
		return p, nil
	}
	conf := s.Site
	log := msg.Stderr(msg.Level(s.LogLevel))
	hostPath := environ.Get(s.Env.Host, "PATH")
	// Device nodes are there with the host's /dev; a private one (--contain,
	// --no-mount dev) needs them bound.
	bindNodes := s.Contain || s.Disabled["dev"]
	cdiDevices := d.CDI
	nv := d.NV
	if nv && conf.GPU.NVPreferCDI && !d.NVCCLI {
		e, err := gpu.ResolveCDI(d.CDIDirs, []string{"nvidia.com/gpu=all"}, true)
		if err != nil {
			return p, fmt.Errorf("--nv (launch.conf gpu.nv_prefer_cdi): %w", err)
		}
		if len(e.Unresolved) == 0 {
			log.Verbosef("--nv: using the CDI devices nvidia.com/gpu=all (launch.conf gpu.nv_prefer_cdi)")
			cdiDevices, nv = append(slices.Clone(cdiDevices), "nvidia.com/gpu=all"), false
		} else {
			log.Verbosef("--nv: no CDI spec for nvidia.com/gpu=all in %s: using %s", strings.Join(d.CDIDirs, ","), conf.GPU.NVLibList)
		}
	}
	if nv {
		req := gpu.Request{ListFile: config.ListFile(conf.GPU.NVLibList), Ldconfig: conf.GPU.Ldconfig, Path: hostPath,
			Dev: hostDev, DevPatterns: gpu.NvidiaDevices()}
		if d.NVCCLI {
			req.NVCCLI = conf.GPU.NVCCLI
		}
		if err := p.addDriver("--nv", "NVIDIA", "libcuda.so", req, bindNodes, !d.NVFromConfig, log); err != nil {
			return p, err
		}
	}
	if d.ROCm {
		req := gpu.Request{ListFile: config.ListFile(conf.GPU.ROCmLibList), Ldconfig: conf.GPU.Ldconfig, Path: hostPath,
			Dev: hostDev, DevPatterns: gpu.ROCmDevices()}
		if err := p.addDriver("--rocm", "AMD ROCm", "", req, bindNodes, true, log); err != nil {
			return p, err
		}
	}
	if nv || d.ROCm {
		p.pass = visibleDevices()
	}
	if len(cdiDevices) > 0 {
		if err := p.addCDI(s, cdiDevices, bindNodes, log); err != nil {
			return p, err
		}
	}
	return p, nil
}

// addDriver adds what Find finds for req. With no device node and not the
// driver's key library (key, "" for none) found, a warning says so (with
// warn; else under -v) and the container still runs, as with Apptainer;
// what the list names and the host lacks is said under -v.
func (p *devicesPlan) addDriver(flag, vendor, key string, req gpu.Request, bindNodes, warn bool, log *msg.Logger) error {
	f, err := gpu.Find(req)
	if err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	if len(f.Devices) == 0 && (key == "" || !hasLib(f.Libs, key)) {
		what := fmt.Sprintf("%s: no %s driver found on this host (no %s device nodes", flag, vendor, strings.Join(req.DevPatterns, " "))
		if key != "" {
			what += fmt.Sprintf(", no %s in the ld.so cache of %s", key, req.Ldconfig)
		}
		what += ")"
		if warn {
			log.Warnf("%s; the container runs without it", what)
		} else {
			log.Verbosef("%s (launch.conf gpu.always_nv)", what)
		}
	}
	if len(f.Missing) > 0 {
		log.Verbosef("%s: not on this host, skipped: %s", flag, strings.Join(f.Missing, " "))
	}
	for _, l := range f.Libs {
		p.mounts = append(p.mounts, mountplan.DeviceMount{Source: l.Path, Dest: path.Join(layout.LibsDir, l.Name), ReadOnly: true})
	}
	if len(f.Libs) > 0 && !slices.Contains(p.libPath, layout.LibsDir) {
		p.libPath = append(p.libPath, layout.LibsDir)
	}
	for _, b := range f.Binaries {
		p.mounts = append(p.mounts, mountplan.DeviceMount{Source: b, Dest: path.Join("/usr/bin", filepath.Base(b)), ReadOnly: true, IfAbsent: true})
	}
	for _, file := range f.Files {
		p.mounts = append(p.mounts, mountplan.DeviceMount{Source: file, Dest: file, ReadOnly: true})
	}
	if bindNodes {
		for _, n := range f.Devices {
			p.mounts = append(p.mounts, mountplan.DeviceMount{Source: n, Dest: n})
		}
	}
	log.Verbosef("%s: %d libraries, %d programs, %d files, %d device nodes from the host", flag,
		len(f.Libs), len(f.Binaries), len(f.Files), len(f.Devices))
	return nil
}

// environment adds the devices' variables to env: the CDI specs' before
// the user's --env and --env-file settings (which win), and under
// --cleanenv the host's visibleDevices().
func (p devicesPlan) environment(env environ.Result, e runspec.Env) environ.Result {
	if len(p.env) > 0 {
		env.Overrides = append(slices.Clone(p.env), env.Overrides...)
	}
	if e.Cleanenv {
		for _, k := range p.pass {
			if v, ok := lookupEnv(e.Host, k); ok && !hasVar(env.Base, k) {
				env.Base = append(env.Base, k+"="+v)
			}
		}
	}
	return env
}

// lookupEnv returns the value of key in env, and whether it is set.
func lookupEnv(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// hasVar reports whether env sets key.
func hasVar(env []string, key string) bool {
	_, ok := lookupEnv(env, key)
	return ok
}

// hasLib reports whether libs holds a library whose name begins with key.
func hasLib(libs []gpu.Lib, key string) bool {
	for _, l := range libs {
		if strings.HasPrefix(l.Name, key) {
			return true
		}
	}
	return false
}

// cdiHookTool reports whether name is one of the programs of the hooks that `nvidia-ctk cdi
// generate` writes. launch runs no OCI hook (they are the runtime's, run as
// root around a container it created); what these do is done otherwise:
// update-ldcache's folders go on LD_LIBRARY_PATH, and the rest (symlinks
// for libraries, device node permissions, CUDA forward compatibility) is
// not needed for the libraries' own names to load.
func cdiHookTool(name string) bool { return name == "nvidia-ctk" || name == "nvidia-cdi-hook" }

// addCDI resolves the CDI devices through the helper and adds their device
// nodes, mounts and variables. A hook launch cannot stand in for, a mount
// that is not a bind, a missing host path: one line each.
func (p *devicesPlan) addCDI(s *runspec.Spec, devices []string, bindNodes bool, log *msg.Logger) error {
	dirs := s.Devices.CDIDirs
	e, err := gpu.ResolveCDI(dirs, devices, false)
	if err != nil {
		return err
	}
	for _, h := range e.Hooks {
		if err := p.cdiHook(h, log); err != nil {
			return err
		}
	}
	for _, n := range e.Nodes {
		if !filepath.IsAbs(n.Path) || !filepath.IsAbs(n.HostPath) {
			return fmt.Errorf("CDI device %s: device node %s (host %s) is not an absolute path", n.Device, n.Path, n.HostPath)
		}
		// Lstat: the node itself, never what a link in its place leads to.
		fi, err := os.Lstat(n.HostPath)
		if err != nil {
			return fmt.Errorf("CDI device %s: device node %s: %w", n.Device, n.HostPath, unwrapPath(err))
		}
		if fi.Mode()&os.ModeDevice == 0 {
			return fmt.Errorf("CDI device %s: %s is not a device node (%s)", n.Device, n.HostPath, filekind.Name(fi.Mode()))
		}
		// Specs in directories the user named are the user's binds.
		if s.Devices.CDIDirsGiven {
			if err := checkSource(n.HostPath, s.Site); err != nil {
				return fmt.Errorf("CDI device %s (--cdi-dirs): device node %w", n.Device, err)
			}
		}
		if bindNodes || filepath.Clean(n.Path) != filepath.Clean(n.HostPath) {
			if !bindNodes && paths.Within(filepath.Clean(n.Path), hostDev) {
				if _, err := os.Lstat(n.Path); err != nil {
					return fmt.Errorf("CDI device %s: device node %s is not in the host's /dev, which the container shares: "+
						"use --contain for a private /dev", n.Device, n.Path)
				}
			}
			p.mounts = append(p.mounts, mountplan.DeviceMount{Source: n.HostPath, Dest: filepath.Clean(n.Path)})
		}
	}
	for _, m := range e.Mounts {
		if err := p.cdiMount(s, m); err != nil {
			return err
		}
	}
	for _, kv := range e.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("CDI devices %s: environment entry %q is not NAME=VALUE", strings.Join(devices, ","), kv)
		}
		p.env = append(p.env, environ.Var{Name: k, Value: v})
	}
	log.Verbosef("CDI devices %s: %d device nodes, %d mounts, %d variables", strings.Join(devices, ","),
		len(e.Nodes), len(e.Mounts), len(e.Env))
	return nil
}

// cdiMount adds one CDI mount: a bind (the only kind launch makes for a
// spec) of an existing host path; "ro" makes it read-only.
func (p *devicesPlan) cdiMount(s *runspec.Spec, m gpu.CDIMount) error {
	if m.Type != "" && m.Type != "bind" && m.Type != "none" {
		return fmt.Errorf("CDI device %s: mount of type %q on %s is not supported (only bind mounts)", m.Device, m.Type, m.ContainerPath)
	}
	if !filepath.IsAbs(m.HostPath) {
		return fmt.Errorf("CDI device %s: mount source %q is not an absolute path", m.Device, m.HostPath)
	}
	dest, err := mountplan.ParseBinds(m.HostPath+":"+m.ContainerPath, "/", "CDI device "+m.Device)
	if err != nil {
		return err
	}
	if _, err := os.Stat(m.HostPath); err != nil {
		return fmt.Errorf("CDI device %s: mount source %s: %w", m.Device, m.HostPath, unwrapPath(err))
	}
	// Specs in directories the user named are the user's binds.
	if s.Devices.CDIDirsGiven {
		if err := checkSource(m.HostPath, s.Site); err != nil {
			return fmt.Errorf("CDI device %s (--cdi-dirs): %w", m.Device, err)
		}
	}
	ro := slices.Contains(m.Options, "ro") || slices.Contains(m.Options, "readonly")
	for _, b := range dest {
		p.mounts = append(p.mounts, mountplan.DeviceMount{Source: b.Source, Dest: b.Dest, ReadOnly: ro})
	}
	return nil
}

// cdiHook handles one hook of a spec: nvidia-ctk's are stood in for or
// left out (cdiHookTool); any other is refused.
func (p *devicesPlan) cdiHook(h gpu.CDIHook, log *msg.Logger) error {
	if !cdiHookTool(filepath.Base(h.Path)) {
		return fmt.Errorf("CDI device %s: its %s hook %s needs an OCI runtime running hooks as root, which launch does not do: "+
			"ask for a spec without hooks", h.Device, h.HookName, h.Path)
	}
	sub := ""
	for i, a := range h.Args {
		if i > 0 && !strings.HasPrefix(a, "-") && a != "hook" {
			sub = a
			break
		}
	}
	if sub != "update-ldcache" {
		log.Verbosef("CDI device %s: %s hook %s %s left out (not needed without an OCI runtime)", h.Device, h.HookName, h.Path, sub)
		return nil
	}
	for i, a := range h.Args {
		var dir string
		switch {
		case a == "--folder" && i+1 < len(h.Args):
			dir = h.Args[i+1]
		case strings.HasPrefix(a, "--folder="):
			dir = strings.TrimPrefix(a, "--folder=")
		}
		if filepath.IsAbs(dir) && !slices.Contains(p.libPath, filepath.Clean(dir)) {
			p.libPath = append(p.libPath, filepath.Clean(dir))
		}
	}
	return nil
}
