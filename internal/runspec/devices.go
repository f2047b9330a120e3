package runspec

import (
	"fmt"
	"strings"
)

// Devices are the GPUs and devices asked for: --nv, --nvccli, --rocm,
// --device and --cdi-dirs (internal/container's prepare_devices_linux.go finds
// them on the host).
type Devices struct {
	// NV is --nv (or launch.conf gpu.always_nv): the NVIDIA driver's
	// libraries, programs and device nodes.
	NV bool
	// NVFromConfig says NV came from gpu.always_nv, not the command line:
	// a host without the driver then says nothing above -v.
	NVFromConfig bool
	// NVCCLI is --nvccli: nvidia-container-cli lists the driver's files
	// (it implies NV).
	NVCCLI bool
	// ROCm is --rocm: the AMD ROCm libraries, programs, /dev/kfd, /dev/dri.
	ROCm bool
	// CDI are the --device names, fully qualified (vendor.com/class=name).
	CDI []string
	// CDIDirs are the directories of CDI specs: --cdi-dirs, else
	// launch.conf cdi.spec_dirs.
	CDIDirs []string
	// CDIDirsGiven is true when the user named CDIDirs with --cdi-dirs.
	CDIDirsGiven bool
}

// Any reports whether any device was asked for.
func (d Devices) Any() bool { return d.NV || d.NVCCLI || d.ROCm || len(d.CDI) > 0 }

// checkDevices: --device names are fully qualified CDI names.
func checkDevices(s *Spec) error {
	for _, n := range s.Devices.CDI {
		if !QualifiedDevice(n) {
			return fmt.Errorf("--device %q is not a CDI device name (vendor.com/class=name, such as nvidia.com/gpu=0)", n)
		}
	}
	return nil
}

// QualifiedDevice reports whether name has the form vendor/class=device
// of a fully qualified CDI device name (the CDI library checks the
// characters of each part).
func QualifiedDevice(name string) bool {
	kind, dev, ok := strings.Cut(name, "=")
	if !ok || dev == "" {
		return false
	}
	vendor, class, ok := strings.Cut(kind, "/")
	return ok && vendor != "" && class != "" && !strings.Contains(class, "/")
}
