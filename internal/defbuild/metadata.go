package defbuild

import (
	"bufio"
	"bytes"
	"runtime"
	"strings"
	"time"

	"github.com/launch-hpc/launch/internal/build"
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
		fs = append(fs, file{layout.DeffileEnv, []byte(build.DeffileEnvHeader + st.Environment.Body), 0o755})
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
// those %post appended to BuildLabels, then %labels, then the build labels
// every build gets (build.AddBuildLabels).
func labels(st *deffile.Stage, base, post []byte, now time.Time) ([]byte, error) {
	m := build.ParseLabels(base) // a broken base labels.json is replaced
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
	build.AddBuildLabels(m, build.BuildInfo{Now: now, Arch: runtime.GOARCH, Header: header(st), Help: st.Help.Line > 0})
	return build.LabelsJSON(m)
}

// header is the stage's header as the build labels name it.
func header(st *deffile.Stage) []build.HeaderField {
	h := make([]build.HeaderField, 0, len(st.Header))
	for _, f := range st.Header {
		h = append(h, build.HeaderField{Key: f.Key, Value: f.Value})
	}
	return h
}
