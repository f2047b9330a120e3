// Package cdi resolves Container Device Interface devices with the CNCF
// CDI library (tags.cncf.io/container-device-interface): it reads the specs
// of the given directories, checks them, and turns the named devices into
// the plain edits of internal/gpu (CDIEdits). Only the helper program
// cmd/launch-cdi imports it, so that the library's YAML and OCI packages are
// not linked into launch itself.
//
// It must not act on the edits: launch's container package binds what they
// name, through its mount plan.
package cdi

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"tags.cncf.io/container-device-interface/pkg/cdi"
	specs "tags.cncf.io/container-device-interface/specs-go"

	"github.com/launch-hpc/launch/internal/gpu"
)

// Resolve reads the CDI specs in dirs (later directories win for the same
// device) and returns the edits of devices, each spec's common edits once.
// A spec that does not parse or validate is an error naming its file, and
// so is a device no spec defines unless optional (then it is listed in
// Unresolved); edits launch cannot make (network devices, Intel RDT, extra
// groups) are errors naming the device.
func Resolve(dirs, devices []string, optional bool) (gpu.CDIEdits, error) {
	cache, err := cdi.NewCache(cdi.WithSpecDirs(dirs...), cdi.WithAutoRefresh(false))
	if err != nil && cache == nil {
		return gpu.CDIEdits{}, fmt.Errorf("reading CDI specs in %s: %w", strings.Join(dirs, ","), err)
	}
	if errs := cache.GetErrors(); len(errs) > 0 {
		paths := make([]string, 0, len(errs))
		for p := range errs {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		return gpu.CDIEdits{}, fmt.Errorf("CDI spec %s: %s", paths[0], oneLine(errors.Join(errs[paths[0]]...)))
	}
	var out gpu.CDIEdits
	specDone := map[*cdi.Spec]bool{}
	for _, name := range devices {
		d := cache.GetDevice(name)
		if d == nil {
			if optional {
				out.Unresolved = append(out.Unresolved, name)
				continue
			}
			return gpu.CDIEdits{}, fmt.Errorf("CDI device %s is not defined by any spec in %s (known: %s)",
				name, strings.Join(dirs, ","), known(cache))
		}
		if s := d.GetSpec(); !specDone[s] {
			specDone[s] = true
			if err := add(&out, name+" (spec "+s.GetPath()+")", s.ContainerEdits); err != nil {
				return gpu.CDIEdits{}, err
			}
		}
		if err := add(&out, name, d.ContainerEdits); err != nil {
			return gpu.CDIEdits{}, err
		}
	}
	return out, nil
}

// add appends the edits e of device dev to out.
func add(out *gpu.CDIEdits, dev string, e specs.ContainerEdits) error {
	switch {
	case len(e.NetDevices) > 0:
		return fmt.Errorf("CDI device %s: network devices are not supported by launch", dev)
	case e.IntelRdt != nil:
		return fmt.Errorf("CDI device %s: Intel RDT settings are not supported by launch", dev)
	case len(e.AdditionalGIDs) > 0:
		return fmt.Errorf("CDI device %s: additional groups (additionalGids) need root to set; launch runs as the calling user", dev)
	}
	out.Env = append(out.Env, e.Env...)
	for _, n := range e.DeviceNodes {
		hp := n.HostPath
		if hp == "" {
			hp = n.Path
		}
		out.Nodes = append(out.Nodes, gpu.CDINode{Device: dev, Path: n.Path, HostPath: hp})
	}
	for _, m := range e.Mounts {
		out.Mounts = append(out.Mounts, gpu.CDIMount{Device: dev, HostPath: m.HostPath, ContainerPath: m.ContainerPath,
			Type: m.Type, Options: m.Options})
	}
	for _, h := range e.Hooks {
		out.Hooks = append(out.Hooks, gpu.CDIHook{Device: dev, HookName: h.HookName, Path: h.Path, Args: h.Args})
	}
	return nil
}

// known lists the devices the cache has, for the message of an unknown one.
func known(c *cdi.Cache) string {
	l := c.ListDevices()
	if len(l) == 0 {
		return "none"
	}
	if len(l) > 10 {
		l = append(l[:10], "…")
	}
	return strings.Join(l, ", ")
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
