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
}

func newInspectCmd(g *globals) *cobra.Command {
	var f inspectFlags
	c := &cobra.Command{
		Use:   "inspect [--labels] [--runscript] [--environment] [--deffile] [--json] IMAGE",
		Short: "Show the metadata of an image: labels, runscript, environment, definition file",
		Long: `inspect shows what an image (SIF, SquashFS or sandbox directory) says about
itself under ` + layout.Dir + `: its labels (the default), its runscript, its
environment scripts and the definition file it was built from. With --json
it prints them as Apptainer does:
{"data":{"attributes":{"labels":{...},...}},"type":"container"}, plus, for
an image converted from an OCI image, the image's original configuration
as "oci-config".
(-d is the global --debug flag, so the definition file is --deffile only.)`,
		Example: `  launch inspect app.sif
  launch inspect --runscript app.sif
  launch inspect -e ./sandbox/
  launch inspect --deffile app.sif
  launch inspect --json --all app.sif`,
		Args: cliutil.ExactArgs(1, "an image"),
		RunE: func(cmd *cobra.Command, args []string) error {
			conf, err := config.LoadSite()
			if err != nil {
				return err
			}
			img, err := image.Open(args[0])
			if err != nil {
				return err
			}
			m, err := image.ReadMeta(cmd.Context(), img, conf.Tools.Unsquashfs)
			if err != nil {
				return err
			}
			if f.all {
				f.labels, f.runscript, f.environment, f.deffile = true, true, true, true
			}
			if !f.runscript && !f.environment && !f.deffile {
				f.labels = true
			}
			if f.json {
				return writeInspectJSON(g.stdout, m, f)
			}
			writeInspectText(g.stdout, m, f)
			return nil
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&f.labels, "labels", "l", false, "show the labels (the default)")
	fl.BoolVarP(&f.runscript, "runscript", "r", false, "show the runscript")
	fl.BoolVarP(&f.environment, "environment", "e", false, "show the environment scripts")
	fl.BoolVar(&f.deffile, "deffile", false, "show the definition file the image was built from")
	fl.BoolVar(&f.all, "all", false, "show everything")
	fl.BoolVarP(&f.json, "json", "j", false, "print as JSON")
	return c
}

// inspectJSON is Apptainer's inspect --json layout.
type inspectJSON struct {
	Data struct {
		Attributes map[string]any `json:"attributes"`
	} `json:"data"`
	Type string `json:"type"`
}

func writeInspectJSON(w io.Writer, m *image.Meta, f inspectFlags) error {
	var out inspectJSON
	out.Type = "container"
	a := map[string]any{}
	if f.labels {
		a["labels"] = m.Labels
	}
	if f.runscript {
		a["runscript"] = m.Runscript
	}
	if f.environment {
		a["environment"] = m.Environment
	}
	if f.deffile {
		a["deffile"] = m.Deffile
	}
	if len(m.OCIConfig) > 0 && json.Valid(m.OCIConfig) {
		a["oci-config"] = json.RawMessage(m.OCIConfig)
	}
	out.Data.Attributes = a
	enc := json.NewEncoder(w)
	enc.SetIndent("", "    ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	return nil
}

func writeInspectText(w io.Writer, m *image.Meta, f inspectFlags) {
	section := func(s string) {
		io.WriteString(w, s) //nolint:errcheck // stdout
		if s != "" && !strings.HasSuffix(s, "\n") {
			io.WriteString(w, "\n") //nolint:errcheck // stdout
		}
	}
	if f.labels {
		keys := make([]string, 0, len(m.Labels))
		for k := range m.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%s: %s\n", k, m.Labels[k])
		}
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
}
