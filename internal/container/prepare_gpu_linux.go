package container

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/launch-hpc/launch/internal/config"
	"github.com/launch-hpc/launch/internal/environ"
	"github.com/launch-hpc/launch/internal/gpu"
	"github.com/launch-hpc/launch/internal/layout"
	"github.com/launch-hpc/launch/internal/mountplan"
	"github.com/launch-hpc/launch/internal/msg"
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
