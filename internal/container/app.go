package container

import (
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/launch-hpc/launch/internal/baseenv"
	"github.com/launch-hpc/launch/internal/environ"
	"github.com/launch-hpc/launch/internal/layout"
	"github.com/launch-hpc/launch/internal/msg"
)

// This file is --app (Config.App) and `launch test` inside the container,
// after the pivot: which SCIF app scripts the payload runs and the
// variables that tell the image's environment scripts which app was
// chosen. A run without --app takes none of these paths. (payload.go
// uses them; they use nothing of it.)

// errNoTest is `launch test` of an image without a test script: nothing
// runs and the status is 0, as in Apptainer.
var errNoTest = errors.New("no test script in the container")

// maxAppsListed bounds how many entries of layout.SCIFApps are read to name
// the apps an image has.
const maxAppsListed = 256

// appVars sets the variables naming the chosen app: SINGULARITY_APPNAME
// (which the image's 95-apps.sh, Apptainer's or launch's, acts on),
// APPTAINER_APPNAME and LAUNCH_APPNAME.
func appVars(env []string, app string) []string {
	for _, p := range [...]string{"LAUNCH_", "APPTAINER_", "SINGULARITY_"} {
		env = environ.Set(env, p+"APPNAME", app)
	}
	return env
}

// checkApp checks that the image has the app cfg.App; the error names the
// apps it has.
func checkApp(cfg *Config) error {
	if fi, err := os.Stat(path.Join(layout.SCIFApps, cfg.App)); err == nil && fi.IsDir() {
		return nil
	}
	apps := listApps()
	has := "it has no SCIF apps"
	if len(apps) > 0 {
		has = "its apps: " + strings.Join(apps, ", ")
	}
	return fmt.Errorf("--app %s: no such app in image %s (%s)", cfg.App, cfg.Image.Path, has)
}

// listApps returns the names of the apps of the container, sorted (at most
// maxAppsListed of them).
func listApps() []string {
	f, err := os.Open(layout.SCIFApps)
	if err != nil {
		return nil
	}
	defer f.Close()
	des, _ := f.ReadDir(maxAppsListed)
	var names []string
	for _, de := range des {
		if de.IsDir() {
			names = append(names, msg.OneLine(de.Name()))
		}
	}
	sort.Strings(names)
	return names
}

// appPath is the path of the app's file rel (layout.AppRunscript,
// layout.AppTest) in the container.
func appPath(cfg *Config, rel string) string {
	return path.Join(layout.SCIFApps, cfg.App, rel)
}

// appEnvScript is envScript for a run with --app: when the image has no
// layout.AppsEnv of its own to set up the app, the container runs
// baseenv.AppsScript after the image's scripts.
func appEnvScript(envScript string) string {
	if _, err := os.Stat(layout.AppsEnv); err == nil {
		return envScript
	}
	return strings.Replace(envScript, "\n__launch_env\n", "\n__launch_env\n"+baseenv.AppsScript, 1)
}
