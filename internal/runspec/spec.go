// Package runspec is the run specification: what one `launch exec`, `run`
// or `shell` asks for, as plain data, and the one ordered list of checks it
// must pass before anything is looked at on the host.
//
// internal/cli fills a Spec from the command line, the environment and
// launch.conf, and calls Validate; internal/container takes the valid Spec
// and does what needs the host (opening the image, looking at bind sources,
// making directories) to make the container's configuration.
//
// The package owns the rules between the options (what contradicts what,
// what the site allows) and the parsing of the option values that are its
// own (--overlay, --home). It must not touch the host: no file system, no
// system calls, no environment; every check is a pure function of the Spec.
package runspec

import (
	"github.com/launch-hpc/launch/internal/config"
	"github.com/launch-hpc/launch/internal/mountplan"
)

// Mode is what the payload is.
type Mode string

// The payload modes, as the user commands exec, run and shell.
const (
	ModeExec  Mode = "exec"
	ModeRun   Mode = "run"
	ModeShell Mode = "shell"
	// ModeTest runs the image's test script (`launch test`).
	ModeTest Mode = "test"
)

// Namespaces are the optional namespaces beyond user and mount.
type Namespaces struct {
	PID      bool   `json:"pid,omitempty"`
	IPC      bool   `json:"ipc,omitempty"`
	Net      bool   `json:"net,omitempty"`
	UTS      bool   `json:"uts,omitempty"`
	Hostname string `json:"hostname,omitempty"`
}

// Extra reports whether any namespace beyond user and mount is asked for.
func (n Namespaces) Extra() bool {
	return n.PID || n.IPC || n.Net || n.UTS || n.Hostname != ""
}

// Instance is set on the Spec of a launch that is an instance's init
// (`launch instance start|run`, which starts it detached).
type Instance struct {
	// Name is the instance's name.
	Name string `json:"name"`
	// Start runs the image's startscript (or, without one, nothing: the
	// instance waits to be stopped); else the runscript.
	Start bool `json:"start,omitempty"`
	// ReadyFD is the descriptor of the readiness handshake
	// (internal/instance).
	ReadyFD int `json:"ready_fd"`
	// JobPid and JobStart name the batch job's step daemon (slurmstepd)
	// that `instance start` ran under, if any: the instance ends when it
	// does, whichever way the batch system tracks the job's processes.
	JobPid   int    `json:"job_pid,omitempty"`
	JobStart uint64 `json:"job_start,omitempty"`
}

// Overlay is one --overlay directory on the host.
type Overlay struct {
	// Dir is the host directory, absolute and clean.
	Dir string
	// ReadOnly stacks it below the writable layer, unchanged (DIR:ro).
	ReadOnly bool
}

// Home is the home directory asked for with -H/--home SRC[:DST].
type Home struct {
	// Flag is the value as given, for messages.
	Flag string
	// Src is the host directory (absolute), Dst where it appears inside
	// (absolute; Src when not given). Neither is cleaned yet: messages
	// about the source name it as the user wrote it.
	Src, Dst string
}

// Env is what the container's environment is made from (internal/environ
// applies the rules).
type Env struct {
	// Host is the launcher's environment.
	Host []string
	// Cleanenv passes only the host variables launch.conf keeps (-e).
	Cleanenv bool
	// Files are the --env-file paths, in order.
	Files []string
	// Flags are the --env values, in order.
	Flags []string
}

// Spec is one run as the user asked for it, with the site configuration it
// is checked against. --containall is already expanded: it sets Contain,
// Env.Cleanenv, Namespaces.PID and Namespaces.IPC, and ContainAll records
// that it did.
type Spec struct {
	// Mode is the command (exec, run or shell).
	Mode Mode
	// Image is the image path as given.
	Image string
	// Args are the command and its arguments (exec), or the runscript's
	// or shell's arguments.
	Args []string
	// Shell is --shell ("" for the default).
	Shell string
	// App is --app: the SCIF app whose runscript, test and environment
	// the payload gets ("" for none).
	App string
	// Cwd is the launcher's working directory on the host ("" when it is
	// unknown).
	Cwd string

	// Binds are the user's binds in order: LAUNCH_BIND and friends, then
	// --bind, then --mount; parsed, their destinations checked.
	Binds []mountplan.BindSpec
	// Home is -H/--home, nil when not given.
	Home *Home
	// NoHome is --no-home.
	NoHome bool
	// Disabled names the default mounts to leave out: the ones the site
	// switched off, --no-mount's and, with --no-home, "home".
	Disabled map[string]bool
	// Pwd is --pwd, the working directory inside ("" for the default).
	Pwd string
	// Contain is --contain (or --containall).
	Contain bool
	// ContainAll is --containall, kept to say where a refused namespace
	// came from.
	ContainAll bool
	// Namespaces are the optional namespaces (--pid, --ipc, --net, --uts,
	// --hostname, which implies UTS).
	Namespaces Namespaces

	// Writable is --writable: write into a sandbox image itself.
	Writable bool
	// WritableTmpfs is --writable-tmpfs.
	WritableTmpfs bool
	// Overlays are the --overlay directories in command-line order.
	Overlays []Overlay
	// Scratch are the --scratch paths inside, as given.
	Scratch []string
	// Workdir is --workdir, absolute and clean ("" for none).
	Workdir string

	// Fakeroot is --fakeroot: uid 0 inside, in a user namespace mapped
	// onto the user's own ids and subordinate ranges.
	Fakeroot bool

	// Devices are the GPUs and CDI devices asked for (devices.go).
	Devices Devices

	// Env is the environment request.
	Env Env
	// NoShare is --no-share.
	NoShare bool
	// Linger is --linger ("": launch.conf images.linger).
	Linger string
	// Instance, when set, makes this launch an instance's init.
	Instance *Instance
	// ShareNS is --sharens: join the namespaces of this user's launch of
	// the image in this kill domain, or hold them for the next ones.
	ShareNS bool
	// LogLevel is the launcher's message level (internal/msg.Level).
	LogLevel int

	// Site is the site configuration (launch.conf) the Spec is checked
	// against and run with.
	Site *config.Config
}
