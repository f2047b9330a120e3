package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// EnvName is the variable that sets a long option: LAUNCH_ and the option
// in capitals with - as _ (--no-home → LAUNCH_NO_HOME).
func EnvName(flag string) string {
	return "LAUNCH_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// envApplied is what applyEnvFlags found besides the flags it set.
type envApplied struct {
	// ignored are the Apptainer variables set for an option launch does
	// not have, in table order.
	ignored []ignoredVar
	// dirs are the LAUNCH_ directory variables to set in the process
	// environment from their Apptainer counterparts (name, value).
	dirs [][2]string
}

// ignoredVar is a set variable that has no effect.
type ignoredVar struct {
	name, flag string
	quiet      bool // launch already behaves as the option asks
}

// applyEnvFlags sets every flag of c that the command line left alone from
// its variable (envtable.go): LAUNCH_<OPTION>, when set and not empty, so
// that a site or a job script can set defaults once (LAUNCH_CLEANENV=1,
// LAUNCH_CONTAINALL=true); then, when compat (launch.conf
// env.apptainer_compat), Apptainer's APPTAINER_ and SINGULARITY_ keys for
// the option. The command line wins, then LAUNCH_, then APPTAINER_, then
// SINGULARITY_. getenv is os.Getenv in production. It changes nothing but
// c's flags: the directory variables and the ignored ones come back for
// the caller to set and to report.
func applyEnvFlags(c *cobra.Command, getenv func(string) string, compat bool) (envApplied, error) {
	var err error
	c.Flags().VisitAll(func(fl *pflag.Flag) {
		if err == nil && settable(c, fl) {
			err = setFromEnv(fl, []string{EnvName(fl.Name)}, getenv)
		}
	})
	var out envApplied
	if err != nil || !compat {
		return out, err
	}
	for _, prefix := range envPrefixes[1:] {
		for _, e := range compatKeys {
			if !inGroup(e.group, c.Name()) {
				continue
			}
			names := make([]string, len(e.keys))
			for i, k := range e.keys {
				names[i] = prefix + k
			}
			if e.dirVar != "" {
				out.dirs = appendDir(out.dirs, e.dirVar, names, getenv)
				continue
			}
			fl := c.Flags().Lookup(e.flag)
			if fl == nil {
				for _, n := range names {
					if getenv(n) != "" {
						out.ignored = append(out.ignored, ignoredVar{n, e.flag, e.quiet})
					}
				}
				continue
			}
			if settable(c, fl) {
				if err := setFromEnv(fl, names, getenv); err != nil {
					return out, err
				}
			}
		}
	}
	return out, nil
}

// settable reports whether a variable may still set fl: the command line
// did not, no variable of higher precedence did, and neither did the
// command line or a variable set the opposite option.
func settable(c *cobra.Command, fl *pflag.Flag) bool {
	if fl.Changed || noEnvFlag[fl.Name] || len(fl.Annotations[envAnnotation]) > 0 {
		return false
	}
	if o := c.Flags().Lookup(opposite[fl.Name]); o != nil && (o.Changed || len(o.Annotations[envAnnotation]) > 0) {
		return false
	}
	return true
}

// setFromEnv sets fl from the first of names that is set and not empty,
// and marks fl with the variable's name (envAnnotation).
func setFromEnv(fl *pflag.Flag, names []string, getenv func(string) string) error {
	for _, name := range names {
		v := getenv(name)
		if v == "" {
			continue
		}
		if fl.Value.Type() == "bool" {
			v = boolWord(v)
		}
		if err := fl.Value.Set(v); err != nil {
			return fmt.Errorf("%s=%s: invalid value for --%s: %w", name, v, fl.Name, err)
		}
		if fl.Annotations == nil {
			fl.Annotations = map[string][]string{}
		}
		fl.Annotations[envAnnotation] = []string{name}
		return nil
	}
	return nil
}

// userEnv is the environment the user gave launch: os.Environ() before
// applyEnv exported the LAUNCH_ names of Apptainer's directory variables
// (LAUNCH_CACHEDIR from APPTAINER_CACHEDIR), which are launch's own
// business and must not reach the payload as if the user had set them.
func (g *globals) userEnv() []string {
	if g.hostEnv != nil {
		return g.hostEnv
	}
	return os.Environ()
}

// appendDir adds (dirVar, value) to dirs from the first of names set, when
// neither dirVar nor an earlier (higher precedence) entry is.
func appendDir(dirs [][2]string, dirVar string, names []string, getenv func(string) string) [][2]string {
	if getenv(dirVar) != "" {
		return dirs
	}
	for _, d := range dirs {
		if d[0] == dirVar {
			return dirs
		}
	}
	for _, n := range names {
		if v := getenv(n); v != "" {
			return append(dirs, [2]string{dirVar, v})
		}
	}
	return dirs
}

// envAnnotation marks a flag whose value came from a variable, naming the
// variable.
const envAnnotation = "launch-env"

// blameEnvFlags adds to err, when it names an option (--pwd) whose value
// came from a variable (LAUNCH_PWD, APPTAINER_PWD), which variable that was: the user
// typed no --pwd and must be told where it came from.
func blameEnvFlags(c *cobra.Command, err error) error {
	if c == nil {
		return err
	}
	text := err.Error()
	var from []string
	c.Flags().VisitAll(func(fl *pflag.Flag) {
		vars := fl.Annotations[envAnnotation]
		if len(vars) == 0 || !mentionsFlag(text, fl.Name) {
			return
		}
		from = append(from, "--"+fl.Name+" was set by "+vars[0])
	})
	if len(from) == 0 {
		return err
	}
	return fmt.Errorf("%w (%s)", err, strings.Join(from, "; "))
}

// mentionsFlag reports whether text names the option --name as a whole
// word (not --pid inside --pidfile).
func mentionsFlag(text, name string) bool {
	opt := "--" + name
	for i := 0; ; {
		j := strings.Index(text[i:], opt)
		if j < 0 {
			return false
		}
		end := i + j + len(opt)
		if end == len(text) || !isFlagChar(text[end]) {
			return true
		}
		i = end
	}
}

func isFlagChar(b byte) bool {
	return b == '-' || b == '_' || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9')
}

// boolWord accepts the words people write for booleans in job scripts.
func boolWord(v string) string {
	switch strings.ToLower(v) {
	case "yes", "y", "on":
		return "true"
	case "no", "n", "off":
		return "false"
	}
	return v
}
