package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"

	"github.com/launch-hpc/launch/internal/msg"
)

// Origin says where an effective value came from.
type Origin struct {
	File string // "" for a built-in default
	Line int
}

func (o Origin) String() string {
	if o.File == "" {
		return "built-in default"
	}
	return fmt.Sprintf("%s:%d", o.File, o.Line)
}

// Loaded is the effective configuration and where each value came from.
type Loaded struct {
	Config
	// Path is the file that was read (or looked for).
	Path string
	// Found is false when the file does not exist (built-in defaults).
	Found bool
	// Origins maps "table.key" to where its value came from; keys absent
	// here are built-in defaults.
	Origins map[string]Origin
}

// Load reads the file at path over the built-in defaults. A missing file
// means the defaults; anything else wrong with it is an error naming the
// file, the line and the key.
func Load(path string) (*Loaded, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &Loaded{Config: Defaults(), Path: path, Origins: map[string]Origin{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading config %s: %w", path, err)
	}
	return loadData(path, data)
}

// loadData is Load of a file at path holding data.
func loadData(path string, data []byte) (*Loaded, error) {
	l := &Loaded{Config: Defaults(), Path: path, Found: true, Origins: map[string]Origin{}}
	if err := l.parse(data); err != nil {
		return nil, err
	}
	return l, nil
}

// parse decodes data over l.Config and checks it.
func (l *Loaded) parse(data []byte) error {
	lines := keyLines(data)
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&l.Config)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			key := ""
			if pe.LastKey != "" {
				key = fmt.Sprintf(" (key %s)", pe.LastKey)
			}
			return fmt.Errorf("config %s:%d%s: %s", l.Path, pe.Position.Line, key, msg.OneLine(pe.Message))
		}
		if m := decodeErrRe().FindStringSubmatch(err.Error()); m != nil {
			return fmt.Errorf("config %s:%s (key %s): %s", l.Path, m[1], m[2], msg.OneLine(m[3]))
		}
		return fmt.Errorf("config %s: %s", l.Path, msg.OneLine(err.Error()))
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0].String()
		what := "key " + k
		if len(und[0]) == 1 {
			what = "table [" + k + "]"
		}
		return fmt.Errorf("config %s:%d: unknown %s (see `launch config show` for the known keys)", l.Path, lines[k], what)
	}
	for _, k := range md.Keys() {
		if len(k) == 2 {
			l.Origins[k.String()] = Origin{File: l.Path, Line: lines[k.String()]}
		}
	}
	return l.check(lines)
}

// decodeErrRe picks line, key and message out of the decoder's type errors.
// It is compiled on first use, when a config file is wrong: every process
// start imports this package, and compiling it at init cost page faults.
var decodeErrRe = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)
})

// isTmpfsSize reports whether s is a tmpfs size= value: digits with an
// optional unit k, m, g (either case) or %.
func isTmpfsSize(s string) bool {
	digits := strings.TrimRight(s, "kKmMgG%")
	if len(s)-len(digits) > 1 {
		return false
	}
	if digits == "" {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// check validates values the TOML types cannot.
func (l *Loaded) check(lines map[string]int) error {
	bad := func(key, format string, a ...any) error {
		return fmt.Errorf("config %s:%d: %s: %s", l.Path, lines[key], key, fmt.Sprintf(format, a...))
	}
	for _, f := range l.Images.Formats {
		switch f {
		case "sif", "squashfs", "sandbox":
		default:
			return bad("images.formats", "unknown image format %q (known: sif, squashfs, sandbox)", f)
		}
	}
	for key, paths := range map[string][]string{"images.allowed_paths": l.Images.AllowedPaths, "binds.allowed_paths": l.Binds.AllowedPaths} {
		for _, p := range paths {
			if !filepath.IsAbs(p) {
				return bad(key, "%q is not an absolute path", p)
			}
		}
	}
	if err := l.Images.checkVerify(); err != nil {
		return bad(err.key, "%v", err.err)
	}
	for key, size := range map[string]string{"tmpfs.contain": l.Tmpfs.Contain, "tmpfs.writable": l.Tmpfs.Writable} {
		if !isTmpfsSize(size) {
			return bad(key, "%q is not a tmpfs size (such as 512m, 4g or 50%%)", size)
		}
	}
	if len(l.Tools.Squashfuse) == 0 {
		return bad("tools.squashfuse", "needs at least one program")
	}
	if err := CheckCompression(l.Build.Compression); err != nil {
		return bad("build.compression", "%v", err)
	}
	if _, err := ParseLinger(l.Images.Linger); err != nil {
		return bad("images.linger", "%v", err)
	}
	if _, err := ParseSize(l.Build.MaxUnpackedSize); err != nil {
		return bad("build.max_unpacked_size", "%v", err)
	}
	return l.checkGPU(bad)
}

// keyLines maps "table.key" to the line that sets it. The config has only
// plain tables of plain keys, which a line scan finds reliably.
func keyLines(data []byte) map[string]int {
	out := map[string]int{}
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "["):
			table = strings.Trim(strings.TrimSpace(strings.SplitN(line, "#", 2)[0]), "[] ")
			if _, ok := out[table]; !ok {
				out[table] = n
			}
		case line == "" || strings.HasPrefix(line, "#"):
		default:
			k, _, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			k = strings.Trim(strings.TrimSpace(k), `"'`)
			if table != "" {
				k = table + "." + k
			}
			if _, ok := out[k]; !ok {
				out[k] = n
			}
		}
	}
	return out
}

// Setting is one effective value, for `launch config show`.
type Setting struct {
	Key    string
	Value  any
	Origin Origin
}

// Settings lists every key with its effective value and origin, in the
// order of the Config type.
func (l *Loaded) Settings() []Setting {
	var out []Setting
	cv := reflect.ValueOf(l.Config)
	ct := cv.Type()
	for i := 0; i < ct.NumField(); i++ {
		table := ct.Field(i).Tag.Get("toml")
		tv := cv.Field(i)
		for j := 0; j < tv.NumField(); j++ {
			key := table + "." + tv.Type().Field(j).Tag.Get("toml")
			out = append(out, Setting{Key: key, Value: tv.Field(j).Interface(), Origin: l.Origins[key]})
		}
	}
	return out
}
