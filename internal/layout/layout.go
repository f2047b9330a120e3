// Package layout names the paths of the metadata directory /.singularity.d
// inside an image, as Apptainer and SingularityCE lay it out, so that every
// package that reads or writes it (image, build, ocibuild, container, cli)
// uses the same names. It owns names only: it reads, writes and imports
// nothing, and must not grow behaviour.
package layout

// The paths are absolute in the image. To name one under a root directory on
// the host, join it to the root (filepath.Join(root, layout.Runscript)).
const (
	// Dir is the metadata directory.
	Dir = "/.singularity.d"
	// EnvDir holds the environment scripts the payload's shell sources in
	// name order before the command runs (EnvGlob matches them).
	EnvDir = Dir + "/env"
	// EnvGlob matches the environment scripts of EnvDir.
	EnvGlob = EnvDir + "/*.sh"
	// EnvSuffix ends the name of every environment script.
	EnvSuffix = ".sh"
	// OCIEnv is the environment script of an image converted from OCI: the
	// image configuration's Env.
	OCIEnv = EnvDir + "/10-docker2singularity.sh"
	// DeffileEnv is the environment script of a definition file's
	// %environment section.
	DeffileEnv = EnvDir + "/90-environment.sh"
	// Runscript is what `launch run` runs.
	Runscript = Dir + "/runscript"
	// RunscriptHelp is the text of a definition file's %help section.
	RunscriptHelp = Dir + "/runscript.help"
	// Startscript is what an instance starts (%startscript).
	Startscript = Dir + "/startscript"
	// Test is the test script (%test).
	Test = Dir + "/test"
	// Labels is the JSON object of the image's labels.
	Labels = Dir + "/labels.json"
	// Deffile is the definition file the image was built from.
	Deffile = Dir + "/Singularity"

	// LibsDir is where host libraries are bound (--nv); the base
	// environment adds it to LD_LIBRARY_PATH.
	LibsDir = Dir + "/libs"
	// ActionsDir holds the action scripts Apptainer's runtime runs for
	// exec, run, shell, instance start and test.
	ActionsDir = Dir + "/actions"
	// ActionExec, ActionRun, ActionShell, ActionStart and ActionTest are
	// the action scripts.
	ActionExec  = ActionsDir + "/exec"
	ActionRun   = ActionsDir + "/run"
	ActionShell = ActionsDir + "/shell"
	ActionStart = ActionsDir + "/start"
	ActionTest  = ActionsDir + "/test"
	// BaseEnv and BaseEnvLast are the first and the last environment
	// scripts of every build.
	BaseEnv     = EnvDir + "/01-base.sh"
	BaseEnvLast = EnvDir + "/99-base.sh"
)
