package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/cliutil"
	"github.com/launch-hpc/launch/internal/config"
	"github.com/launch-hpc/launch/internal/image"
	"github.com/launch-hpc/launch/internal/layout"
)

// inspectFlags choose what `launch inspect` shows.
type inspectFlags struct {
	labels, runscript, environment, deffile, all, json bool
	startscript, test, helpfile, listApps              bool
	app                                                string
}

func newInspectCmd(g *globals) *cobra.Command {
	var f inspectFlags
	c := &cobra.Command{
		Use:   "inspect [--labels] [--runscript] [--environment] [--deffile] [--helpfile] [--test] [--startscript] [--list-apps] [--app NAME] [--json] IMAGE",
		Short: "Show the metadata of an image: labels, runscript, environment, definition file, apps",
		Long: `inspect shows what an image (SIF, SquashFS or sandbox directory) says about
itself under ` + layout.Dir + `: its labels (the default), its runscript,
startscript, test script, help text, its environment scripts and the
definition file it was built from; with --app NAME, those of the SCIF app
NAME (` + layout.SCIFApps + `/NAME); --list-apps lists the apps. With --json
it prints them as Apptainer does:
{"data":{"attributes":{"labels":{...},...}},"type":"container"}, plus, for
an image converted from an OCI image, the image's original configuration
as "oci-config".
(-d after inspect is --deffile, as in Apptainer; before it, the global --debug.)`,
		Example: `  launch inspect app.sif
  launch inspect --runscript app.sif
  launch inspect -e ./sandbox/
  launch inspect --deffile app.sif
  launch inspect --list-apps app.sif
  launch inspect --app foo --runscript app.sif
  launch inspect --json --all app.sif`,
		Args: cliutil.ExactArgs(1, "an image"),
		RunE: func(cmd *cobra.Command, args []string) error {
			conf, err := config.LoadSite()
			if err != nil {
				return err
			}
			path, err := imageToRead(g, args[0]) // a docker://, oras://… source: its cached SIF; instance://NAME: its image
			if err != nil {
				return err
			}
			img, err := image.Open(path)
			if err != nil {
				return err
			}
			m, err := image.ReadMeta(cmd.Context(), img, conf.Tools.Unsquashfs)
			if err != nil {
				return err
			}
			if f.all {
				f.labels, f.runscript, f.environment, f.deffile = true, true, true, true
				f.startscript, f.test, f.helpfile, f.listApps = true, true, true, true
				f.app = ""
			}
			if !f.runscript && !f.environment && !f.deffile && !f.startscript && !f.test && !f.helpfile && !f.listApps {
				f.labels = true
			}
			x, err := readInspectExtra(cmd, img, conf.Tools.Unsquashfs, f)
			if err != nil {
				return err
			}
			if f.json {
				return writeInspectJSON(g.stdout, m, x, f)
			}
			writeInspectText(g.stdout, m, x, f)
			return nil
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&f.labels, "labels", "l", false, "show the labels (the default)")
	fl.BoolVarP(&f.runscript, "runscript", "r", false, "show the runscript")
	fl.BoolVarP(&f.environment, "environment", "e", false, "show the environment scripts")
	fl.BoolVar(&f.deffile, "deffile", false, "show the definition file the image was built from (also -d)")
	fl.BoolVarP(&f.startscript, "startscript", "s", false, "show the startscript")
	fl.BoolVarP(&f.test, "test", "t", false, "show the test script")
	fl.BoolVarP(&f.helpfile, "helpfile", "H", false, "show the help text (%help, runscript.help)")
	fl.BoolVar(&f.listApps, "list-apps", false, "list the SCIF apps of the image")
	fl.StringVar(&f.app, "app", "", "show the metadata of the SCIF app NAME")
	fl.BoolVar(&f.all, "all", false, "show everything")
	fl.BoolVarP(&f.json, "json", "j", false, "print as JSON")
	return c
}

// inspectArgs makes "-d" after the word inspect mean --deffile, as in
// Apptainer, where the global -d (--debug) comes before the command.
func inspectArgs(args []string) []string {
	if commandName(args) != "inspect" {
		return args
	}
	out := append([]string(nil), args...)
	seen := false
	for i, a := range out {
		if a == "--" {
			break
		}
		if !seen {
			seen = a == "inspect"
			continue
		}
		if a == "-d" {
			out[i] = "--deffile"
		}
	}
	return out
}

// writeInspectJSON prints Apptainer's inspect --json layout.
func writeInspectJSON(w io.Writer, m *image.Meta, x *inspectExtra, f inspectFlags) error {
	a := map[string]any{}
	if f.deffile && m.Deffile != "" {
		a["deffile"] = m.Deffile
	}
	if f.app != "" {
		if app := x.apps[f.app]; app != nil {
			a["apps"] = map[string]any{f.app: app.attributes(f)}
		}
	} else {
		for k, v := range rootAttributes(m, x, f) {
			a[k] = v
		}
		if f.listApps && len(x.apps) > 0 {
			apps := map[string]any{}
			for name, app := range x.apps {
				apps[name] = app.attributes(inspectFlags{labels: true, runscript: true, environment: true,
					startscript: true, test: true, helpfile: true})
			}
			a["apps"] = apps
		}
	}
	if len(m.OCIConfig) > 0 && json.Valid(m.OCIConfig) {
		a["oci-config"] = json.RawMessage(m.OCIConfig)
	}
	out := map[string]any{"data": map[string]any{"attributes": a}, "type": "container"}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "    ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	return nil
}

// rootAttributes are the image's own attributes f asks for, as JSON.
func rootAttributes(m *image.Meta, x *inspectExtra, f inspectFlags) map[string]any {
	a := map[string]any{}
	if f.labels {
		a["labels"] = m.Labels
	}
	if f.runscript {
		a["runscript"] = m.Runscript
	}
	if f.environment {
		env := map[string]string{}
		for k, v := range m.EnvFiles {
			env[k] = strings.TrimRight(v, "\n")
		}
		a["environment"] = env
	}
	for _, s := range []struct {
		on        bool
		key, text string
	}{{f.startscript, "startscript", x.startscript}, {f.test, "test", x.test}, {f.helpfile, "helpfile", x.help}} {
		if s.on && s.text != "" {
			a[s.key] = strings.TrimRight(s.text, "\n")
		}
	}
	return a
}

func writeInspectText(w io.Writer, m *image.Meta, x *inspectExtra, f inspectFlags) {
	section := func(s string) {
		io.WriteString(w, s) //nolint:errcheck // stdout
		if s != "" && !strings.HasSuffix(s, "\n") {
			io.WriteString(w, "\n") //nolint:errcheck // stdout
		}
	}
	if f.listApps {
		for _, name := range x.appNames() {
			fmt.Fprintln(w, name)
		}
	}
	if f.app != "" {
		if app := x.apps[f.app]; app != nil {
			app.writeText(w, f, section)
		}
		if f.deffile {
			section(m.Deffile)
		}
		return
	}
	if f.labels {
		writeLabels(w, m.Labels)
	}
	if f.runscript {
		section(m.Runscript)
	}
	if f.environment {
		section(m.Environment)
	}
	if f.deffile {
		section(m.Deffile)
	}
	if f.startscript {
		section(x.startscript)
	}
	if f.test {
		section(x.test)
	}
	if f.helpfile {
		section(x.help)
	}
}

// writeLabels prints labels as "KEY: VALUE" lines, sorted.
func writeLabels(w io.Writer, labels map[string]string) {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%s: %s\n", k, labels[k])
	}
}
