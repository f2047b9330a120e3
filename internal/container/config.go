// Package container creates the container: from a checked run
// specification (internal/runspec) it prepares the Config on the host side
// (prepare: opens the image, looks at bind sources, makes the directories of
// --overlay and --workdir, builds the mount plan), re-executes the launcher
// in new user and mount namespaces (the "stage") when it is not already in
// them, assembles the root there (assemble_linux.go: the image through
// internal/fuse or a shared mount, then the steps of internal/rootplan applied
// in order), pivots into it, drops every privilege and runs the payload under
// a small supervisor (supervise_linux.go) that owns what the assembly started,
// forwards signals, and kills whatever the payload left behind.
//
// It must not plan the root (internal/rootplan does), start or track FUSE
// servers by hand (internal/fuse does), or reap outside internal/reap; and
// the host side (prepare) must not make the container's namespaces. See
// docs/architecture.md.
//
// The launcher side (Run) and the stage side (StageMain) talk over one pipe:
// the launcher writes the Config as JSON and then holds the pipe open for as
// long as it lives, so the stage sees end-of-file exactly when the launcher
// is gone (even if it was SIGKILLed) and cleans up.
package container

import (
	"time"

	"github.com/launch-hpc/launch/internal/environ"
	"github.com/launch-hpc/launch/internal/image"
	"github.com/launch-hpc/launch/internal/mountplan"
	"github.com/launch-hpc/launch/internal/runspec"
	"github.com/launch-hpc/launch/internal/subid"
	"github.com/launch-hpc/launch/internal/warmroot"
)

// ReexecArg is the hidden first argument with which launch re-executes
// itself as the container stage (runStage; StageMain runs it).
const ReexecArg = "__launch_stage"

// Mode is what the payload is (runspec.Mode).
type Mode = runspec.Mode

// The payload modes, as the user commands exec, run and shell.
const (
	ModeExec  = runspec.ModeExec
	ModeRun   = runspec.ModeRun
	ModeShell = runspec.ModeShell
	ModeTest  = runspec.ModeTest
)

// User is the calling user's identity, kept the same inside.
type User struct {
	UID   int    `json:"uid"`
	GID   int    `json:"gid"`
	Name  string `json:"name"`
	Group string `json:"group"`
	Gecos string `json:"gecos"`
	Home  string `json:"home"`
	Shell string `json:"shell"`
}

// Namespaces are the optional namespaces beyond user and mount
// (runspec.Namespaces).
type Namespaces = runspec.Namespaces

// Config is everything the stage needs, as plain data.
type Config struct {
	Image image.Image    `json:"image"`
	Plan  mountplan.Plan `json:"plan"`
	User  User           `json:"user"`
	Cwd   string         `json:"cwd"`
	// Pwd is the working directory asked for with --pwd: it must exist.
	Pwd string `json:"pwd,omitempty"`
	// ImageID is the identity (imagetrust.FileID) of the image file whose
	// signatures images.verify = require checked, "" when none was: the
	// stage refuses an image file it opens that is not that one.
	ImageID string `json:"image_id,omitempty"`
	// QuietCwd falls back from a Cwd missing inside to home without a
	// warning (--contain binds no working directory).
	QuietCwd bool `json:"quiet_cwd,omitempty"`
	// Env is the base environment; the image's environment scripts run
	// over it, then EnvOverrides are applied in order.
	Env          []string      `json:"env"`
	EnvOverrides []environ.Var `json:"env_overrides,omitempty"`
	Mode         Mode          `json:"mode"`
	Args         []string      `json:"args"`
	Shell        string        `json:"shell,omitempty"`
	Namespaces   Namespaces    `json:"namespaces"`
	Squashfuse   []string      `json:"squashfuse"`
	// Layers, when set, overlay writable or read-only layers on the image.
	Layers *Layers `json:"layers,omitempty"`
	// Writable mounts a sandbox (directory) image read-write (--writable).
	Writable bool `json:"writable,omitempty"`
	// App is the SCIF app chosen with --app ("" for none; app.go).
	App string `json:"app,omitempty"`
	// Share lets this launch use, or serve, a squashfuse mount of the same
	// image shared with the user's concurrent launches (internal/share).
	Share bool `json:"share,omitempty"`
	// Linger is how long a holder of a shared mount keeps it warm after
	// its last launch is done (warm_linux.go).
	Linger time.Duration `json:"linger,omitempty"`
	// Fakeroot, when set, runs the payload as root in a user namespace
	// mapped as it says (--fakeroot; fakeroot_linux.go); User is then root.
	Fakeroot *Fakeroot `json:"fakeroot,omitempty"`
	// LibPath are the directories of bound GPU libraries for the
	// payload's LD_LIBRARY_PATH (libpath.go).
	LibPath  []string `json:"lib_path,omitempty"`
	LogLevel int      `json:"log_level"`
	// Instance, when set, makes the stage an instance's init
	// (instance_linux.go).
	Instance *Instance `json:"instance,omitempty"`
	// InstanceName is the instance a joining launch runs in (exec
	// instance://NAME), for its APPTAINER_INSTANCE.
	InstanceName string `json:"instance_name,omitempty"`
	// KeepContainer lets a holder keep this launch's container for later
	// launches of the same request (images.keep_containers).
	KeepContainer bool `json:"keep_container,omitempty"`
	// Inputs are the host files besides the image and the bind sources
	// that this Config was made from (launch.conf, /etc/passwd,
	// /etc/group, --env-file files), as they were before prepare read
	// them: a container kept for later launches of the same request is
	// joined only while none changed (warmroot_linux.go).
	Inputs []warmroot.Dep `json:"inputs,omitempty"`
	// Devices: GPUs or CDI devices were asked for (their host files are
	// not among the Inputs).
	Devices bool `json:"devices,omitempty"`
	// ShareNS, when set, makes the stage serve its namespaces to the
	// user's other --sharens launches (sharens_linux.go).
	ShareNS *ShareNS `json:"sharens,omitempty"`
}

// ShareNS is how a --sharens holder's stage serves its namespaces.
type ShareNS struct {
	// Key is what clients must ask with (share.NSKey).
	Key string `json:"key"`
	// ListenFD is the listening socket, bound by the launcher.
	ListenFD int `json:"listen_fd"`
}

// Instance is set on the Config of an instance's init (runspec.Instance).
type Instance = runspec.Instance

// Fakeroot is how the stage of a --fakeroot run is mapped.
type Fakeroot struct {
	// UIDMap and GIDMap map 0 onto the user's ids, and 1… onto the
	// subordinate ranges when there are.
	UIDMap []subid.Mapping `json:"uid_map"`
	GIDMap []subid.Mapping `json:"gid_map"`
	// NewUIDMap and NewGIDMap are the helpers' paths when they write the
	// maps (subordinate ranges); "" when the launcher writes a map of root
	// alone itself.
	NewUIDMap string `json:"newuidmap,omitempty"`
	NewGIDMap string `json:"newgidmap,omitempty"`
}
