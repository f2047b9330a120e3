package defbuild

import (
	"bufio"
	"bytes"
	"encoding/json"
	"runtime"
	"strings"
	"time"

	"github.com/launch-hpc/launch/internal/buildinfo"
	"github.com/launch-hpc/launch/internal/deffile"
	"github.com/launch-hpc/launch/internal/layout"
)

// BuildLabels is where %post may append "NAME VALUE" lines
// ($APPTAINER_LABELS, $LAUNCH_LABELS), as in Apptainer; it is read into
// labels.json and removed.
const BuildLabels = "/.build.labels"

// PostEnv is the environment script %post may append to
// ($APPTAINER_ENVIRONMENT, $LAUNCH_ENVIRONMENT), as in Apptainer.
const PostEnv = layout.EnvDir + "/91-environment.sh"

// baseEnv is Apptainer's /.singularity.d/env/01-base.sh for a tree that has
// none.
const baseEnv = "#!/bin/sh\n#\n# Base environment of the image (written by the build).\n"

// envHeader starts 90-environment.sh, as Apptainer writes it.
const envHeader = "#!/bin/sh\n# Custom environment shell code should follow\n\n"

// file is one metadata file to write into the image.
type file struct {
	path string
	data []byte
	mode uint32
}

// scriptFile is a runtime script (%runscript, %startscript, %test) as
// Apptainer writes it: interpreter line, blank line, body.
func scriptFile(s deffile.Script) []byte {
	interp, body := s.Shebang()
	return []byte(interp + "\n\n" + body + "\n")
}

// metadataFiles returns the files the stage's sections write into
// /.singularity.d, labels aside.
func metadataFiles(st *deffile.Stage, text []byte) []file {
	var fs []file
	if st.Environment.Line > 0 {
		fs = append(fs, file{layout.DeffileEnv, []byte(envHeader + st.Environment.Body), 0o755})
	}
	if st.Runscript.Line > 0 {
		fs = append(fs, file{layout.Runscript, scriptFile(st.Runscript), 0o755})
	}
	if st.Startscript.Line > 0 {
		fs = append(fs, file{layout.Startscript, scriptFile(st.Startscript), 0o755})
	}
	if st.Test.Line > 0 {
		fs = append(fs, file{layout.Test, scriptFile(st.Test), 0o755})
	}
	if st.Help.Line > 0 {
		fs = append(fs, file{layout.RunscriptHelp, []byte(st.Help.Body), 0o644})
	}
	return append(fs, file{layout.Deffile, text, 0o644})
}

// labels returns labels.json for the stage: the base image's labels, then
// those %post appended to BuildLabels, then %labels, then the
// org.label-schema labels Apptainer adds to every build.
func labels(st *deffile.Stage, base, post []byte, now time.Time) ([]byte, error) {
	m := map[string]string{}
	if len(bytes.TrimSpace(base)) > 0 {
		var b map[string]any
		if json.Unmarshal(base, &b) == nil { // a broken base labels.json is replaced
			for k, v := range b {
				if s, ok := v.(string); ok {
					m[k] = s
				}
			}
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(post))
	for sc.Scan() {
		k, v, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if k != "" {
			m[k] = strings.TrimSpace(v)
		}
	}
	for k, v := range deffile.LabelMap(st.Labels) {
		m[k] = v
	}
	m["org.label-schema.schema-version"] = "1.0"
	m["org.label-schema.build-date"] = now.Format("Monday_2_January_2006_15:4:5_MST")
	m["org.label-schema.build-arch"] = runtime.GOARCH
	m["org.label-schema.usage.launch.version"] = buildinfo.Version
	m["org.label-schema.usage.singularity.deffile.bootstrap"] = st.Bootstrap()
	if from := st.From(); from != "" {
		m["org.label-schema.usage.singularity.deffile.from"] = from
	}
	if st.Help.Line > 0 {
		m["org.label-schema.usage"] = layout.RunscriptHelp
		m["org.label-schema.usage.singularity.runscript.help"] = layout.RunscriptHelp
	}
	return json.MarshalIndent(m, "", "\t")
}
