package container

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/launch-hpc/launch/internal/filekind"

	"github.com/launch-hpc/launch/internal/environ"
	"github.com/launch-hpc/launch/internal/gpu"
	"github.com/launch-hpc/launch/internal/mountplan"
	"github.com/launch-hpc/launch/internal/msg"
	"github.com/launch-hpc/launch/internal/paths"
	"github.com/launch-hpc/launch/internal/runspec"
)

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
