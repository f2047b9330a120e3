package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// noEnvFlag are the flags that LAUNCH_<OPTION> does not set: help and
// version make no sense as defaults, and binds have their own variables
// (LAUNCH_BIND, LAUNCH_BINDPATH) that add to --bind instead of replacing it.
var noEnvFlag = map[string]bool{"help": true, "version": true, "bind": true}

// opposite names flags that contradict each other: a variable for one is
// not applied when the command line gave the other, so the command line
// wins (LAUNCH_NO_HOME=1 with -H DIR binds DIR).
var opposite = map[string]string{"home": "no-home", "no-home": "home"}

// EnvName is the variable that sets a long option: LAUNCH_ and the option
// in capitals with - as _ (--no-home → LAUNCH_NO_HOME).
func EnvName(flag string) string {
	return "LAUNCH_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnvFlags sets every flag of c that the command line left alone from
// its LAUNCH_<OPTION> variable, when set and not empty, so a site or a job
// script can set defaults once (LAUNCH_CLEANENV=1, LAUNCH_CONTAINALL=true).
// The command line wins. getenv is os.Getenv in production.
func applyEnvFlags(c *cobra.Command, getenv func(string) string) error {
	var err error
	c.Flags().VisitAll(func(fl *pflag.Flag) {
		if err != nil || fl.Changed || noEnvFlag[fl.Name] {
			return
		}
		if o := c.Flags().Lookup(opposite[fl.Name]); o != nil && o.Changed {
			return
		}
		name := EnvName(fl.Name)
		v := getenv(name)
		if v == "" {
			return
		}
		if fl.Value.Type() == "bool" {
			v = boolWord(v)
		}
		if serr := fl.Value.Set(v); serr != nil {
			err = fmt.Errorf("%s=%s: invalid value for --%s: %w", name, v, fl.Name, serr)
			return
		}
		if fl.Annotations == nil {
			fl.Annotations = map[string][]string{}
		}
		fl.Annotations[envAnnotation] = []string{name}
	})
	return err
}

// envAnnotation marks a flag whose value came from its LAUNCH_<OPTION>
// variable, naming the variable.
const envAnnotation = "launch-env"

// blameEnvFlags adds to err, when it names an option (--pwd) whose value
// came from a LAUNCH_<OPTION> variable, which variable that was: the user
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
