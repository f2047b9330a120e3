// Package environ decides the container's environment from the host's
// environment and the user's requests, following Apptainer's rules with
// LAUNCH in place of APPTAINER:
//
//	host < image < LAUNCHENV_ < --env-file < --env
//
// The host environment passes in (all of it, or with --cleanenv only the
// variables the site keeps) except the few the image must own and, with
// compat, Apptainer's own settings (APPTAINER_, SINGULARITY_); the image's
// /.singularity.d/env scripts then set their own values over it inside the
// container; the user's explicit settings come last and win. Build is pure:
// it returns the base environment and the ordered overrides, and the
// container applies them after the image's scripts.
//
// It must not read the image or the host: it works on the environments it is given.
package environ

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Prefix is the host-side prefix that sets a variable inside the container:
// LAUNCHENV_FOO=bar gives FOO=bar.
const Prefix = "LAUNCHENV_"

// compatPrefixes are Apptainer's and Singularity's prefixes, honoured below
// LAUNCHENV_ when the site allows it (env.apptainer_compat).
var compatPrefixes = []string{"SINGULARITYENV_", "APPTAINERENV_"}

// reservedPrefix starts the names of the variables of launch's own
// environment script inside the container.
const reservedPrefix = "__launch_"

// The special override names that edit PATH instead of setting a variable.
const (
	PrependPath = "PREPEND_PATH"
	AppendPath  = "APPEND_PATH"
)

// imageOwned reports whether the host variable k never passes in: the
// image's own PATH and libraries, and the host shell's prompt.
func imageOwned(k string) bool {
	switch k {
	case "PATH", "LD_LIBRARY_PATH", "PS1", "PROMPT_COMMAND":
		return true
	}
	return false
}

// Request is everything Build needs, as plain data.
type Request struct {
	// Host is the launcher's environment (os.Environ()).
	Host []string
	// Cleanenv passes only the host variables matching Keep.
	Cleanenv bool
	// Keep lists the variables --cleanenv keeps; "NAME*" keeps a prefix.
	Keep []string
	// Compat honours APPTAINERENV_ and SINGULARITYENV_ too.
	Compat bool
	// Files are the parsed --env-file contents, in order.
	Files [][]Var
	// Flags are the --env values, in order (each may hold several K=V
	// separated by commas).
	Flags []string
}

// Var is one variable setting.
type Var struct {
	Name, Value string
}

func (v Var) String() string { return v.Name + "=" + v.Value }

// Result is the environment in two parts.
type Result struct {
	// Base is the environment the image's scripts start from.
	Base []string
	// Overrides are applied after the image's scripts, in order; a later
	// one wins. PREPEND_PATH and APPEND_PATH entries come last and edit
	// PATH.
	Overrides []Var
}

// Build applies the rules to r.
func Build(r Request) (Result, error) {
	var res Result
	var prefixed []Var
	compat := map[string][]Var{}
	for _, kv := range r.Host {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if name, ok := strings.CutPrefix(k, Prefix); ok {
			if !ValidName(name) {
				return Result{}, fmt.Errorf("%s: %q is not a valid variable name", k, name)
			}
			prefixed = append(prefixed, Var{name, v})
			continue
		}
		if p := compatPrefix(k); p != "" {
			if r.Compat {
				name := strings.TrimPrefix(k, p)
				if !ValidName(name) {
					return Result{}, fmt.Errorf("%s: %q is not a valid variable name", k, name)
				}
				compat[p] = append(compat[p], Var{name, v})
			}
			continue
		}
		if imageOwned(k) || r.Compat && isApptainerVar(k) {
			continue
		}
		if r.Cleanenv && !matchAny(k, r.Keep) {
			continue
		}
		res.Base = append(res.Base, kv)
	}
	// As Apptainer: a clean environment is in the C locale unless the
	// site keeps the host's LANG; LAUNCHENV_LANG and --env override it.
	if r.Cleanenv && !slices.ContainsFunc(res.Base, func(kv string) bool { return strings.HasPrefix(kv, "LANG=") }) {
		res.Base = append(res.Base, "LANG=C")
	}
	// Host order is arbitrary; sort so the result is stable. Later wins:
	// SINGULARITYENV_ < APPTAINERENV_ < LAUNCHENV_.
	var all []Var
	for _, p := range append(compatPrefixes, Prefix) {
		vars := prefixed
		if p != Prefix {
			vars = compat[p]
		}
		sort.SliceStable(vars, func(i, j int) bool { return vars[i].Name < vars[j].Name })
		all = append(all, vars...)
	}
	for _, f := range r.Files {
		all = append(all, f...)
	}
	for _, fl := range r.Flags {
		vars, err := ParseFlag(fl)
		if err != nil {
			return Result{}, err
		}
		all = append(all, vars...)
	}
	var paths []Var
	for _, v := range all {
		if strings.HasPrefix(v.Name, reservedPrefix) {
			return Result{}, fmt.Errorf("%s: names starting with %s are reserved for launch", v.Name, reservedPrefix)
		}
		if v.Name == PrependPath || v.Name == AppendPath {
			paths = append(paths, v)
			continue
		}
		res.Overrides = append(res.Overrides, v)
	}
	res.Overrides = append(res.Overrides, paths...)
	return res, nil
}

// isApptainerVar reports whether the host variable k is one of Apptainer's
// or Singularity's own settings on the host (APPTAINER_CACHEDIR,
// SINGULARITY_BIND). Apptainer forwards none of them into the container
// (the container gets its own APPTAINER_CONTAINER and so on); with compat
// launch, which reads them as its own, does the same. launch's own LAUNCH_
// variables do pass in, as any host variable the user set (job scripts and
// tests mark their processes with them).
func isApptainerVar(k string) bool {
	return strings.HasPrefix(k, "APPTAINER_") || strings.HasPrefix(k, "SINGULARITY_")
}

func compatPrefix(k string) string {
	for _, p := range compatPrefixes {
		if strings.HasPrefix(k, p) {
			return p
		}
	}
	return ""
}

func matchAny(name string, patterns []string) bool {
	for _, p := range patterns {
		if pre, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(name, pre) {
				return true
			}
		} else if name == p {
			return true
		}
	}
	return false
}

// ParseFlag parses one --env value: NAME=VALUE, or several separated by
// commas ("A=1,B=2"). A comma starts a new setting only when NAME= follows
// it, so values may hold commas ("A=1,2,B=3" is A=1,2 and B=3).
func ParseFlag(s string) ([]Var, error) {
	var out []Var
	rest := s
	for rest != "" {
		name, after, ok := strings.Cut(rest, "=")
		if !ok || !ValidName(name) {
			return nil, fmt.Errorf("--env %q: want NAME=VALUE with NAME a valid variable name", s)
		}
		end := len(after)
		for i := 0; i < len(after); i++ {
			if after[i] == ',' && startsAssignment(after[i+1:]) {
				end = i
				break
			}
		}
		out = append(out, Var{name, after[:end]})
		if end == len(after) {
			break
		}
		rest = after[end+1:]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--env %q: want NAME=VALUE", s)
	}
	return out, nil
}

func startsAssignment(s string) bool {
	name, _, ok := strings.Cut(s, "=")
	return ok && ValidName(name)
}

// ValidName reports whether s is a valid environment variable name for a
// POSIX shell: a letter or underscore, then letters, digits, underscores.
func ValidName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// Apply applies overrides to env in order, as the container does when the
// image has no environment scripts.
func Apply(env []string, overrides []Var) []string {
	for _, v := range overrides {
		switch v.Name {
		case PrependPath:
			env = Set(env, "PATH", joinPath(v.Value, Get(env, "PATH")))
		case AppendPath:
			env = Set(env, "PATH", joinPath(Get(env, "PATH"), v.Value))
		default:
			env = Set(env, v.Name, v.Value)
		}
	}
	return env
}

func joinPath(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + ":" + b
}

// Get returns the value of key in env ("" when unset).
func Get(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// Set returns env with key set to val (replacing earlier settings).
func Set(env []string, key, val string) []string {
	out := env[:0]
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k != key {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+val)
}
