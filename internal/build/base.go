package build

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/launch-hpc/launch/internal/baseenv"
	"github.com/launch-hpc/launch/internal/buildinfo"
	"github.com/launch-hpc/launch/internal/layout"
)

// InspectMetadataObject is the name of the JSON data object (SIF data type
// JSON.Generic) in which Apptainer keeps what `apptainer inspect` shows;
// every SIF launch builds has one, so Apptainer reads it as its own.
const InspectMetadataObject = "inspect-metadata.json"

// EntryKind is what a base layout entry is.
type EntryKind int

// The kinds of base layout entries.
const (
	KindDir EntryKind = iota
	KindFile
	KindLink
)

// Entry is one directory, file or symbolic link of the base layout every
// image gets, at Path in the image. Data is a file's content, Target a
// link's.
type Entry struct {
	Path   string
	Kind   EntryKind
	Mode   uint32
	Data   string
	Target string
}

// sourceEnv is the loop with which every action script sources the
// image's environment scripts in name order.
const sourceEnv = "#!/bin/sh\n" + envLoop

// envLoop is sourceEnv without its interpreter line.
const envLoop = "# Set up the image's environment: every " + layout.EnvGlob + ", in name order.\n" +
	"for f in " + layout.EnvGlob + "; do\n\tif [ -f \"$f\" ]; then\n\t\t. \"$f\"\n\tfi\ndone\n"

// The action scripts. They follow Apptainer's (its runtime runs them when
// it runs an image launch built), each written for launch.
const (
	actionExec = sourceEnv + "exec \"$@\"\n"
	actionRun  = sourceEnv + "if [ -x " + layout.Runscript + " ]; then\n\texec " + layout.Runscript + " \"$@\"\nfi\n" +
		"echo \"This image has no runscript; running /bin/sh\"\nexec /bin/sh \"$@\"\n"
	actionShell = sourceEnv +
		"SH=\"${APPTAINER_SHELL:-${SINGULARITY_SHELL:-}}\"\n" +
		"if [ -n \"$SH\" ] && [ -x \"$SH\" ]; then\n\texec $SH \"$@\"\n" +
		"\techo \"ERROR: could not run the shell $SH\" >&2\n\texit 1\nfi\n" +
		"if [ -x /bin/bash ]; then\n\tSHELL=/bin/bash\n\tPS1=\"Apptainer ${APPTAINER_NAME:-}:\\\\w> \"\n\texport SHELL PS1\n\texec /bin/bash --norc \"$@\"\nfi\n" +
		"if [ -x /bin/sh ]; then\n\tSHELL=/bin/sh\n\texport SHELL\n\texec /bin/sh \"$@\"\nfi\n" +
		"echo \"ERROR: this image has no /bin/sh\" >&2\nexit 1\n"
	// actionStart first lets an instance's init (Apptainer's, which
	// waits for it) go on.
	actionStart = "#!/bin/sh\nkill -CONT 1 2>/dev/null\n" + envLoop +
		"if [ -x " + layout.Startscript + " ]; then\n\texec " + layout.Startscript + "\nfi\n"
	actionTest = sourceEnv + "if [ -x " + layout.Test + " ]; then\n\texec " + layout.Test + " \"$@\"\nfi\n" +
		"echo \"This image has no test; running /bin/sh -c true\"\nexec /bin/sh -c true\n"

	// The base environment scripts: their texts are baseenv's, which the
	// container recognises (and applies without a shell).
	baseEnv     = baseenv.First
	baseEnvLast = baseenv.Last
	// DeffileEnvHeader starts 90-environment.sh, which a definition
	// file's %environment follows.
	DeffileEnvHeader = baseenv.DeffileHeader
	// defaultRunscript is Apptainer's for an image that has none: it
	// says so and succeeds.
	defaultRunscript = "#!/bin/sh\necho \"There is no runscript defined for this container\"\n"
	startscript      = "#!/bin/sh\n"
)

// BaseLayout returns the entries every image launch builds has, in an order
// where directories come before what they hold, as Apptainer lays out every
// build: the metadata directory with its action scripts, base environment
// scripts, default runscript and startscript, the mount points, and the
// compatibility links at the root.
func BaseLayout() []Entry {
	var es []Entry
	for _, d := range []string{layout.Dir, layout.LibsDir, layout.ActionsDir, layout.EnvDir,
		"/dev", "/proc", "/root", "/var", "/var/tmp", "/tmp", "/etc", "/sys", "/home"} {
		es = append(es, Entry{Path: d, Kind: KindDir, Mode: 0o755})
	}
	for _, f := range []struct {
		path, data string
		mode       uint32
	}{
		{"/etc/hosts", "", 0o644},
		{"/etc/resolv.conf", "", 0o644},
		{layout.ActionExec, actionExec, 0o755},
		{layout.ActionRun, actionRun, 0o755},
		{layout.ActionShell, actionShell, 0o755},
		{layout.ActionStart, actionStart, 0o755},
		{layout.ActionTest, actionTest, 0o755},
		{layout.BaseEnv, baseEnv, 0o755},
		{layout.DeffileEnv, DeffileEnvHeader, 0o755},
		{layout.BaseEnvLast, baseEnvLast, 0o755},
		{layout.Runscript, defaultRunscript, 0o755},
		{layout.Startscript, startscript, 0o755},
	} {
		es = append(es, Entry{Path: f.path, Kind: KindFile, Mode: f.mode, Data: f.data})
	}
	for _, l := range [][2]string{
		{"/singularity", layout.Runscript[1:]},
		{"/.run", layout.ActionRun[1:]},
		{"/.exec", layout.ActionExec[1:]},
		{"/.test", layout.ActionTest[1:]},
		{"/.shell", layout.ActionShell[1:]},
		{"/environment", layout.DeffileEnv[1:]},
	} {
		es = append(es, Entry{Path: l[0], Kind: KindLink, Mode: 0o777, Target: l[1]})
	}
	return es
}

// HeaderField is one header keyword of the definition a build is made
// from ("bootstrap", "from", ...), lower case as Apptainer keeps it.
type HeaderField struct{ Key, Value string }

// SourceHeader is the definition header Apptainer gives a build that was
// not made from a definition file: the source's prefix (localimage for a
// directory or an image file) and the rest.
func SourceHeader(source string) []HeaderField {
	agent, from := "localimage", source
	if a, f, ok := strings.Cut(source, "://"); ok {
		agent, from = a, f
	} else if a, f, ok := strings.Cut(source, ":"); ok && !strings.Contains(a, "/") {
		agent, from = a, f
	}
	return []HeaderField{{"bootstrap", agent}, {"from", from}}
}

// HeaderDeffile is the definition file Apptainer stores for a build made
// from a header alone (bootstrap first).
func HeaderDeffile(h []HeaderField) []byte {
	var b strings.Builder
	for _, f := range h {
		if f.Key == "bootstrap" {
			fmt.Fprintf(&b, "bootstrap: %s\n", f.Value)
		}
	}
	for _, f := range h {
		if f.Key != "bootstrap" {
			fmt.Fprintf(&b, "%s: %s\n", f.Key, f.Value)
		}
	}
	b.WriteString("\n")
	return []byte(b.String())
}

// BuildInfo is what the build labels say about a build.
type BuildInfo struct {
	Now    time.Time
	Arch   string // GOARCH terms
	Header []HeaderField
	Help   bool // the image has a runscript.help
}

// AddBuildLabels sets in m the labels Apptainer gives every build: the
// org.label-schema build labels (launch's version in place of
// Apptainer's), the creation time and architecture, and one label per
// definition header keyword.
func AddBuildLabels(m map[string]string, bi BuildInfo) {
	m["org.label-schema.schema-version"] = "1.0"
	zone, _ := bi.Now.Zone()
	m["org.label-schema.build-date"] = fmt.Sprintf("%s_%d_%s_%d_%d:%d:%d_%s", bi.Now.Weekday(), bi.Now.Day(),
		bi.Now.Month(), bi.Now.Year(), bi.Now.Hour(), bi.Now.Minute(), bi.Now.Second(), zone)
	m["org.opencontainers.image.created"] = bi.Now.Format(time.RFC3339)
	m["org.label-schema.usage.launch.version"] = buildinfo.Version
	m["org.label-schema.build-arch"] = bi.Arch
	m["org.opencontainers.image.architecture"] = bi.Arch
	for _, f := range bi.Header {
		m["org.label-schema.usage.singularity.deffile."+f.Key] = f.Value
	}
	if bi.Help {
		m["org.label-schema.usage"] = layout.RunscriptHelp
		m["org.label-schema.usage.apptainer.runscript.help"] = layout.RunscriptHelp
	}
}

// ParseLabels reads a labels.json: its string members (a broken one gives
// none).
func ParseLabels(data []byte) map[string]string {
	m := map[string]string{}
	var raw map[string]any
	if json.Unmarshal(data, &raw) == nil {
		for k, v := range raw {
			if s, ok := v.(string); ok {
				m[k] = s
			}
		}
	}
	return m
}

// LabelsJSON is labels.json for m, as Apptainer writes it.
func LabelsJSON(m map[string]string) ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "\t")
	if err != nil {
		return nil, fmt.Errorf("writing labels: %w", err)
	}
	return b, nil
}

// ImageFiles are the metadata files of an image that its inspect metadata
// holds: each the file's content ("" when absent).
type ImageFiles struct {
	Labels                                      map[string]string
	Runscript, Startscript, Test, Help, Deffile string
	// Environment maps the path in the image of each environment script
	// Apptainer's inspect shows (10-docker*.sh, 9*-environment.sh) to its
	// content.
	Environment map[string]string
	// Apps are the SCIF apps of the image (/scif/apps/NAME), by name.
	Apps map[string]AppFiles
}

// AppFiles are the metadata files of one SCIF app that the inspect
// metadata holds, as ImageFiles' (Environment: the app's
// 9*-environment.sh scripts, by path in the image).
type AppFiles struct {
	Labels                             map[string]string
	Runscript, Startscript, Test, Help string
	Environment                        map[string]string
}

// InspectEnv reports whether inspect shows the environment script name (a
// file of layout.EnvDir), as Apptainer's does.
func InspectEnv(name string) bool {
	return strings.HasSuffix(name, layout.EnvSuffix) &&
		(strings.HasPrefix(name, "10-docker") || (strings.HasPrefix(name, "9") && strings.HasSuffix(name, "-environment.sh")))
}

// InspectMetadata is the content of the InspectMetadataObject for f, in the
// form Apptainer's inspect reads: {"data":{"attributes":{...}},"type":
// "container"}, each text with its trailing newlines cut.
func InspectMetadata(f ImageFiles) ([]byte, error) {
	trim := func(s string) string { return strings.TrimRight(s, "\n") }
	attrs := map[string]any{}
	labels := map[string]string{}
	for k, v := range f.Labels {
		labels[k] = v
	}
	attrs["labels"] = labels
	env := map[string]string{}
	keys := make([]string, 0, len(f.Environment))
	for k := range f.Environment {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env[k] = trim(f.Environment[k])
	}
	if len(env) > 0 {
		attrs["environment"] = env
	}
	for k, v := range map[string]string{"runscript": f.Runscript, "startscript": f.Startscript,
		"test": f.Test, "helpfile": f.Help, "deffile": f.Deffile} {
		if v = trim(v); v != "" {
			attrs[k] = v
		}
	}
	if len(labels) == 0 {
		delete(attrs, "labels")
	}
	if len(f.Apps) > 0 {
		apps := map[string]any{}
		for name, a := range f.Apps {
			m := map[string]any{}
			if len(a.Labels) > 0 {
				m["labels"] = a.Labels
			}
			if len(a.Environment) > 0 {
				env := map[string]string{}
				for k, v := range a.Environment {
					env[k] = trim(v)
				}
				m["environment"] = env
			}
			for k, v := range map[string]string{"runscript": a.Runscript, "startscript": a.Startscript, "test": a.Test, "helpfile": a.Help} {
				if v = trim(v); v != "" {
					m[k] = v
				}
			}
			apps[name] = m
		}
		attrs["apps"] = apps
	}
	b, err := json.Marshal(map[string]any{"data": map[string]any{"attributes": attrs}, "type": "container"})
	if err != nil {
		return nil, fmt.Errorf("writing inspect metadata: %w", err)
	}
	return b, nil
}
