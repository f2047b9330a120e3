// Package baseenv knows the standard environment scripts of
// /.singularity.d/env: the texts of the base scripts every image launch
// builds gets (internal/build writes them), and the standard base scripts of
// Apptainer 1.x builds, known by their SHA-256. For each it knows its effect
// on the environment, so that the container can apply it in Go instead of
// starting the image's /bin/sh to source it (Effect.Apply): an image whose
// env directory holds only standard scripts starts its payload directly.
//
// It must not read the image: it judges contents it is given.
package baseenv

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/launch-hpc/launch/internal/environ"
	"github.com/launch-hpc/launch/internal/layout"
)

// The texts of the base environment scripts of every image launch builds.
const (
	// First is layout.BaseEnv: it does nothing.
	First = "#!/bin/sh\n# The first environment script of the image (written by the build).\n"
	// DeffileHeader starts layout.DeffileEnv, which a definition file's
	// %environment follows; alone it does nothing.
	DeffileHeader = "#!/bin/sh\n# Custom environment shell code should follow\n\n"
	// Last is layout.BaseEnvLast: LD_LIBRARY_PATH gains layout.LibsDir
	// and an empty PS1 becomes Prompt, as Apptainer's 99-base.sh.
	Last = "#!/bin/sh\n# The last environment script of the image (written by the build):\n" +
		"# the directory of bound host libraries, and a default prompt.\n" +
		"if [ -n \"${LD_LIBRARY_PATH:-}\" ]; then\n\tLD_LIBRARY_PATH=\"$LD_LIBRARY_PATH:" + layout.LibsDir + "\"\n" +
		"else\n\tLD_LIBRARY_PATH=\"" + layout.LibsDir + "\"\nfi\n" +
		"if [ -z \"${PS1:-}\" ]; then\n\tPS1=\"" + Prompt + "\"\nfi\nexport LD_LIBRARY_PATH PS1\n"
)

// AppsScript is layout.AppsEnv, which the build writes into an image with
// SCIF apps: when SINGULARITY_APPNAME names one (--app), it puts the app's
// bin directory and root on PATH, its lib on LD_LIBRARY_PATH, sets
// SCIF_APPS and SCIF_APPROOT and sources the app's own environment scripts
// (layout.AppBaseEnv, layout.AppEnv), as Apptainer's 95-apps.sh does. The
// container runs the same text after the image's scripts for an image that
// has apps and no such script.
const AppsScript = "#!/bin/sh\n# The SCIF app chosen with --app (written by the build).\n" +
	"if [ -n \"${SINGULARITY_APPNAME:-}\" ]; then\n" +
	"\texport SINGULARITY_APPNAME\n" +
	"\t__scif_app=\"" + layout.SCIFApps + "/$SINGULARITY_APPNAME\"\n" +
	"\tif [ ! -d \"$__scif_app/\" ]; then\n" +
	"\t\techo \"Could not locate the container application: $SINGULARITY_APPNAME\" >&2\n\t\texit 1\n\tfi\n" +
	"\tSCIF_APPS=\"" + layout.SCIFApps + "\"\n\tSCIF_APPROOT=\"$__scif_app\"\n\texport SCIF_APPS SCIF_APPROOT\n" +
	"\tPATH=\"$__scif_app:$PATH\"\n" +
	"\tif [ -d \"$__scif_app/" + layout.AppBin + "\" ]; then\n\t\tPATH=\"$__scif_app/" + layout.AppBin + ":$PATH\"\n\tfi\n" +
	"\tif [ -d \"$__scif_app/" + layout.AppLib + "\" ]; then\n" +
	"\t\tLD_LIBRARY_PATH=\"$__scif_app/" + layout.AppLib + "${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\"\n\t\texport LD_LIBRARY_PATH\n\tfi\n" +
	"\texport PATH\n" +
	"\tfor __scif_f in \"$__scif_app/" + layout.AppBaseEnv + "\" \"$__scif_app/" + layout.AppEnv + "\"; do\n" +
	"\t\tif [ -f \"$__scif_f\" ]; then\n\t\t\t. \"$__scif_f\"\n\t\tfi\n\tdone\n" +
	"\tunset __scif_app __scif_f\n" +
	"fi\n"

// Prompt is Apptainer's default prompt (PS1) inside the container.
const Prompt = "Apptainer> "

// MaxSize bounds the size of a script that can be standard: a larger one
// is not read further and is sourced by the shell.
const MaxSize = 4096

// Effect is what a standard script does to the environment.
type Effect int

// The effects of the standard scripts.
const (
	// NoOp changes nothing (01-base.sh, an empty 90-environment.sh).
	NoOp Effect = iota
	// LibsPrompt appends layout.LibsDir to LD_LIBRARY_PATH and sets an
	// empty PS1 to Prompt (99-base.sh).
	LibsPrompt
	// Apps is Apptainer's 95-apps.sh: nothing unless SINGULARITY_APPNAME
	// is set, when it sets up a SCIF app (not done natively).
	Apps
	// RuntimeVars is Apptainer's 99-runtimevars.sh: nothing unless one of
	// the SING_USER_DEFINED_* PATH variables is set (not done natively).
	RuntimeVars
)

// apptainer maps the SHA-256 (hex) of the standard environment scripts
// Apptainer 1.0.0 to 1.5.3 writes into every build
// (internal/pkg/build/sources of its source tree) to their effect. Apptainer
// 1.0's 99-base.sh, which sets PS1 even when it is set, is left out: it is
// sourced by the shell.
var apptainer = map[string]Effect{
	"0ff7f75c7fff71e5c7378543a410148c679823d3f639c84dfd0ee0fb97138650": NoOp,        // 01-base.sh 1.0
	"f3109c12c5b99874a52f0f04219514e1fe4e4073fcd0dfa8772553c6a50078dd": NoOp,        // 01-base.sh 1.1-1.5
	"78840c061547f15fe51b798f13780cd84311a1616f0389dbc366d561e88828f8": NoOp,        // 90-environment.sh 1.0
	"f59d153fefde5cea21d8d09d6e9f1c740920a4c61a1df4aa3ac44ae69ef6d775": NoOp,        // 90-environment.sh 1.1-1.5
	"ea5d3b8db4c872ef5e642d4c8ca87ecf9d093eaacf1f761d47ca6e5b950f3bad": Apps,        // 95-apps.sh 1.0
	"8281ca191225faaeb3a0fc251f37e9603df056a4ba51cb875039ce8e241958cb": Apps,        // 95-apps.sh 1.1-1.5
	"9c257908a993ae0b7d5171442b29f14ff9288095789452f5db705fa13e2285fe": LibsPrompt,  // 99-base.sh 1.1.0-1.1.5
	"03d00ded991c8615807c5f7c7e17bb70c253f88e75b358cd1206ffd104ad82a9": LibsPrompt,  // 99-base.sh 1.1.6-1.5
	"95f47ff84ad6cb03ea8e80758be09c06bdd4e5ce562656298b1d7de57b7cb4f0": RuntimeVars, // 99-runtimevars.sh 1.0
	"92eb7afbbedc63c03bb80855b162dfd70a8864b655b437f5663cadc0d168a1d6": RuntimeVars, // 99-runtimevars.sh 1.1-1.5
}

// Known reports the effect of the environment script with content data,
// and whether it is a standard one at all.
func Known(data []byte) (Effect, bool) {
	switch string(data) {
	case First, DeffileHeader:
		return NoOp, true
	case Last:
		return LibsPrompt, true
	case AppsScript:
		return Apps, true
	}
	if len(data) > MaxSize {
		return 0, false
	}
	sum := sha256.Sum256(data)
	e, ok := apptainer[hex.EncodeToString(sum[:])]
	return e, ok
}

// runtimeVars are the variables Apptainer's 99-runtimevars.sh acts on.
var runtimeVars = []string{"SING_USER_DEFINED_PREPEND_PATH", "SING_USER_DEFINED_APPEND_PATH", "SING_USER_DEFINED_PATH"}

// Apply returns env as sourcing a script of effect e over it leaves it,
// and false where that is not done natively (the script must be sourced).
func (e Effect) Apply(env []string) ([]string, bool) {
	switch e {
	case NoOp:
		return env, true
	case LibsPrompt:
		lib := layout.LibsDir
		if old := environ.Get(env, "LD_LIBRARY_PATH"); old != "" {
			lib = old + ":" + lib
		}
		env = environ.Set(env, "LD_LIBRARY_PATH", lib)
		if environ.Get(env, "PS1") == "" {
			env = environ.Set(env, "PS1", Prompt)
		}
		return env, true
	case Apps:
		return env, !has(env, "SINGULARITY_APPNAME")
	case RuntimeVars:
		for _, k := range runtimeVars {
			if has(env, k) {
				return env, false
			}
		}
		return env, true
	}
	return env, false
}

// has reports whether key is in env at all (set, even to "").
func has(env []string, key string) bool {
	for _, kv := range env {
		if len(kv) > len(key) && kv[len(key)] == '=' && kv[:len(key)] == key {
			return true
		}
	}
	return false
}
