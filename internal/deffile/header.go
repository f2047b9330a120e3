package deffile

import "strings"

// parseHeader reads a stage's header lines as Apptainer does:
//
//   - each line is trimmed; blank lines and lines starting with "#" are
//     skipped, and anything after a "#" on a line is a comment;
//   - a line is "KEY: VALUE", split at the first ":", the key compared in
//     lower case, both trimmed; an unknown key is an error;
//   - a value ending in "\" continues on the next line (the next line's
//     trimmed text is appended directly); a "\n" (backslash, n) just before
//     that "\" becomes a newline.
//
// Apptainer loses a continued value that a blank line, a comment or the end
// of the header cuts short (or panics on it); here the value so far is kept.
// A key given twice keeps its last value, as in Apptainer, with a warning.
func (p *parser) parseHeader(st *Stage, lines []line) error {
	var pending *Field     // a field whose value continues on the next line
	at := map[string]int{} // key -> index in st.Header
	flush := func() {
		if pending != nil {
			p.setField(st, at, *pending)
			pending = nil
		}
	}
	for _, ln := range lines {
		t := strings.TrimSpace(ln.text)
		if t == "" || t[0] == '#' {
			flush()
			continue
		}
		t, _, _ = strings.Cut(t, "#")
		var f Field
		if pending == nil {
			k, v, ok := strings.Cut(t, ":")
			if !ok {
				return p.errorf(ln.num, "header line %q is not \"KEY: VALUE\" (or a section starting with %%)", strings.TrimSpace(t))
			}
			f = Field{Key: strings.ToLower(strings.TrimSpace(k)), Value: strings.TrimSpace(v), Line: ln.num}
			if _, ok := lookupHeader(f.Key); !ok {
				return p.errorf(ln.num, "unknown header keyword %q", strings.TrimSpace(k))
			}
		} else {
			f = *pending
			f.Value += strings.TrimSpace(t)
			pending = nil
		}
		if v, ok := strings.CutSuffix(f.Value, `\`); ok {
			if w, ok := strings.CutSuffix(v, `\n`); ok {
				v = w + "\n"
			}
			f.Value = v
			pending = &f
			continue
		}
		p.setField(st, at, f)
	}
	flush()
	return nil
}

// setField adds f to the header, replacing the value of an earlier field
// with the same key (at maps keys to their index in st.Header).
func (p *parser) setField(st *Stage, at map[string]int, f Field) {
	if i, ok := at[f.Key]; ok {
		name, _ := lookupHeader(f.Key)
		p.warnf(f.Line, "header %s given again (line %d): the last value is used", name, st.Header[i].Line)
		st.Header[i].Value = f.Value
		return
	}
	at[f.Key] = len(st.Header)
	st.Header = append(st.Header, f)
}
