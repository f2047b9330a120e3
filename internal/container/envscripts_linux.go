package container

import (
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/baseenv"
	"github.com/launch-hpc/launch/internal/layout"
)

// maxStandardScripts bounds how many environment scripts are read to see
// whether they are all standard (Apptainer's builds have five).
const maxStandardScripts = 8

// readEnvScripts looks at the container's environment scripts (after the
// pivot). A script is read only when it is a regular file of at most
// baseenv.MaxSize bytes, opened without following a link and without
// blocking; anything else is not standard, and the shell sources it.
func readEnvScripts() envScripts {
	m, _ := filepath.Glob(layout.EnvGlob)
	if len(m) == 0 {
		return envScripts{}
	}
	s := envScripts{present: true}
	if len(m) > maxStandardScripts {
		return s
	}
	buf := make([]byte, baseenv.MaxSize+1)
	effects := make([]baseenv.Effect, 0, len(m))
	for _, p := range m {
		e, ok := standardScript(p, buf)
		if !ok {
			return s
		}
		effects = append(effects, e)
	}
	s.standard, s.effects = true, effects
	return s
}

// standardScript reads the script at p into buf and reports its effect,
// if it is a standard one.
func standardScript(p string, buf []byte) (baseenv.Effect, bool) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return 0, false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size > baseenv.MaxSize {
		return 0, false
	}
	n := 0
	for n < len(buf) {
		k, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, false
		}
		if k == 0 {
			break
		}
		n += k
	}
	if n > baseenv.MaxSize {
		return 0, false
	}
	return baseenv.Known(buf[:n])
}
