package runspec

import (
	"fmt"
	"strings"
	"unicode"
)

// checkApp: an --app name is one directory name of /scif/apps, nothing that
// could lead out of it, and only for the commands that run something of an
// app.
func checkApp(s *Spec) error {
	if s.App == "" {
		return nil
	}
	if s.App == "." || s.App == ".." || strings.ContainsFunc(s.App, func(r rune) bool {
		return r == '/' || unicode.IsControl(r) || unicode.IsSpace(r)
	}) {
		return fmt.Errorf("--app %q is not an app name (a name of a directory of /scif/apps)", s.App)
	}
	return nil
}
