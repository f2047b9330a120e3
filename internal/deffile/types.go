package deffile

import (
	"errors"
	"strings"
)

// Definition is a parsed definition file: one Stage per Bootstrap header.
type Definition struct {
	// File is the name used in errors and warnings.
	File string
	// Stages in file order; the last one is the image that is built.
	Stages []Stage
	// Raw is the text Apptainer stores in the SIF (the deffile descriptor)
	// and in /.singularity.d/Singularity: every stage's templated text,
	// concatenated. Like Apptainer, it leaves out blank and comment lines
	// before the first Bootstrap line.
	Raw []byte
	// UnusedArgs are build arguments (--build-arg, --build-arg-file) that no
	// {{ VAR }} used, sorted. Apptainer fails the build over them unless
	// --warn-unused-build-args is given; the caller decides.
	UnusedArgs []string
	// Warnings are things Apptainer accepts that the user should hear about.
	Warnings []Warning
}

// Stage is one build stage: a header and its sections. Sections given more
// than once are appended to one another, as Apptainer does.
type Stage struct {
	// Line is the line of the stage's Bootstrap header.
	Line int
	// Header holds the header keywords in file order.
	Header Header

	// Scripts. Pre and Setup run on the host, Post in the image; Environment,
	// Runscript, Startscript, Test and Help are written into the image.
	Pre, Setup, Post                    Script
	Environment, Runscript, Startscript Script
	Test, Help                          Script
	// Arguments is the %arguments section (templated, like every section);
	// Defaults is what it defines, read before templating as Apptainer
	// reads it.
	Arguments Script
	Defaults  map[string]string

	// Files are the %files sections; sections with the same argument text
	// are merged into one FileSet, in order of first appearance (Apptainer
	// copies all "from STAGE" sets before %setup and the host sets after).
	Files []FileSet
	// Labels are the %labels lines in order; a name given twice keeps the
	// last value (see LabelMap).
	Labels []Label
	// Apps are the SCIF apps in order of their first %app* section, the
	// order Apptainer runs their %appinstall sections in.
	Apps []App

	// Raw is the stage's text after templating, as Apptainer stores it.
	Raw []byte
	// Original is the stage's text as written in the file.
	Original []byte
}

// Bootstrap returns the stage's bootstrap agent name ("" when none).
func (s *Stage) Bootstrap() string { v, _ := s.Header.Get("bootstrap"); return v }

// From returns the stage's From header ("" when none).
func (s *Stage) From() string { v, _ := s.Header.Get("from"); return v }

// Name returns the stage's Stage header, the name "%files from" refers to.
func (s *Stage) Name() string { v, _ := s.Header.Get("stage"); return v }

// Field is one header keyword and its value.
type Field struct {
	Key   string // lower case, as Apptainer compares it ("mirrorurl")
	Value string // trimmed, a trailing "# comment" cut off, continuations joined
	Line  int
}

// Header is a stage's header fields in file order; each key appears once (a
// key given twice keeps its last value, as in Apptainer).
type Header []Field

// Get returns the value of key (any case) and whether the header has it.
func (h Header) Get(key string) (string, bool) {
	key = strings.ToLower(key)
	for _, f := range h {
		if f.Key == key {
			return f.Value, true
		}
	}
	return "", false
}

// Script is one script section (all its occurrences appended).
type Script struct {
	// Args is the rest of the section line after the name, verbatim (for
	// "%post -c /bin/bash # why" it is "-c /bin/bash # why"); a later
	// occurrence with arguments replaces an earlier one's, as in Apptainer.
	Args string
	// Body is the section's lines, each ending in "\n", comments and blank
	// lines kept: a "#" in a script is the script's business.
	Body string
	// Line is the line of the section's first "%name" line; 0 when absent.
	Line int
}

// Params returns the section arguments as words, with a trailing "#
// comment" cut off, as Apptainer reads them.
func (s Script) Params() []string {
	args, _, _ := strings.Cut(s.Args, "#")
	return strings.Fields(args)
}

// Command returns the argv Apptainer runs %pre, %setup and %post with, the
// script saved at path: "/bin/sh -ex [PARAMS] path", or with "-c SHELL
// ARGS" among the parameters, "/bin/sh -ex ... -c 'SHELL ARGS path'", so
// "%post -c /bin/bash" runs bash. (%test, also at build time, runs as the
// script Shebang describes, as in the built image.)
func (s Script) Command(path string) ([]string, error) {
	argv := []string{"/bin/sh", "-ex"}
	params := s.Params()
	for i, p := range params {
		if p != "-c" {
			continue
		}
		if i == len(params)-1 {
			return nil, errors.New("section argument -c needs a shell after it (-c /bin/bash)")
		}
		shell := strings.Join(params[i+1:], " ")
		return append(append(argv, params[:i+1]...), shell+" "+path), nil
	}
	return append(append(argv, params...), path), nil
}

// Shebang splits a runtime script (%runscript, %startscript, %test) the way
// Apptainer writes it into the image: interp is its "#!" line ("#!/bin/sh"
// when the body has none) with the section arguments appended, body the
// rest. The file Apptainer writes is interp + "\n\n" + body + "\n".
//
// Apptainer takes the #! line only when it is the body's very first line; a
// blank line before it makes Apptainer write an empty #! line (a broken
// script). Here blank lines before a #! line are skipped.
func (s Script) Shebang() (interp, body string) {
	interp, body = "#!/bin/sh", s.Body
	rest := s.Body
	for rest != "" {
		first, after, _ := strings.Cut(rest, "\n")
		if t := strings.TrimSpace(first); t != "" {
			if strings.HasPrefix(t, "#!") {
				interp, body = t, after
			}
			break
		}
		rest = after
	}
	if s.Args != "" {
		args, _, _ := strings.Cut(s.Args, "#")
		interp += " " + args
	}
	return interp, body
}

// FileSet is the lines of the %files sections that share one argument text.
type FileSet struct {
	// Args is the section argument verbatim ("" or "from devel").
	Args string
	// From is the stage the files come from; "" means the host.
	From string
	// Line is the line of the first "%files" line of the set.
	Line    int
	Entries []FileEntry
}

// FileEntry is one "SRC [DST]" line of %files or %appfiles.
type FileEntry struct {
	Src  string // a path, possibly a glob; quotes removed
	Dst  string // "" when not given: the same path as Src (%appfiles: in the app)
	Line int
}

// Label is one "NAME VALUE" line of %labels or %applabels.
type Label struct {
	Key   string
	Value string
	Line  int
}

// LabelMap returns labels as a map, a later line winning over an earlier one
// with the same name, as in Apptainer's labels.json.
func LabelMap(labels []Label) map[string]string {
	m := make(map[string]string, len(labels))
	for _, l := range labels {
		m[l.Key] = l.Value
	}
	return m
}

// App is one SCIF app: the %app* sections naming it. Apptainer installs it
// under /scif/apps/NAME.
type App struct {
	Name string
	// Line is the line of the app's first section.
	Line int
	// Install runs in the image after %post (in /scif/apps/NAME); Run,
	// Start, Test and Env become the app's runscript, startscript, test and
	// env/90-environment.sh, Help its runscript.help.
	Install, Run, Start, Test, Env, Help Script
	// Files are the %appfiles lines; a relative Dst is inside the app.
	Files []FileEntry
	// Labels are the %applabels lines.
	Labels []Label
}

// script returns the stage's script section called name, or nil.
func (s *Stage) script(name string) *Script {
	switch name {
	case "pre":
		return &s.Pre
	case "setup":
		return &s.Setup
	case "post":
		return &s.Post
	case "environment":
		return &s.Environment
	case "runscript":
		return &s.Runscript
	case "startscript":
		return &s.Startscript
	case "test":
		return &s.Test
	case "help":
		return &s.Help
	case "arguments":
		return &s.Arguments
	}
	return nil
}

// script returns the app's script section for the %app* section name, or
// nil for %appfiles and %applabels.
func (a *App) script(name string) *Script {
	switch name {
	case "appinstall":
		return &a.Install
	case "apprun":
		return &a.Run
	case "appstart":
		return &a.Start
	case "apptest":
		return &a.Test
	case "appenv":
		return &a.Env
	case "apphelp":
		return &a.Help
	}
	return nil
}
