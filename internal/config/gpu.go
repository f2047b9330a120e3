package config

import (
	"path/filepath"

	"github.com/launch-hpc/launch/internal/buildinfo"
)

// GPU says how --nv and --rocm find the host's GPU driver (internal/gpu).
type GPU struct {
	// NVLibList and ROCmLibList are the library lists of --nv and --rocm;
	// a relative name is taken in the directory of the installed
	// launch.conf ($(SYSCONFDIR)/launch), where make install puts them.
	NVLibList   string `toml:"nvliblist"`
	ROCmLibList string `toml:"rocmliblist"`
	// Ldconfig is the program whose `-p` lists the host's ld.so cache.
	Ldconfig string `toml:"ldconfig"`
	// AlwaysNV acts as if every exec, run and shell had --nv (sites whose
	// nodes all have NVIDIA GPUs).
	AlwaysNV bool `toml:"always_nv"`
	// NVCCLI is the nvidia-container-cli program of --nvccli.
	NVCCLI string `toml:"nvidia_container_cli"`
	// NVPreferCDI makes --nv use the CDI devices nvidia.com/gpu=all when a
	// CDI spec of cdi.spec_dirs defines them, instead of nvliblist.conf.
	NVPreferCDI bool `toml:"nv_prefer_cdi"`
}

// CDI says where Container Device Interface specs are (--device).
type CDI struct {
	// SpecDirs are searched in order, a later one's spec winning for the
	// same device; --cdi-dirs replaces them.
	SpecDirs []string `toml:"spec_dirs"`
}

// defaultGPU and defaultCDI are the built-in [gpu] and [cdi] tables.
func defaultGPU() GPU {
	return GPU{NVLibList: "nvliblist.conf", ROCmLibList: "rocmliblist.conf", Ldconfig: "/sbin/ldconfig",
		NVCCLI: "nvidia-container-cli"}
}

func defaultCDI() CDI { return CDI{SpecDirs: []string{"/etc/cdi", "/var/run/cdi"}} }

// ListFile is the path of a library list named name (GPU.NVLibList or
// ROCmLibList): name itself when absolute, else in the directory of the
// installed launch.conf.
func ListFile(name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(filepath.Dir(buildinfo.ConfigFile()), name)
}

// checkGPU validates the [gpu] and [cdi] tables.
func (l *Loaded) checkGPU(bad func(key, format string, a ...any) error) error {
	for key, v := range map[string]string{"gpu.nvliblist": l.GPU.NVLibList, "gpu.rocmliblist": l.GPU.ROCmLibList,
		"gpu.ldconfig": l.GPU.Ldconfig, "gpu.nvidia_container_cli": l.GPU.NVCCLI} {
		if v == "" {
			return bad(key, "must not be empty")
		}
	}
	for _, d := range l.CDI.SpecDirs {
		if !filepath.IsAbs(d) {
			return bad("cdi.spec_dirs", "%q is not an absolute path", d)
		}
	}
	return nil
}
