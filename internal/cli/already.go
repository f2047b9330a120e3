package cli

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// alreadyAnnotation marks the options registerAlready adds.
const alreadyAnnotation = "launch-already"

// registerAlready adds to c the Apptainer options of the command as (c's
// own name, or "exec" for instance start, which takes exec's options)
// that launch has no use for because it already behaves as they ask (the
// quiet entries of compatKeys: --userns, --no-init, --unsquash, ...),
// hidden, so that a script written for Apptainer runs unchanged instead of
// stopping at an unknown option. as "" adds the options every command
// takes (--nocolor) to c's persistent flags: for the root.
func registerAlready(c *cobra.Command, as string) {
	fs := c.Flags()
	if as == "" {
		fs = c.PersistentFlags()
	}
	for _, e := range compatKeys {
		if !e.quiet || e.dirVar != "" || (e.group == groupAll) != (as == "") {
			continue
		}
		if as != "" && !inGroup(e.group, as) {
			continue
		}
		if fs.Lookup(e.flag) != nil || (e.short != "" && fs.ShorthandLookup(e.short) != nil) {
			continue
		}
		fs.BoolP(e.flag, e.short, false, "accepted for Apptainer: launch already behaves so")
		_ = fs.SetAnnotation(e.flag, alreadyAnnotation, []string{"true"})
		_ = fs.MarkHidden(e.flag)
	}
}

// reportAlready says, at debug level, which of the options registerAlready
// added were given (on the command line or by a variable), each changing
// nothing.
func (g *globals) reportAlready(c *cobra.Command) {
	c.Flags().VisitAll(func(fl *pflag.Flag) {
		if len(fl.Annotations[alreadyAnnotation]) == 0 {
			return
		}
		if from := fl.Annotations[envAnnotation]; len(from) > 0 {
			g.Log().Debugf("%s: launch has no use for --%s, it already behaves so", from[0], fl.Name)
		} else if fl.Changed {
			g.Log().Debugf("--%s: launch already behaves so", fl.Name)
		}
	})
}
