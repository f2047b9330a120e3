package cli

import (
	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/config"
	"github.com/launch-hpc/launch/internal/runspec"
)

// gpuFlags are the GPU and device options of exec, run and shell.
type gpuFlags struct {
	nv, nvccli, rocm bool
	devices          []string
	cdiDirs          []string
}

// register adds the GPU and device options to c.
func (f *gpuFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.BoolVar(&f.nv, "nv", false, "bring in the host's NVIDIA driver: libraries (etc/launch/nvliblist.conf), nvidia-smi and friends, /dev/nvidia*")
	fl.BoolVar(&f.nvccli, "nvccli", false, "with --nv, find the driver's files with nvidia-container-cli (implies --nv)")
	fl.BoolVar(&f.rocm, "rocm", false, "bring in the host's AMD ROCm driver: libraries (etc/launch/rocmliblist.conf), /dev/kfd, /dev/dri")
	fl.StringArrayVar(&f.devices, "device", nil, "add a CDI device by its fully qualified name, such as nvidia.com/gpu=0 (repeatable)")
	fl.StringSliceVar(&f.cdiDirs, "cdi-dirs", nil, "directories of CDI specs for --device (comma list; default launch.conf cdi.spec_dirs)")
}

// devicesSpec turns the options and launch.conf into the run's Devices.
func (f *gpuFlags) devicesSpec(conf *config.Config) runspec.Devices {
	d := runspec.Devices{NV: f.nv || f.nvccli, NVCCLI: f.nvccli, ROCm: f.rocm, CDI: f.devices,
		CDIDirs: conf.CDI.SpecDirs}
	if !d.NV && conf.GPU.AlwaysNV {
		d.NV, d.NVFromConfig = true, true
	}
	if len(f.cdiDirs) > 0 {
		d.CDIDirs, d.CDIDirsGiven = f.cdiDirs, true
	}
	return d
}
