package container

import (
	"path"
)

// dropPresent leaves out the device binds marked IfAbsent (a GPU driver's
// programs in /usr/bin) whose destination the image already has: their
// source is closed and forgotten, so the root's plan and the executor
// treat them as binds of a missing optional source. It reads only the
// image index, and only for such ops.
func (a *assembler) dropPresent() {
	for i, op := range a.cfg.Plan.Ops {
		if !op.IfAbsent {
			continue
		}
		src, ok := a.srcs[i]
		if !ok {
			continue
		}
		if _, found, err := a.index.Lookup(path.Clean(op.Dest)); err == nil && found {
			a.log.Debugf("skipping %s: the image has %s", op, op.Dest)
			src.Close()
			delete(a.srcs, i)
		}
	}
}
