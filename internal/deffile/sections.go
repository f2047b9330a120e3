package deffile

import (
	"strings"
	"unicode"
)

// occurrence is one section as written: its "%name ..." line and body.
type occurrence struct {
	name    string // lower case, without %
	kind    int
	args    string // the line after "%name ", verbatim
	hasArgs bool   // the line had a space after the name
	app     string // for %app*: the app name
	line    int
	body    []line
}

// parseChunk parses one stage's lines: the header (every line before the
// first section line), then the sections. It also returns the lines of the
// %arguments sections, which the first pass reads defaults from.
func (p *parser) parseChunk(lines []line) (*Stage, []line, error) {
	st := &Stage{}
	n := 0
	for n < len(lines) {
		if ok, _ := sectionWord(lines[n].text); ok {
			break
		}
		n++
	}
	if err := p.parseHeader(st, lines[:n]); err != nil {
		return nil, nil, err
	}
	var occs []*occurrence
	for _, ln := range lines[n:] {
		if ok, indented := sectionWord(ln.text); ok {
			o, err := p.sectionLine(ln, indented)
			if err != nil {
				return nil, nil, err
			}
			occs = append(occs, o)
			continue
		}
		o := occs[len(occs)-1]
		o.body = append(o.body, ln)
	}
	var argLines []line
	for _, o := range occs {
		if o.kind == kindArgs {
			argLines = append(argLines, o.body...)
		}
		if err := p.addSection(st, o); err != nil {
			return nil, nil, err
		}
	}
	return st, argLines, nil
}

// sectionLine reads a "%name [args]" line as Apptainer does: the name runs
// up to the first space and is compared in lower case; leading "%"s are
// dropped. Apptainer fails on an indented section line (it reads an empty
// section name), so that is an error here too, with a plainer message.
func (p *parser) sectionLine(ln line, indented bool) (*occurrence, error) {
	t := strings.TrimLeftFunc(ln.text, unicode.IsSpace)
	if indented {
		word, _, _ := strings.Cut(t, " ")
		return nil, p.errorf(ln.num, "%q starts a section but is indented: section lines start in the first column (a script line whose first word starts with %% needs rewording)", word)
	}
	name, args, hasArgs := strings.Cut(strings.TrimLeft(t, "%"), " ")
	key := strings.ToLower(name)
	kind, ok := sections[key]
	if !ok {
		return nil, p.errorf(ln.num, "unknown section %q", "%"+name)
	}
	o := &occurrence{name: key, kind: kind, args: args, hasArgs: hasArgs, line: ln.num}
	if kind == kindApp {
		// Apptainer takes the word after the section name (split at single
		// spaces); here repeated spaces are skipped rather than giving an
		// app with an empty name.
		var words []string
		for _, w := range strings.Split(args, " ") {
			if w != "" {
				words = append(words, w)
			}
		}
		if len(words) == 0 {
			return nil, p.errorf(ln.num, "%%%s needs an app name: %%%s NAME", key, key)
		}
		o.app = words[0]
		if err := p.checkAppName(ln.num, o.app); err != nil {
			return nil, err
		}
		if len(words) > 1 {
			p.warnf(ln.num, "%%%s %s: words after the app name are ignored, as in Apptainer", key, o.app)
		}
	}
	return o, nil
}

// checkAppName rejects app names that cannot be a directory of /scif/apps.
func (p *parser) checkAppName(num int, name string) error {
	if name == "." || name == ".." || strings.ContainsFunc(name, func(r rune) bool {
		return r == '/' || unicode.IsControl(r) || unicode.IsSpace(r)
	}) {
		return p.errorf(num, "app name %q is not usable as a directory name in /scif/apps", name)
	}
	return nil
}

// addSection folds one section occurrence into the stage.
func (p *parser) addSection(st *Stage, o *occurrence) error {
	switch o.kind {
	case kindScript, kindArgs:
		s := st.script(o.name)
		appendScript(s, o)
		if !p.quiet && (o.name == "pre" || o.name == "setup" || o.name == "post" || o.name == "test") {
			if _, err := s.Command("script"); err != nil {
				return p.errorf(o.line, "%%%s: %v", o.name, err)
			}
		}
	case kindLabels:
		if !p.quiet {
			st.Labels = append(st.Labels, p.parseLabels(o.body)...)
		}
	case kindFiles:
		return p.addFiles(st, o)
	case kindApp:
		return p.addApp(st, o)
	}
	return nil
}

// appendScript appends an occurrence to a script section: the body after
// the bodies so far; the arguments replace earlier ones when the line had
// any (Apptainer's rule).
func appendScript(s *Script, o *occurrence) {
	if s.Line == 0 {
		s.Line = o.line
	}
	if o.hasArgs {
		s.Args = o.args
	}
	var b strings.Builder
	b.WriteString(s.Body)
	for _, ln := range o.body {
		b.WriteString(ln.text)
		b.WriteByte('\n')
	}
	s.Body = b.String()
}

// addFiles merges a %files section into the set with the same argument
// text, as Apptainer does, or starts a new set.
func (p *parser) addFiles(st *Stage, o *occurrence) error {
	if p.quiet {
		return nil
	}
	from, err := parseFilesArgs(o.args)
	if err != nil {
		return p.errorf(o.line, "%v", err)
	}
	entries, err := p.parseFiles(o.body)
	if err != nil {
		return err
	}
	for i := range st.Files {
		if st.Files[i].Args == o.args {
			st.Files[i].Entries = append(st.Files[i].Entries, entries...)
			return nil
		}
	}
	st.Files = append(st.Files, FileSet{Args: o.args, From: from, Line: o.line, Entries: entries})
	return nil
}

// addApp folds an %app* section into its app, creating the app at its
// first section.
func (p *parser) addApp(st *Stage, o *occurrence) error {
	var app *App
	for i := range st.Apps {
		if st.Apps[i].Name == o.app {
			app = &st.Apps[i]
		}
	}
	if app == nil {
		st.Apps = append(st.Apps, App{Name: o.app, Line: o.line})
		app = &st.Apps[len(st.Apps)-1]
	}
	switch o.name {
	case "appfiles":
		if !p.quiet {
			app.Files = append(app.Files, parseAppFiles(o.body)...)
		}
	case "applabels":
		if !p.quiet {
			app.Labels = append(app.Labels, p.parseLabels(o.body)...)
		}
	default:
		// Apptainer keeps no arguments for app sections.
		s := app.script(o.name)
		args := *o
		args.hasArgs = false
		appendScript(s, &args)
	}
	return nil
}
