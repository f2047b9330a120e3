// Package defbuild builds an image from a parsed definition file
// (internal/deffile): Plan turns the Definition into an ordered list of
// steps (plain data, tested on its own), and Build runs them into private
// temporary trees (internal/tmptree: a killed build leaves nothing that the
// next build does not sweep) and packs the last stage's tree through
// internal/build (a SIF with the definition-file object, or a sandbox).
//
// Scripts that run in the image (%post, %test) are run by this same launch
// binary as a subprocess (`launch exec --writable TREE ...`), as the calling
// user, or for %post as root with --fakeroot (`launch exec --fakeroot`).
// %setup runs on the host. It never runs anything as another user.
package defbuild

import (
	"fmt"

	"github.com/launch-hpc/launch/internal/deffile"
)

// Kind is what one step does.
type Kind int

// The kinds of step, in the order Apptainer runs them within a stage.
const (
	Pre       Kind = iota // %pre on the host, before the bootstrap (legacy)
	Bootstrap             // make the stage's tree from its agent
	Apps                  // lay out the SCIF apps in /scif, copy their %appfiles
	CopyFrom              // %files from STAGE: copy from an earlier stage's tree
	Setup                 // %setup on the host
	CopyHost              // %files: copy from the host
	Post                  // %post inside the tree
	Metadata              // write /.singularity.d (env, runscript, labels, ...)
	Test                  // %test in the finished tree (last stage, unless --notest)
)

var kindNames = [...]string{"%pre", "bootstrap", "apps", "%files from", "%setup", "%files", "%post", "metadata", "%test"}

// String names the kind as a user reads it.
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Step is one thing the build does.
type Step struct {
	Kind Kind
	// Stage is the index in Definition.Stages of the stage the step works on.
	Stage int
	// Line is the definition-file line of the section (or header) the step
	// comes from, for messages.
	Line int
	// Files is the %files set of a CopyFrom or CopyHost step.
	Files *deffile.FileSet
	// From is, for CopyFrom, the index of the stage the files come from.
	From int
}

// PlanOptions change the plan.
type PlanOptions struct {
	// NoTest leaves out the %test step (--notest).
	NoTest bool
}

// Plan returns the steps that build d, in order: every stage in file order,
// and within a stage %pre, the bootstrap, the "%files from" sets, %setup,
// the host %files sets, %post, the metadata and (last stage only) %test, as
// Apptainer orders them; with SCIF apps, the apps' layout right after the
// bootstrap and their %appinstall sections in the %post step.
func Plan(d *deffile.Definition, o PlanOptions) ([]Step, error) {
	byName := map[string]int{}
	var steps []Step
	for i := range d.Stages {
		st := &d.Stages[i]
		if st.Pre.Line > 0 {
			steps = append(steps, Step{Kind: Pre, Stage: i, Line: st.Pre.Line})
		}
		steps = append(steps, Step{Kind: Bootstrap, Stage: i, Line: st.Line})
		if len(st.Apps) > 0 {
			steps = append(steps, Step{Kind: Apps, Stage: i, Line: st.Apps[0].Line})
		}
		for j := range st.Files {
			fs := &st.Files[j]
			if fs.From == "" {
				continue
			}
			from, ok := byName[fs.From]
			if !ok { // the parser checks this; a Definition made in code may not
				return nil, &deffile.Error{File: d.File, Line: fs.Line,
					Msg: fmt.Sprintf("%%files from %s: no earlier stage is named %s", fs.From, fs.From)}
			}
			steps = append(steps, Step{Kind: CopyFrom, Stage: i, Line: fs.Line, Files: fs, From: from})
		}
		if st.Setup.Line > 0 {
			steps = append(steps, Step{Kind: Setup, Stage: i, Line: st.Setup.Line})
		}
		for j := range st.Files {
			if fs := &st.Files[j]; fs.From == "" {
				steps = append(steps, Step{Kind: CopyHost, Stage: i, Line: fs.Line, Files: fs})
			}
		}
		if l := postLine(st); l > 0 {
			steps = append(steps, Step{Kind: Post, Stage: i, Line: l})
		}
		steps = append(steps, Step{Kind: Metadata, Stage: i, Line: st.Line})
		if name := st.Name(); name != "" {
			byName[name] = i
		}
	}
	last := len(d.Stages) - 1
	if last >= 0 && !o.NoTest && d.Stages[last].Test.Line > 0 {
		steps = append(steps, Step{Kind: Test, Stage: last, Line: d.Stages[last].Test.Line})
	}
	return steps, nil
}
