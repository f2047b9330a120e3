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

// ParseBinds parses a -B/--bind value: comma-separated SRC[:DST[:OPTS]]
// entries, OPTS being ro or rw. A relative SRC is taken relative to cwd.
// origin names the flag or variable the value came from.
func ParseBinds(value, cwd, origin string) ([]BindSpec, error) {
	var out []BindSpec
	for _, entry := range strings.Split(value, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		b, err := parseBind(entry, cwd)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", origin, show(entry), err)
		}
		b.Origin = origin
		out = append(out, b)
	}
	return out, nil
}

func parseBind(entry, cwd string) (BindSpec, error) {
	parts := strings.Split(entry, ":")
	if len(parts) > 3 {
		return BindSpec{}, fmt.Errorf("too many ':' (use SRC[:DST[:ro|rw]], or --mount for paths with ':')")
	}
	b := BindSpec{Source: parts[0]}
	if len(parts) > 1 {
		b.Dest = parts[1]
	}
	if len(parts) > 2 {
		switch parts[2] {
		case "ro":
			b.ReadOnly = true
		case "rw":
		default:
			return BindSpec{}, fmt.Errorf("unknown bind option %q (known: ro, rw)", parts[2])
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
