package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/launch-hpc/launch/internal/environ"
	"github.com/launch-hpc/launch/internal/layout"
)

// DefaultPath is the PATH inside the container when the image sets none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// envScript sources the image's Apptainer environment scripts in order,
// applies the user's overrides (its first argument N, then N NAME=VALUE
// words; PREPEND_PATH and APPEND_PATH edit PATH) and then runs the payload,
// naming a missing command the way launch does. The scripts are sourced
// inside a function so that one using "set --" or "shift" cannot touch the
// positional parameters that carry the overrides and the command.
const envScript = `__launch_env() { for __launch_f in ` + layout.EnvGlob + `; do [ -f "$__launch_f" ] && . "$__launch_f"; done; }
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

// hasEnvScripts reports whether the container (after the pivot) has
// Apptainer environment scripts.
func hasEnvScripts() bool {
	m, _ := filepath.Glob(layout.EnvGlob)
	return len(m) > 0
}

// payloadCommand returns the program, argv and environment of the payload.
// It runs after the pivot, so paths are the container's.
func payloadCommand(cfg *Config, envScripts bool) (string, []string, []string, error) {
	env := payloadEnv(cfg)
	var argv []string
	switch cfg.Mode {
	case ModeExec:
		if len(cfg.Args) == 0 {
			return "", nil, nil, errors.New("no command given to exec")
		}
		argv = cfg.Args
	case ModeRun:
		if _, err := os.Stat(layout.Runscript); err != nil {
			return "", nil, nil, fmt.Errorf("image %s has no runscript (%s); use launch exec", cfg.Image.Path, layout.Runscript)
		}
		argv = append([]string{layout.Runscript}, cfg.Args...)
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
	if envScripts {
		if _, err := os.Stat("/bin/sh"); err == nil {
			sh := []string{"/bin/sh", "-c", envScript, "launch", strconv.Itoa(len(cfg.EnvOverrides))}
			for _, v := range cfg.EnvOverrides {
				sh = append(sh, v.String())
			}
			return "/bin/sh", append(sh, argv...), env, nil
		}
	}
	env = environ.Apply(env, cfg.EnvOverrides)
	prog, err := lookPath(argv[0], environ.Get(env, "PATH"))
	if err != nil {
		return "", nil, nil, err
	}
	return prog, argv, env, nil
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

// payloadEnv is the payload's environment: the environment the launcher
// passed in, with the container's PATH, identity and markers.
func payloadEnv(cfg *Config) []string {
	env := make([]string, 0, len(cfg.Env)+8)
	env = append(env, cfg.Env...)
	set := func(k, v string) { env = environ.Set(env, k, v) }
	if environ.Get(env, "PATH") == "" {
		set("PATH", DefaultPath)
	}
	if cfg.User.Home != "" {
		set("HOME", cfg.User.Home)
	}
	set("LAUNCH_CONTAINER", cfg.Image.Path)
	set("LAUNCH_NAME", filepath.Base(cfg.Image.Path))
	if cfg.Mode == ModeShell && environ.Get(env, "PS1") == "" {
		set("PS1", "Launch> ")
	}
	return env
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
		return fmt.Errorf("not an executable file (%s)", fileKind(fi.Mode()))
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}

// fileKind names the type of a file that is not a regular file.
func fileKind(m os.FileMode) string {
	switch {
	case m&os.ModeDir != 0:
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	case m&os.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "not a regular file"
}
