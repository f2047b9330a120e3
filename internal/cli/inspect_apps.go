package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/image"
	"github.com/launch-hpc/launch/internal/layout"
)

// inspectExtra is what inspect reads beyond image.ReadMeta, only when a
// flag asks for it: the startscript, test and help text, and the SCIF apps.
type inspectExtra struct {
	startscript, test, help string
	apps                    map[string]*appMeta
}

// appMeta is what one SCIF app says about itself (layout.SCIFApps/NAME).
type appMeta struct {
	labels                             map[string]string
	runscript, startscript, test, help string
	env                                map[string]string // path in the image -> content
}

// appNames returns the names of the apps, sorted.
func (x *inspectExtra) appNames() []string {
	names := make([]string, 0, len(x.apps))
	for n := range x.apps {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// readInspectExtra reads what f asks for beyond image.ReadMeta. An --app
// the image does not have is an error naming the apps it has.
func readInspectExtra(cmd *cobra.Command, img *image.Image, unsquashfs string, f inspectFlags) (*inspectExtra, error) {
	x := &inspectExtra{}
	if f.startscript || f.test || f.helpfile {
		want := map[string]*string{layout.Startscript: &x.startscript, layout.Test: &x.test, layout.RunscriptHelp: &x.help}
		_, data, err := image.ReadTree(cmd.Context(), img, unsquashfs, layout.Dir, func(p string) bool { return want[p] != nil })
		if err != nil {
			return nil, err
		}
		for p, dst := range want {
			*dst = data[p]
		}
	}
	if f.app == "" && !f.listApps {
		return x, nil
	}
	apps, err := readApps(cmd, img, unsquashfs)
	if err != nil {
		return nil, err
	}
	x.apps = apps
	if f.app != "" && apps[f.app] == nil {
		has := "it has no SCIF apps"
		if len(apps) > 0 {
			has = "its apps: " + strings.Join(x.appNames(), ", ")
		}
		return nil, fmt.Errorf("--app %s: no such app in image %s (%s)", f.app, img.Path, has)
	}
	return x, nil
}

// appFile maps a file of an app's metadata directory to the field it fills.
func appFile(rel string) func(a *appMeta, data string) {
	switch rel {
	case layout.AppRunscript:
		return func(a *appMeta, d string) { a.runscript = d }
	case layout.AppStartscript:
		return func(a *appMeta, d string) { a.startscript = d }
	case layout.AppTest:
		return func(a *appMeta, d string) { a.test = d }
	case layout.AppHelp:
		return func(a *appMeta, d string) { a.help = d }
	case layout.AppLabels:
		return func(a *appMeta, d string) { _ = json.Unmarshal([]byte(d), &a.labels) }
	}
	return nil
}

// splitApp splits a path below layout.SCIFApps into the app's name and
// the path below the app's root.
func splitApp(p string) (name, rel string, ok bool) {
	rest, found := strings.CutPrefix(p, layout.SCIFApps+"/")
	if !found {
		return "", "", false
	}
	return strings.Cut(rest, "/")
}

// isAppEnv reports whether rel (below an app's root) is an environment
// script inspect shows (9*-environment.sh, as Apptainer's).
func isAppEnv(rel string) bool {
	b := path.Base(rel)
	return path.Dir(rel) == layout.AppEnvDir && strings.HasPrefix(b, "9") && strings.HasSuffix(b, "-environment.sh")
}

// readApps reads the SCIF apps of img: every directory of layout.SCIFApps
// with a layout.AppMeta directory holding files, as Apptainer counts them.
func readApps(cmd *cobra.Command, img *image.Image, unsquashfs string) (map[string]*appMeta, error) {
	want := func(p string) bool {
		_, rel, ok := splitApp(p)
		return ok && (appFile(rel) != nil || isAppEnv(rel))
	}
	files, data, err := image.ReadTree(cmd.Context(), img, unsquashfs, layout.SCIFApps, want)
	if err != nil {
		return nil, err
	}
	apps := map[string]*appMeta{}
	for _, p := range files {
		name, rel, ok := splitApp(p)
		if !ok || !strings.HasPrefix(rel, layout.AppMeta+"/") {
			continue
		}
		a := apps[name]
		if a == nil {
			a = &appMeta{labels: map[string]string{}, env: map[string]string{}}
			apps[name] = a
		}
		d, read := data[p]
		if !read {
			continue
		}
		if set := appFile(rel); set != nil {
			set(a, d)
		} else if isAppEnv(rel) {
			a.env[p] = d
		}
	}
	return apps, nil
}

// attributes are the app's attributes f asks for, as Apptainer's JSON
// holds them.
func (a *appMeta) attributes(f inspectFlags) map[string]any {
	m := map[string]any{}
	if f.labels && len(a.labels) > 0 {
		m["labels"] = a.labels
	}
	if f.environment && len(a.env) > 0 {
		env := map[string]string{}
		for k, v := range a.env {
			env[k] = strings.TrimRight(v, "\n")
		}
		m["environment"] = env
	}
	for _, s := range []struct {
		on        bool
		key, text string
	}{{f.runscript, "runscript", a.runscript}, {f.startscript, "startscript", a.startscript},
		{f.test, "test", a.test}, {f.helpfile, "helpfile", a.help}} {
		if s.on && s.text != "" {
			m[s.key] = strings.TrimRight(s.text, "\n")
		}
	}
	return m
}

// writeText prints what f asks for of the app, as inspect prints the
// image's own.
func (a *appMeta) writeText(w io.Writer, f inspectFlags, section func(string)) {
	if f.labels {
		writeLabels(w, a.labels)
	}
	if f.runscript {
		section(a.runscript)
	}
	if f.environment {
		keys := make([]string, 0, len(a.env))
		for k := range a.env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			section("=== " + k + " ===\n" + a.env[k])
		}
	}
	if f.startscript {
		section(a.startscript)
	}
	if f.test {
		section(a.test)
	}
	if f.helpfile {
		section(a.help)
	}
}
