package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/launch-hpc/launch/internal/baseenv"
	"github.com/launch-hpc/launch/internal/environ"
	"github.com/launch-hpc/launch/internal/filekind"
	"github.com/launch-hpc/launch/internal/layout"
	"github.com/launch-hpc/launch/internal/mountplan"
	"github.com/launch-hpc/launch/internal/msg"
)

// DefaultPath is the PATH inside the container when the image sets none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// envScript sources the image's Apptainer environment scripts in order,
// applies the user's overrides and then runs the payload, naming a missing
// command the way launch does. Its first argument is "ps1" when the
// environment passed in has a PS1 (else the shell's own default prompt is
// unset, as bash, Apptainer's action shell, has none); then N, and N
// NAME=VALUE words (PREPEND_PATH and APPEND_PATH edit PATH), then the
// command. The scripts are sourced inside a function so that one using
// "set --" or "shift" cannot touch the positional parameters that carry the
// overrides and the command.
const envScript = `[ "$1" = ps1 ] || unset PS1; shift
__launch_env() { for __launch_f in ` + layout.EnvGlob + `; do [ -f "$__launch_f" ] && . "$__launch_f"; done; }
__launch_env
__launch_n=$1; shift
while [ "$__launch_n" -gt 0 ]; do
case "$1" in
PREPEND_PATH=*) PATH="${1#*=}${PATH:+:$PATH}"; export PATH ;;
APPEND_PATH=*) PATH="${PATH:+$PATH:}${1#*=}"; export PATH ;;
*) export "$1" ;;
esac
shift; __launch_n=$((__launch_n - 1))
done
unset __launch_f __launch_n
unset -f __launch_env
case "$1" in */*) ;; *) command -v "$1" >/dev/null 2>&1 || { echo "FATAL:   \"$1\": command not found in the container (PATH=$PATH)" >&2; exit 255; } ;; esac
exec "$@"`

// envScripts is what the container's layout.EnvDir holds: whether it has
// scripts at all and, when every one of them is a standard base script
// (baseenv.Known), their effects in name order, which the payload's
// environment gets without a shell.
type envScripts struct {
	present  bool
	standard bool
	effects  []baseenv.Effect
}

// payloadCommand returns the program, argv and environment of the payload.
// It runs after the pivot, so paths are the container's. With environment
// scripts that are all standard (scripts.standard) their effect is applied
// here; with any other, the image's /bin/sh sources them (envScript).
func payloadCommand(cfg *Config, scripts envScripts, log *msg.Logger) (string, []string, []string, error) {
	env := withLibPath(payloadEnv(cfg), cfg.LibPath)
	if cfg.App != "" {
		if err := checkApp(cfg); err != nil {
			return "", nil, nil, err
		}
		env = appVars(env, cfg.App)
	}
	var argv []string
	switch cfg.Mode {
	case ModeExec:
		if len(cfg.Args) == 0 {
			return "", nil, nil, errors.New("no command given to exec")
		}
		argv = cfg.Args
	case ModeRun, ModeTest:
		pick := runscriptFor
		if cfg.Mode == ModeTest {
			pick = testFor
		} else if cfg.App != "" {
			pick = func(cfg *Config, _ *msg.Logger) (string, error) {
				return appScript(cfg, layout.AppRunscript, "runscript (%apprun)")
			}
		}
		rs, err := pick(cfg, log)
		if err != nil {
			return "", nil, nil, err
		}
		argv = append([]string{rs}, cfg.Args...)
	case ModeShell:
		sh := shellFor(cfg.Shell)
		if _, err := os.Stat(sh); err != nil {
			return "", nil, nil, fmt.Errorf("shell %s not found in image %s", sh, cfg.Image.Path)
		}
		argv = []string{sh}
		if filepath.Base(sh) == "bash" {
			argv = append(argv, "--norc")
		}
		argv = append(argv, cfg.Args...)
	default:
		return "", nil, nil, fmt.Errorf("unknown mode %q", cfg.Mode)
	}
	if scripts.present || cfg.App != "" {
		nenv, native := applyStandard(env, scripts)
		script := envScript
		if cfg.App != "" { // the app's environment needs the shell
			native, script = false, appEnvScript(envScript)
		}
		if native {
			env = nenv
		} else if _, err := os.Stat("/bin/sh"); err == nil {
			ps1 := "-"
			if environ.Get(env, "PS1") != "" {
				ps1 = "ps1"
			}
			sh := []string{"/bin/sh", "-c", script, "launch", ps1, strconv.Itoa(len(cfg.EnvOverrides))}
			for _, v := range cfg.EnvOverrides {
				sh = append(sh, v.String())
			}
			return "/bin/sh", append(sh, argv...), env, nil
		} else if cfg.App != "" {
			return "", nil, nil, fmt.Errorf("--app %s: image %s has no /bin/sh to set up the app's environment with", cfg.App, cfg.Image.Path)
		}
	}
	env = environ.Apply(env, cfg.EnvOverrides)
	prog, err := lookPath(argv[0], environ.Get(env, "PATH"))
	if err != nil {
		return "", nil, nil, err
	}
	return prog, argv, env, nil
}

// applyStandard applies the effects of standard environment scripts to a
// copy of env, and reports whether all of them could be applied natively.
func applyStandard(env []string, scripts envScripts) ([]string, bool) {
	if !scripts.standard {
		return nil, false
	}
	out := append(make([]string, 0, len(env)+2), env...)
	for _, e := range scripts.effects {
		var ok bool
		if out, ok = e.Apply(out); !ok {
			return nil, false
		}
	}
	return out, true
}

// legacyRunscript is the runscript of images of Singularity before 2.3,
// which Apptainer still runs.
const legacyRunscript = "/apptainer"

// runscriptFor is what `run` runs, as Apptainer's run action picks it: the
// image's runscript, else the legacy one, else /bin/sh, saying so. A
// runscript that is there but is not a regular file is an error.
func runscriptFor(cfg *Config, log *msg.Logger) (string, error) {
	for _, p := range []string{layout.Runscript, legacyRunscript} {
		err := executable(p)
		if err == nil {
			return p, nil
		}
		// There, but not a file at all (a named pipe in a hostile image):
		// refused, not passed over for /bin/sh.
		if fi, serr := os.Stat(p); serr == nil && !fi.Mode().IsRegular() {
			return "", fmt.Errorf("runscript %s: %w", p, err)
		}
	}
	if executable("/bin/sh") == nil {
		log.Infof("INFO:    No runscript found in container, executing /bin/sh")
		return "/bin/sh", nil
	}
	return "", fmt.Errorf("image %s has no runscript (%s) and no /bin/sh; use launch exec", cfg.Image.Path, layout.Runscript)
}

// appScript is the app's script rel (layout.AppRunscript, layout.AppTest),
// which must be an executable file.
func appScript(cfg *Config, rel, what string) (string, error) {
	p := appPath(cfg, rel)
	if err := executable(p); err != nil {
		return "", fmt.Errorf("app %s of image %s has no %s (%s: %v)", cfg.App, cfg.Image.Path, what, p, err)
	}
	return p, nil
}

// testFor is what `launch test` runs: the app's test with --app, else the
// image's test script. Without one, errNoTest, saying so.
func testFor(cfg *Config, log *msg.Logger) (string, error) {
	if cfg.App != "" {
		return appScript(cfg, layout.AppTest, "test (%apptest)")
	}
	err := executable(layout.Test)
	if err == nil {
		return layout.Test, nil
	}
	if fi, serr := os.Stat(layout.Test); serr == nil && !fi.Mode().IsRegular() {
		return "", fmt.Errorf("test script %s: %w", layout.Test, err)
	}
	log.Infof("INFO:    No test script found in container, exiting")
	return "", errNoTest
}

// shellFor picks the interactive shell: the requested one, else bash, else sh.
func shellFor(requested string) string {
	if requested != "" {
		return requested
	}
	if _, err := os.Stat("/bin/bash"); err == nil {
		return "/bin/bash"
	}
	return "/bin/sh"
}

// EnvironmentFile is where, as Apptainer tells scripts inside
// (APPTAINER_ENVIRONMENT), environment settings for the container go.
const EnvironmentFile = layout.EnvDir + "/91-environment.sh"

// payloadEnv is the payload's environment: the environment the launcher
// passed in, with the container's PATH, identity and the variables that
// describe the container as Apptainer sets them (docs/apptainer-compat.md,
// "Inside the container").
func payloadEnv(cfg *Config) []string {
	env := make([]string, 0, len(cfg.Env)+16)
	env = append(env, cfg.Env...)
	set := func(k, v string) { env = environ.Set(env, k, v) }
	if environ.Get(env, "PATH") == "" {
		set("PATH", DefaultPath)
	}
	if cfg.User.Home != "" {
		set("HOME", cfg.User.Home)
	}
	img := imagePath(cfg)
	name := filepath.Base(img)
	for _, p := range [...]string{"LAUNCH_", "APPTAINER_", "SINGULARITY_"} {
		set(p+"CONTAINER", img)
		set(p+"NAME", name)
	}
	inst := cfg.InstanceName
	if cfg.Instance != nil {
		inst = cfg.Instance.Name
	}
	if inst != "" { // as Apptainer sets it in an instance and in what joins it
		for _, p := range [...]string{"LAUNCH_", "APPTAINER_", "SINGULARITY_"} {
			set(p+"INSTANCE", inst)
		}
	}
	binds := userBinds(cfg)
	for _, p := range [...]string{"APPTAINER_", "SINGULARITY_"} {
		set(p+"BIND", binds)
		set(p+"ENVIRONMENT", EnvironmentFile)
	}
	set("APPTAINER_COMMAND", string(cfg.Mode))
	if cfg.Mode == ModeShell && environ.Get(env, "PS1") == "" {
		set("PS1", baseenv.Prompt)
	}
	return env
}

// imagePath is the image's path made absolute against the working
// directory it was given in, as Apptainer's APPTAINER_CONTAINER.
func imagePath(cfg *Config) string {
	if filepath.IsAbs(cfg.Image.Path) || cfg.Cwd == "" {
		return filepath.Clean(cfg.Image.Path)
	}
	return filepath.Join(cfg.Cwd, cfg.Image.Path)
}

// userBinds is APPTAINER_BIND: the destinations of the user's binds in
// order, comma-separated, as Apptainer passes them to nested containers.
func userBinds(cfg *Config) string {
	var b strings.Builder
	for _, op := range cfg.Plan.Ops {
		if op.Name == mountplan.UserBind {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(op.Dest)
		}
	}
	return b.String()
}

// lookPath finds name in path inside the container, as execvp would.
func lookPath(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		if err := executable(name); err != nil {
			return "", fmt.Errorf("%q: %w", name, err)
		}
		return name, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q: command not found in the container (PATH=%s)", name, path)
}

// executable checks that p is a file execve(2) could run: a regular file
// with an execute bit. Anything else (a directory, a named pipe, a device)
// is refused here, by its status alone: the payload's executable is read
// ahead (prefetchProgram) before it is executed.
func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errors.New("no such file in the container")
		}
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not an executable file (%s)", filekind.Name(fi.Mode()))
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}
