package defbuild

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/launch-hpc/launch/internal/baseenv"
	"github.com/launch-hpc/launch/internal/deffile"
	"github.com/launch-hpc/launch/internal/layout"
)

// The SCIF apps of a stage (%appinstall, %apprun, %appenv, %applabels,
// %apphelp, %appfiles, %apptest, %appstart) become, as in Apptainer:
//
//	/scif/apps/NAME/{bin,lib}             on PATH and LD_LIBRARY_PATH with --app NAME
//	/scif/apps/NAME/scif/env/01-base.sh   the app's SCIF_ variables
//	/scif/apps/NAME/scif/env/90-environment.sh   %appenv
//	/scif/apps/NAME/scif/{runscript,startscript,test,runscript.help,labels.json}
//	/scif/data/NAME/{input,output}
//	/.singularity.d/env/94-appsbase.sh    SCIF_APP*_NAME of every app
//	/.singularity.d/env/95-apps.sh        sets up the app --app names
//
// laid out right after the bootstrap; %appfiles are copied from the host
// then, and each %appinstall runs after %post, in the same script, in the
// app's root.

// appRoot is the app's root directory in the image.
func appRoot(a *deffile.App) string { return path.Join(layout.SCIFApps, a.Name) }

// appData is the app's data directory in the image.
func appData(a *deffile.App) string { return path.Join(layout.SCIFData, a.Name) }

// appDirs are the directories every app has, parents first.
func appDirs(a *deffile.App) []string {
	r, d := appRoot(a), appData(a)
	return []string{r, path.Join(r, layout.AppMeta), path.Join(r, layout.AppBin), path.Join(r, layout.AppLib),
		path.Join(r, layout.AppEnvDir), path.Join(d, layout.AppInput), path.Join(d, layout.AppOutput)}
}

// appBaseEnv is the app's layout.AppBaseEnv: the SCIF_ variables of the
// app, which --app NAME and %appinstall get.
func appBaseEnv(a *deffile.App) string {
	r, d := appRoot(a), appData(a)
	return "#!/bin/sh\n# The SCIF variables of app " + a.Name + " (written by the build).\n\n" +
		"SCIF_APPNAME=" + shq(a.Name) + "\n" +
		"SCIF_APPROOT=" + shq(r) + "\n" +
		"SCIF_APPMETA=" + shq(path.Join(r, layout.AppMeta)) + "\n" +
		"SCIF_DATA=" + shq(layout.SCIFData) + "\n" +
		"SCIF_APPDATA=" + shq(d) + "\n" +
		"SCIF_APPINPUT=" + shq(path.Join(d, layout.AppInput)) + "\n" +
		"SCIF_APPOUTPUT=" + shq(path.Join(d, layout.AppOutput)) + "\n" +
		"export SCIF_APPNAME SCIF_APPROOT SCIF_APPMETA SCIF_DATA SCIF_APPDATA SCIF_APPINPUT SCIF_APPOUTPUT\n"
}

// shq quotes s for sh (app names are directory names: no '/', no
// whitespace, but anything else).
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// appScriptFile is an app's runscript, startscript or test as Apptainer
// writes it: "#!/bin/sh", a blank line, the body (no "#!" of the body is
// taken, unlike %runscript).
func appScriptFile(s deffile.Script) []byte {
	return []byte("#!/bin/sh\n\n" + s.Body + "\n")
}

// appLabels is the app's labels.json: SCIF_APP_NAME and its %applabels.
func appLabels(a *deffile.App) ([]byte, error) {
	m := deffile.LabelMap(a.Labels)
	m["SCIF_APP_NAME"] = a.Name
	b, err := json.MarshalIndent(m, "", "\t")
	if err != nil {
		return nil, fmt.Errorf("app %s: writing its labels: %w", a.Name, err)
	}
	return b, nil
}

// appFiles returns the metadata files of the app.
func appFiles(a *deffile.App) ([]file, error) {
	r := appRoot(a)
	fs := []file{{path.Join(r, layout.AppBaseEnv), []byte(appBaseEnv(a)), 0o755}}
	if a.Env.Line > 0 {
		fs = append(fs, file{path.Join(r, layout.AppEnv), []byte(a.Env.Body), 0o755})
	}
	for _, s := range []struct {
		sc  deffile.Script
		rel string
	}{{a.Run, layout.AppRunscript}, {a.Start, layout.AppStartscript}, {a.Test, layout.AppTest}} {
		if s.sc.Line > 0 {
			fs = append(fs, file{path.Join(r, s.rel), appScriptFile(s.sc), 0o755})
		}
	}
	if a.Help.Line > 0 {
		fs = append(fs, file{path.Join(r, layout.AppHelp), []byte(a.Help.Body), 0o644})
	}
	lj, err := appLabels(a)
	if err != nil {
		return nil, err
	}
	return append(fs, file{path.Join(r, layout.AppLabels), lj, 0o644}), nil
}

// varName is the app's name as Apptainer puts it in the names of its
// variables in 94-appsbase.sh: each character other than a letter, digit
// or '_' replaced by '_'.
func varName(app string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, app)
}

// appsBaseEnv is layout.AppsBaseEnv for the stage's apps: for each app, the
// SCIF_APPDATA_N, SCIF_APPMETA_N, SCIF_APPROOT_N, SCIF_APPBIN_N and
// SCIF_APPLIB_N of every app, and SCIF_APPENV_N, SCIF_APPLABELS_N,
// SCIF_APPRUN_N, SCIF_APPSTART_N for the files it has.
func appsBaseEnv(apps []deffile.App) string {
	var b strings.Builder
	for i := range apps {
		a := &apps[i]
		n, r := varName(a.Name), appRoot(a)
		fmt.Fprintf(&b, "## The SCIF app %s\n\n", n)
		vars := []string{"SCIF_APPDATA_" + n, "SCIF_APPMETA_" + n, "SCIF_APPROOT_" + n, "SCIF_APPBIN_" + n, "SCIF_APPLIB_" + n}
		vals := []string{appData(a), path.Join(r, layout.AppMeta), r, path.Join(r, layout.AppBin), path.Join(r, layout.AppLib)}
		for j := range vars {
			fmt.Fprintf(&b, "%s=%s\n", vars[j], shq(vals[j]))
		}
		fmt.Fprintf(&b, "\nexport %s\n", strings.Join(vars, " "))
		for _, o := range []struct {
			has  bool
			name string
			rel  string
		}{{a.Env.Line > 0, "SCIF_APPENV_", layout.AppEnv}, {true, "SCIF_APPLABELS_", layout.AppLabels},
			{a.Run.Line > 0, "SCIF_APPRUN_", layout.AppRunscript}, {a.Start.Line > 0, "SCIF_APPSTART_", layout.AppStartscript}} {
			if o.has {
				fmt.Fprintf(&b, "export %s%s=%s\n", o.name, n, shq(path.Join(r, o.rel)))
			}
		}
	}
	return b.String()
}

// appsEnvFiles are the files of /.singularity.d/env for the stage's apps.
func appsEnvFiles(apps []deffile.App) []file {
	return []file{{layout.AppsBaseEnv, []byte(appsBaseEnv(apps)), 0o755}, {layout.AppsEnv, []byte(baseenv.AppsScript), 0o755}}
}

// appInstall is the script %post runs for the app's %appinstall: in the
// app's root, with its SCIF_ variables, as Apptainer runs it.
func appInstall(a *deffile.App) string {
	r := appRoot(a)
	return "\ncd /\n. " + shq(path.Join(r, layout.AppBaseEnv)) + "\ncd " + shq(r) + "\n" + a.Install.Body + "\ncd /\n"
}

// postScript is the script of the stage's Post step: %post, then every
// %appinstall in the order of the apps.
func postScript(st *deffile.Stage) string {
	s := st.Post.Body
	for i := range st.Apps {
		if st.Apps[i].Install.Line > 0 {
			s += appInstall(&st.Apps[i])
		}
	}
	return s
}

// postLine is the line of the section the Post step is for: %post, else
// the first %appinstall; 0 when the stage has neither.
func postLine(st *deffile.Stage) int {
	if st.Post.Line > 0 {
		return st.Post.Line
	}
	for i := range st.Apps {
		if l := st.Apps[i].Install.Line; l > 0 {
			return l
		}
	}
	return 0
}
