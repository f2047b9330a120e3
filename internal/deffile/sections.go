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
	b := &stageBuilder{st: st, bodies: map[scriptKey]*strings.Builder{}, apps: map[string]int{},
		files: map[string]int{}, argsLine: map[scriptKey]int{}}
	for _, o := range occs {
		if o.kind == kindArgs {
			argLines = append(argLines, o.body...)
		}
		if err := p.addSection(b, o); err != nil {
			return nil, nil, err
		}
	}
	if err := p.finish(b); err != nil {
		return nil, nil, err
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

// stageBuilder folds section occurrences into a stage, in time linear in
// the text however many sections there are.
type stageBuilder struct {
	st     *Stage
	bodies map[scriptKey]*strings.Builder
	apps   map[string]int // app name -> index in st.Apps
	files  map[string]int // %files argument text -> index in st.Files
	// argsLine is the line that last set a script's arguments.
	argsLine map[scriptKey]int
}

// scriptKey names a script section: of the stage (app -1) or of an app.
type scriptKey struct {
	app  int
	name string
}

func (b *stageBuilder) script(k scriptKey) *Script {
	if k.app < 0 {
		return b.st.script(k.name)
	}
	return b.st.Apps[k.app].script(k.name)
}

// finish stores the accumulated bodies and checks the arguments of the
// scripts run with Command (a -c without a shell).
func (p *parser) finish(b *stageBuilder) error {
	for k, body := range b.bodies {
		b.script(k).Body = body.String()
	}
	if p.quiet {
		return nil
	}
	for _, name := range []string{"pre", "setup", "post"} {
		k := scriptKey{-1, name}
		if _, err := b.script(k).Command("script"); err != nil {
			return p.errorf(b.argsLine[k], "%%%s: %v", name, err)
		}
	}
	return nil
}

// addSection folds one section occurrence into the stage.
func (p *parser) addSection(b *stageBuilder, o *occurrence) error {
	switch o.kind {
	case kindScript, kindArgs:
		b.appendScript(scriptKey{-1, o.name}, o, true)
	case kindLabels:
		if !p.quiet {
			b.st.Labels = append(b.st.Labels, p.parseLabels(o.body)...)
		}
	case kindFiles:
		return p.addFiles(b, o)
	case kindApp:
		p.addApp(b, o)
	}
	return nil
}

// appendScript appends an occurrence to a script section: the body after
// the bodies so far; the arguments (when withArgs) replace earlier ones
// when the line had any (Apptainer's rule).
func (b *stageBuilder) appendScript(k scriptKey, o *occurrence, withArgs bool) {
	s := b.script(k)
	if s.Line == 0 {
		s.Line = o.line
	}
	if withArgs && o.hasArgs {
		s.Args = o.args
		b.argsLine[k] = o.line
	}
	body := b.bodies[k]
	if body == nil {
		body = &strings.Builder{}
		b.bodies[k] = body
	}
	for _, ln := range o.body {
		body.WriteString(ln.text)
		body.WriteByte('\n')
	}
}

// addFiles merges a %files section into the set with the same argument
// text, as Apptainer does, or starts a new set.
func (p *parser) addFiles(b *stageBuilder, o *occurrence) error {
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
	if i, ok := b.files[o.args]; ok {
		b.st.Files[i].Entries = append(b.st.Files[i].Entries, entries...)
		return nil
	}
	b.files[o.args] = len(b.st.Files)
	b.st.Files = append(b.st.Files, FileSet{Args: o.args, From: from, Line: o.line, Entries: entries})
	return nil
}

// addApp folds an %app* section into its app, creating the app at its
// first section.
func (p *parser) addApp(b *stageBuilder, o *occurrence) {
	i, ok := b.apps[o.app]
	if !ok {
		i = len(b.st.Apps)
		b.apps[o.app] = i
		b.st.Apps = append(b.st.Apps, App{Name: o.app, Line: o.line})
	}
	app := &b.st.Apps[i]
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
		b.appendScript(scriptKey{i, o.name}, o, false)
	}
}
