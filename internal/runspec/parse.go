package runspec

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/launch-hpc/launch/internal/mountplan"
)

// ParseOverlay reads an --overlay value, DIR[:ro|:rw]; a relative DIR is
// taken relative to cwd.
func ParseOverlay(v, cwd string) (Overlay, error) {
	dir, ro := v, false
	if i := strings.LastIndex(v, ":"); i >= 0 {
		switch v[i+1:] {
		case "ro":
			dir, ro = v[:i], true
		case "rw":
			dir = v[:i]
		default:
			return Overlay{}, fmt.Errorf("--overlay %s: unknown option %q (want DIR, DIR:ro or DIR:rw)", v, v[i+1:])
		}
	}
	if dir == "" {
		return Overlay{}, fmt.Errorf("--overlay %q: empty directory", v)
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(cwd, dir)
	}
	return Overlay{Dir: filepath.Clean(dir), ReadOnly: ro}, nil
}

// ParseHome reads a -H/--home value, SRC[:DST]; a relative SRC is taken
// relative to cwd, and DST defaults to SRC. The destination is checked here
// (mountplan.CheckDest), once.
func ParseHome(v, cwd string) (Home, error) {
	src, dst, _ := strings.Cut(v, ":")
	if src == "" {
		return Home{}, fmt.Errorf("--home %q: empty source", v)
	}
	if !filepath.IsAbs(src) {
		src = filepath.Join(cwd, src)
	}
	if dst == "" {
		dst = src
	}
	if err := mountplan.CheckDest(dst); err != nil {
		return Home{}, fmt.Errorf("--home %s: %w", v, err)
	}
	return Home{Flag: v, Src: src, Dst: dst}, nil
}

// ParseWorkdir makes a --workdir value absolute (relative to cwd) and
// clean; "" stays "" (no workdir).
func ParseWorkdir(v, cwd string) string {
	if v == "" {
		return ""
	}
	if !filepath.IsAbs(v) {
		v = filepath.Join(cwd, v)
	}
	return filepath.Clean(v)
}
