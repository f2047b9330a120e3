package gpu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/launch-hpc/launch/internal/capwriter"
	"github.com/launch-hpc/launch/internal/subproc"

	"github.com/launch-hpc/launch/internal/helper"
)

// CDIHelper is the helper program that parses and resolves CDI specs
// (cmd/launch-cdi): the CDI library and its YAML and OCI dependencies stay
// out of the launch binary, and off the start of every container.
const CDIHelper = "launch-cdi"

// CDIEdits are the resolved container edits of a set of CDI devices, as the
// helper prints them (JSON).
type CDIEdits struct {
	// Env are NAME=VALUE settings.
	Env []string `json:"env,omitempty"`
	// Nodes are the device nodes.
	Nodes []CDINode `json:"nodes,omitempty"`
	// Mounts are the mounts.
	Mounts []CDIMount `json:"mounts,omitempty"`
	// Hooks are the OCI hooks the specs ask for.
	Hooks []CDIHook `json:"hooks,omitempty"`
	// Unresolved are the names no spec defines (only with optional
	// resolution; otherwise they are an error).
	Unresolved []string `json:"unresolved,omitempty"`
}

// CDINode is a device node: Path inside, HostPath on the host.
type CDINode struct {
	Device   string `json:"device"`
	Path     string `json:"path"`
	HostPath string `json:"hostPath"`
}

// CDIMount is a mount of HostPath on ContainerPath.
type CDIMount struct {
	Device        string   `json:"device"`
	HostPath      string   `json:"hostPath"`
	ContainerPath string   `json:"containerPath"`
	Type          string   `json:"type,omitempty"`
	Options       []string `json:"options,omitempty"`
}

// CDIHook is an OCI hook of a spec.
type CDIHook struct {
	Device   string   `json:"device"`
	HookName string   `json:"hookName"`
	Path     string   `json:"path"`
	Args     []string `json:"args,omitempty"`
}

// cdiTimeout bounds one run of the helper.
const cdiTimeout = 30 * time.Second

// ResolveCDI runs the helper to resolve devices against the specs in dirs.
// With optional, names no spec defines are returned in Unresolved instead
// of failing.
func ResolveCDI(dirs, devices []string, optional bool) (CDIEdits, error) {
	prog, err := helper.Find(CDIHelper)
	if err != nil {
		return CDIEdits{}, fmt.Errorf("CDI devices: %w", err)
	}
	args := []string{"resolve", "--spec-dirs", strings.Join(dirs, ",")}
	if optional {
		args = append(args, "--optional")
	}
	args = append(append(args, "--"), devices...)
	ctx, cancel := context.WithTimeout(context.Background(), cdiTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	out, errb := capwriter.Buffer{Max: maxLdconfigOutput}, capwriter.Buffer{Max: 4096}
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := subproc.Run(cmd); err != nil {
		if m := strings.TrimSpace(errb.String()); m != "" {
			return CDIEdits{}, errors.New(firstLine(m))
		}
		return CDIEdits{}, fmt.Errorf("running %s: %w", prog, err)
	}
	var e CDIEdits
	if err := json.NewDecoder(bytes.NewReader(out.Bytes())).Decode(&e); err != nil {
		return CDIEdits{}, fmt.Errorf("reading the output of %s: %w", prog, err)
	}
	return e, nil
}
