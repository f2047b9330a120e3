package deffile

import (
	"strings"
	"unicode"
)

// Text returns the definition text to store in the image (SIF deffile
// descriptor, /.singularity.d/Singularity): Raw when the definition was
// parsed from a file, else Render's text (a definition made in code, such as
// the one-line "Bootstrap: docker / From: alpine" of a build from a URI).
func (d *Definition) Text() []byte {
	if len(d.Raw) > 0 {
		return d.Raw
	}
	return d.Render()
}

// Render writes the definition as definition-file text: every stage's
// Render, one after another.
func (d *Definition) Render() []byte {
	var b strings.Builder
	for i := range d.Stages {
		b.Write(d.Stages[i].Render())
	}
	return []byte(b.String())
}

// Render writes the stage as definition-file text that Parse reads back to
// the same stage (line numbers aside): the header, Bootstrap first, then the
// sections in Apptainer's order, then the apps. Comments in %files and
// %labels are not kept (script bodies are kept as they are). Values made in
// code must be representable: no "#" in header values, no line of a body
// that would start a section or a stage.
func (s *Stage) Render() []byte {
	var b strings.Builder
	if v, ok := s.Header.Get("bootstrap"); ok {
		writeField(&b, Field{Key: "bootstrap", Value: v})
	}
	for _, f := range s.Header {
		if f.Key != "bootstrap" {
			writeField(&b, f)
		}
	}
	b.WriteString("\n")
	if len(s.Labels) > 0 {
		b.WriteString("%labels\n")
		writeLabels(&b, s.Labels)
	}
	for _, fs := range s.Files {
		writeSectionLine(&b, "files", fs.Args)
		for _, e := range fs.Entries {
			b.WriteString("    " + quoteWord(e.Src))
			if e.Dst != "" {
				b.WriteString(" " + quoteWord(e.Dst))
			}
			b.WriteString("\n")
		}
	}
	for _, sec := range []struct {
		name string
		s    Script
	}{
		{"help", s.Help}, {"environment", s.Environment}, {"runscript", s.Runscript},
		{"test", s.Test}, {"startscript", s.Startscript}, {"pre", s.Pre},
		{"setup", s.Setup}, {"post", s.Post}, {"arguments", s.Arguments},
	} {
		writeScript(&b, sec.name, sec.s.Args, sec.s)
	}
	for _, a := range s.Apps {
		n := b.Len()
		for _, sec := range []struct {
			name string
			s    Script
		}{{"appinstall", a.Install}, {"apprun", a.Run}, {"appenv", a.Env}} {
			writeScript(&b, sec.name, a.Name, sec.s)
		}
		if len(a.Labels) > 0 {
			writeSectionLine(&b, "applabels", a.Name)
			writeLabels(&b, a.Labels)
		}
		if len(a.Files) > 0 {
			writeSectionLine(&b, "appfiles", a.Name)
			for _, e := range a.Files {
				b.WriteString("    " + joinWords(e.Src, e.Dst) + "\n")
			}
		}
		for _, sec := range []struct {
			name string
			s    Script
		}{{"apphelp", a.Help}, {"apptest", a.Test}, {"appstart", a.Start}} {
			writeScript(&b, sec.name, a.Name, sec.s)
		}
		if b.Len() == n {
			// An app whose sections are all empty still exists.
			writeSectionLine(&b, "appinstall", a.Name)
		}
	}
	return []byte(b.String())
}

// writeField writes "Name: value", a multi-line value as continuation
// lines ("\n\" at the end of each line but the last).
func writeField(b *strings.Builder, f Field) {
	name, ok := lookupHeader(f.Key)
	if !ok {
		name = f.Key
	}
	b.WriteString(name + ": ")
	parts := strings.Split(f.Value, "\n")
	for i, part := range parts[:len(parts)-1] {
		if i > 0 {
			b.WriteString("    ") // trimmed when read; keeps "bootstrap:" off column 1
		}
		b.WriteString(part + `\n\` + "\n")
	}
	if len(parts) > 1 {
		b.WriteString("    ")
	}
	last := parts[len(parts)-1]
	switch {
	case strings.HasSuffix(last, `\`):
		// A value ending in "\": continue it and end it with a blank line.
		b.WriteString(last + `\` + "\n\n")
	case last == "" && len(parts) > 1:
		// A value ending in a newline: the continuation ends at a blank line.
		b.WriteString("\n")
	default:
		b.WriteString(last + "\n")
	}
}

func writeSectionLine(b *strings.Builder, name, args string) {
	b.WriteString("%" + name)
	if args != "" {
		b.WriteString(" " + args)
	}
	b.WriteString("\n")
}

func writeScript(b *strings.Builder, name, args string, s Script) {
	if s.Body == "" && s.Args == "" {
		return
	}
	writeSectionLine(b, name, args)
	b.WriteString(s.Body)
	if s.Body != "" && !strings.HasSuffix(s.Body, "\n") {
		b.WriteString("\n")
	}
}

func writeLabels(b *strings.Builder, labels []Label) {
	for _, l := range labels {
		b.WriteString("    " + joinWords(l.Key, l.Value) + "\n")
	}
}

// joinWords writes "a b", or "a" when b is empty.
func joinWords(a, b string) string {
	if b == "" {
		return a
	}
	return a + " " + b
}

// quoteWord quotes a %files path when it must be: white space, a quote, or a
// first character that would make the line a comment or a section.
func quoteWord(s string) string {
	if s != "" && !strings.ContainsFunc(s, unicode.IsSpace) && !strings.ContainsAny(s, `"'`) && s[0] != '#' && s[0] != '%' {
		return s
	}
	if strings.Contains(s, `"`) {
		return "'" + s + "'"
	}
	return `"` + s + `"`
}
