package mountplan

// DeviceMount is one host path a GPU or CDI device needs in the container
// (internal/container's prepare finds them; internal/gpu names them).
type DeviceMount struct {
	// Source is the host path (a library, program, file or device node),
	// Dest where it appears inside.
	Source, Dest string
	// ReadOnly binds it read-only (libraries, programs and files are).
	ReadOnly bool
	// IfAbsent skips it when the image already has Dest (a driver program
	// in /usr/bin is the image's own when it ships one).
	IfAbsent bool
}

// DeviceBind is the Name of the ops of DeviceMounts.
const DeviceBind = "device"

// deviceOps are the ops of the device mounts, after the site's binds and
// before the user's (which win).
func deviceOps(ms []DeviceMount) []Op {
	ops := make([]Op, 0, len(ms))
	for _, m := range ms {
		ops = append(ops, Op{Name: DeviceBind, Kind: Bind, Source: m.Source, Dest: m.Dest, ReadOnly: m.ReadOnly, IfAbsent: m.IfAbsent})
	}
	return ops
}
