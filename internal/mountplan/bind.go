package mountplan

import (
	"encoding/csv"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	"github.com/launch-hpc/launch/internal/paths"
)

// BindSpec is one bind asked for by a user or the site: host Source on
// container Dest.
type BindSpec struct {
	Source   string `json:"source"`
	Dest     string `json:"dest"`
	ReadOnly bool   `json:"ro,omitempty"`
	// Origin says where the bind came from ("--bind", "LAUNCH_BIND",
	// "launch.conf mounts.system", …) for error messages.
	Origin string `json:"origin,omitempty"`
}

func (b BindSpec) String() string {
	s := b.Source + ":" + b.Dest
	if b.ReadOnly {
		s += ":ro"
	}
	return s
}

// ParseBinds parses a -B/--bind value as Apptainer does: comma-separated
// SRC[:DST[:OPTS]] entries, OPTS a comma list of ro and rw (ro wins); after
// an entry with OPTS, a comma element that is an option belongs to it
// (/a:/b:rw,ro is one bind, /a:/b:ro,/c two). Apptainer's image-src= and
// id= (binds from inside an image file) are refused by name until launch
// has image overlays. A relative SRC is taken relative to cwd. origin names
// the flag or variable the value came from.
func ParseBinds(value, cwd, origin string) ([]BindSpec, error) {
	var entries [][]string // each: SRC[:DST[:OPT]], then further options
	for _, el := range strings.Split(value, ",") {
		el = strings.TrimSpace(el)
		if el == "" {
			continue
		}
		if n := len(entries); n > 0 && strings.Count(entries[n-1][0], ":") == 2 && isBindOption(el) {
			entries[n-1] = append(entries[n-1], el)
			continue
		}
		entries = append(entries, []string{el})
	}
	var out []BindSpec
	for _, e := range entries {
		b, err := parseBind(e[0], e[1:], cwd)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", origin, show(strings.Join(e, ",")), err)
		}
		b.Origin = origin
		out = append(out, b)
	}
	return out, nil
}

// isBindOption reports whether a comma element of a bind list is one of
// Apptainer's bind options rather than a new bind.
func isBindOption(el string) bool {
	return el == "ro" || el == "rw" || strings.HasPrefix(el, "image-src=") || strings.HasPrefix(el, "id=")
}

// parseBind parses one SRC[:DST[:OPT]] entry with further options.
func parseBind(entry string, more []string, cwd string) (BindSpec, error) {
	parts := strings.Split(entry, ":")
	if len(parts) > 3 {
		return BindSpec{}, fmt.Errorf("too many ':' (use SRC[:DST[:ro|rw]], or --mount for paths with ':')")
	}
	b := BindSpec{Source: parts[0]}
	if len(parts) > 1 {
		b.Dest = parts[1]
	}
	if len(parts) > 2 {
		for _, o := range append([]string{parts[2]}, more...) {
			switch {
			case o == "ro":
				b.ReadOnly = true
			case o == "rw":
			case strings.HasPrefix(o, "image-src="), strings.HasPrefix(o, "id="):
				name, _, _ := strings.Cut(o, "=")
				return BindSpec{}, fmt.Errorf("bind option %s= (a directory from inside an image file) is not supported yet: bind a host directory, or use --overlay", name)
			default:
				return BindSpec{}, fmt.Errorf("unknown bind option %q (known: ro, rw)", o)
			}
		}
	}
	return finishBind(b, cwd)
}

// ParseMount parses a --mount value: type=bind,src=…,dst=…[,ro], CSV-quoted
// so that paths may hold commas and colons ("src=/a,b" in quotes).
func ParseMount(value, cwd string) (BindSpec, error) {
	r := csv.NewReader(strings.NewReader(value))
	fields, err := r.Read()
	if err != nil {
		return BindSpec{}, fmt.Errorf("--mount %q: %w", value, err)
	}
	var b BindSpec
	typ := ""
	for _, f := range fields {
		k, v, hasV := strings.Cut(strings.TrimSpace(f), "=")
		switch k {
		case "type":
			typ = v
		case "src", "source":
			b.Source = v
		case "dst", "destination", "target":
			b.Dest = v
		case "ro", "readonly":
			switch {
			case !hasV || v == "true" || v == "1":
				b.ReadOnly = true
			case v == "false" || v == "0":
				b.ReadOnly = false
			default:
				return BindSpec{}, fmt.Errorf("--mount %q: %s=%s: want true or false", value, show(k), show(v))
			}
		case "rw":
			b.ReadOnly = false
		default:
			return BindSpec{}, fmt.Errorf("--mount %q: unknown field %q (known: type, src, dst, ro)", value, k)
		}
	}
	if typ != "bind" {
		return BindSpec{}, fmt.Errorf("--mount %q: type=%s is not supported (only type=bind)", value, show(typ))
	}
	if b.Source == "" {
		return BindSpec{}, fmt.Errorf("--mount %q: no src=", value)
	}
	b, err = finishBind(b, cwd)
	if err != nil {
		return BindSpec{}, fmt.Errorf("--mount %q: %w", value, err)
	}
	b.Origin = "--mount"
	return b, nil
}

// finishBind fills in defaults and checks the paths.
func finishBind(b BindSpec, cwd string) (BindSpec, error) {
	if b.Source == "" {
		return b, fmt.Errorf("empty source")
	}
	if !filepath.IsAbs(b.Source) {
		if cwd == "" {
			return b, fmt.Errorf("relative source %s and no working directory", show(b.Source))
		}
		b.Source = filepath.Join(cwd, b.Source)
	}
	b.Source = filepath.Clean(b.Source)
	if b.Dest == "" {
		b.Dest = b.Source
	}
	if err := CheckDest(b.Dest); err != nil {
		return b, err
	}
	b.Dest = filepath.Clean(b.Dest)
	return b, nil
}

// forbiddenDests are container paths no bind may cover: the root, and the
// kernel filesystems the container itself needs.
var forbiddenDests = []string{"/", "/proc", "/dev", "/sys"}

// CheckDest checks a bind or mount destination inside the container: an
// absolute path, without "..", not the root nor over /proc, /dev or /sys
// themselves (and nothing under /proc).
func CheckDest(dest string) error {
	if !filepath.IsAbs(dest) {
		return fmt.Errorf("destination %s is not an absolute path", show(dest))
	}
	for _, c := range strings.Split(dest, "/") {
		if c == ".." {
			return fmt.Errorf("destination %s contains '..'", show(dest))
		}
	}
	clean := filepath.Clean(dest)
	for _, f := range forbiddenDests {
		if clean == f {
			return fmt.Errorf("cannot bind over %s", f)
		}
	}
	if paths.Below(clean, "/proc") {
		return fmt.Errorf("cannot bind under /proc (%s)", show(clean))
	}
	return nil
}

// show returns s for an error message: as is, or Go-quoted when it holds a
// newline or another unprintable character, so the message stays one line.
func show(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}
