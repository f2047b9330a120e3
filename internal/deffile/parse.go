package deffile

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// parser holds what one Parse call accumulates.
type parser struct {
	file     string
	warnings []Warning
	quiet    bool // first pass: structure only, no warnings
}

func (p *parser) errorf(line int, format string, a ...any) error {
	return &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, a...)}
}

func (p *parser) warnf(line int, format string, a ...any) {
	if !p.quiet {
		p.warnings = append(p.warnings, Warning{File: p.file, Line: line, Msg: fmt.Sprintf(format, a...)})
	}
}

// Parse parses the definition file data (file names it in errors), filling
// {{ VAR }} placeholders from buildArgs and each stage's %arguments.
//
// As Apptainer does, the file is split into stages at every line starting
// with "Bootstrap:" (any case, at the start of the line); each stage is
// parsed as written, to read its %arguments; its text is then templated and
// parsed again, and that is the result. Errors are *Error.
func Parse(file string, data []byte, buildArgs map[string]string) (*Definition, error) {
	if err := checkText(file, data); err != nil {
		return nil, err
	}
	p := &parser{file: file}
	for k, v := range buildArgs {
		if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
			return nil, p.errorf(0, "build argument %q: the value is not text (NUL or invalid UTF-8)", k)
		}
	}
	d := &Definition{File: file}
	used := map[string]bool{}
	for _, chunk := range splitStages(string(data)) {
		st, err := p.parseStage(chunk, buildArgs, used)
		if err != nil {
			return nil, err
		}
		if st != nil {
			d.Stages = append(d.Stages, *st)
			d.Raw = append(d.Raw, st.Raw...)
		}
	}
	if len(d.Stages) == 0 {
		return nil, p.errorf(0, "empty definition file: no Bootstrap header")
	}
	if err := p.checkStages(d.Stages); err != nil {
		return nil, err
	}
	for k := range buildArgs {
		if !used[k] {
			d.UnusedArgs = append(d.UnusedArgs, k)
		}
	}
	sort.Strings(d.UnusedArgs)
	d.Warnings = p.warnings
	return d, nil
}

// Load reads the definition file at path (see ReadFile) and parses it with
// buildArgs (see Parse).
func Load(path string, buildArgs map[string]string) (*Definition, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, buildArgs)
}

// BuildArgs returns the build arguments of `--build-arg-file argFile` (when
// not "") and `--build-arg K=V` flags, a flag winning over the file and a
// later flag over an earlier one, as in Apptainer.
func BuildArgs(flags []string, argFile string) (map[string]string, []Warning, error) {
	args := map[string]string{}
	var warnings []Warning
	if argFile != "" {
		data, err := ReadFile(argFile)
		if err != nil {
			return nil, nil, err
		}
		if args, warnings, err = ParseBuildArgFile(argFile, data); err != nil {
			return nil, nil, err
		}
	}
	for _, flag := range flags {
		k, v, err := ParseBuildArg(flag)
		if err != nil {
			return nil, nil, err
		}
		args[k] = v
	}
	return args, warnings, nil
}

// chunk is the text of one stage and the file line it starts on.
type chunk struct {
	text  string
	first int
}

// splitStages splits a file where Apptainer does: before every line that
// starts with "bootstrap:" (any case). Text before the first such line is a
// chunk of its own (it may hold an indented Bootstrap header).
func splitStages(text string) []chunk {
	var chunks []chunk
	start, first := 0, 1
	for _, ln := range splitLines(text, 1, nil) {
		if ln.off > 0 && stageStart().MatchString(ln.text) {
			chunks = append(chunks, chunk{text[start:ln.off], first})
			start, first = ln.off, ln.num
		}
	}
	return append(chunks, chunk{text[start:], first})
}

// parseStage parses one chunk: as written (for its %arguments), then
// templated. It returns nil for a chunk of only blank and comment lines,
// which Apptainer drops (also from the stored text).
func (p *parser) parseStage(c chunk, args map[string]string, used map[string]bool) (*Stage, error) {
	lines := splitLines(c.text, c.first, nil)
	empty := true
	for _, ln := range lines {
		if !isBlankOrComment(ln.text) {
			empty = false
			break
		}
	}
	if empty {
		return nil, nil
	}
	p.quiet = true
	_, argLines, err := p.parseChunk(lines)
	p.quiet = false
	if err != nil {
		return nil, err
	}
	defaults, warnings := parseDefaults(p.file, argLines)
	p.warnings = append(p.warnings, warnings...)
	ex, err := expand(p.file, c.text, c.first, args, defaults)
	if err != nil {
		return nil, err
	}
	for k := range ex.used {
		used[k] = true
	}
	templated := splitLines(ex.text, c.first, ex.nums)
	for i, ln := range templated {
		// Apptainer keeps such a line in the stage, but the stored text
		// would then read back as another stage.
		if m := stageStart().FindString(ln.text); i > 0 && m != "" {
			return nil, p.errorf(ln.num, "templating makes this line start with %q, which would begin a new stage", m)
		}
	}
	st, _, err := p.parseChunk(templated)
	if err != nil {
		return nil, err
	}
	st.Defaults = defaults
	st.Raw = []byte(ex.text)
	st.Original = []byte(c.text)
	if err := p.checkAgent(st, lines); err != nil {
		return nil, err
	}
	return st, nil
}

// checkAgent checks the stage's Bootstrap header against the agent table.
func (p *parser) checkAgent(st *Stage, lines []line) error {
	var bs *Field
	for i := range st.Header {
		if st.Header[i].Key == "bootstrap" {
			bs = &st.Header[i]
		}
	}
	if bs == nil {
		at := lines[0].num
		for _, ln := range lines {
			if !isBlankOrComment(ln.text) {
				at = ln.num
				break
			}
		}
		return p.errorf(at, "no Bootstrap header: a definition (and every stage) starts with \"Bootstrap: AGENT\"")
	}
	st.Line = bs.Line
	a, ok := LookupAgent(bs.Value)
	if !ok {
		hint := ""
		if _, ok := LookupAgent(strings.ToLower(bs.Value)); ok {
			hint = " (agent names are lower case)"
		}
		return p.errorf(bs.Line, "unknown bootstrap agent %q%s; launch builds from %s",
			bs.Value, hint, strings.Join(SupportedAgents(), ", "))
	}
	if !a.Supported {
		return p.errorf(bs.Line, "Bootstrap: %s is not supported: %s", a.Name, a.Why)
	}
	for _, req := range a.Required {
		if v, _ := st.Header.Get(req); v == "" {
			name, _ := lookupHeader(req)
			return p.errorf(bs.Line, "Bootstrap: %s needs a %s header", a.Name, name)
		}
	}
	for _, f := range st.Header {
		if f.Key == "fingerprints" {
			p.warnf(f.Line, "Fingerprints: launch does not verify SIF signatures yet; the base image is used unverified")
		}
	}
	return nil
}

// checkStages checks what spans stages: stage names are unique, and
// "%files from NAME" names an earlier stage.
func (p *parser) checkStages(stages []Stage) error {
	seen := map[string]int{} // stage name -> index
	for i := range stages {
		st := &stages[i]
		for _, fs := range st.Files {
			if fs.From == "" {
				continue
			}
			if _, ok := seen[fs.From]; ok {
				continue
			}
			if st.Name() == fs.From {
				return p.errorf(fs.Line, "%%files from %s: a stage cannot copy files from itself", fs.From)
			}
			for _, later := range stages[i+1:] {
				if later.Name() == fs.From {
					return p.errorf(fs.Line, "%%files from %s: stage %s is not built yet here; files come from an earlier stage", fs.From, fs.From)
				}
			}
			return p.errorf(fs.Line, "%%files from %s: no stage is named %s", fs.From, fs.From)
		}
		if name := st.Name(); name != "" {
			if j, ok := seen[name]; ok {
				return p.errorf(headerLine(st, "stage"), "stage name %q is already used by the stage at line %d", name, stages[j].Line)
			}
			seen[name] = i
		}
	}
	return nil
}

func headerLine(st *Stage, key string) int {
	for _, f := range st.Header {
		if f.Key == key {
			return f.Line
		}
	}
	return st.Line
}
