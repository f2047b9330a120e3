// Package layout names the paths of the metadata directory /.singularity.d
// and of the SCIF apps under /scif inside an image, as Apptainer and
// SingularityCE lay them out, so that every package that reads or writes
// them (image, build, defbuild, ocibuild, container, cli) uses the same
// names. It owns names only: it reads, writes and imports
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

// The SCIF apps of a definition file's %app* sections, as Apptainer lays
// them out: app NAME lives in SCIFApps/NAME (its root, with App* below it)
// and its data in SCIFData/NAME. Join the parts with path.Join
// (path.Join(layout.SCIFApps, name, layout.AppRunscript)).
const (
	// SCIF is the root of the apps' tree.
	SCIF = "/scif"
	// SCIFApps holds one directory per app.
	SCIFApps = SCIF + "/apps"
	// SCIFData holds one data directory per app, with AppInput and
	// AppOutput in it.
	SCIFData = SCIF + "/data"

	// AppBin and AppLib are below an app's root: on PATH and
	// LD_LIBRARY_PATH when the app is chosen.
	AppBin = "bin"
	AppLib = "lib"
	// AppMeta is the app's metadata directory, below its root.
	AppMeta = "scif"
	// AppEnvDir holds the app's environment scripts: AppBaseEnv (the
	// SCIF_ variables of the app) and AppEnv (%appenv).
	AppEnvDir  = AppMeta + "/env"
	AppBaseEnv = AppEnvDir + "/01-base.sh"
	AppEnv     = AppEnvDir + "/90-environment.sh"
	// AppRunscript, AppStartscript, AppTest and AppHelp are the app's
	// %apprun, %appstart, %apptest and %apphelp; AppLabels its labels
	// (%applabels and SCIF_APP_NAME) as a JSON object.
	AppRunscript   = AppMeta + "/runscript"
	AppStartscript = AppMeta + "/startscript"
	AppTest        = AppMeta + "/test"
	AppHelp        = AppMeta + "/runscript.help"
	AppLabels      = AppMeta + "/labels.json"
	// AppInput and AppOutput are below the app's data directory.
	AppInput  = "input"
	AppOutput = "output"

	// AppsBaseEnv is the environment script that exports every app's
	// SCIF_APP*_NAME variables; AppsEnv the one that sets up the app
	// chosen with --app (SINGULARITY_APPNAME).
	AppsBaseEnv = EnvDir + "/94-appsbase.sh"
	AppsEnv     = EnvDir + "/95-apps.sh"
)
