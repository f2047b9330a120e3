package deffile

import (
	"fmt"
	"strings"
	"unicode"
)

// parseFilesArgs reads the argument of a "%files" line: none (host files) or
// "from STAGE"; a trailing "# comment" is cut off, as in Apptainer.
// Apptainer silently skips a %files section with any other argument (its
// files are never copied); that is an error here.
func parseFilesArgs(args string) (from string, err error) {
	clean, _, _ := strings.Cut(args, "#")
	f := strings.Fields(clean)
	switch {
	case len(f) == 0:
		return "", nil
	case len(f) == 2 && strings.EqualFold(f[0], "from"):
		return f[1], nil
	}
	return "", fmt.Errorf("%%files takes no argument or \"from STAGE\", not %q", strings.TrimSpace(clean))
}

// parseFiles reads the "SRC [DST]" lines of a %files section. Blank lines
// and lines starting with "#" are skipped. Words are separated by white
// space; a word may be quoted with "..." (as in Apptainer) or '...' (which
// Apptainer mangles: it keeps the quote in the path), without escapes.
// Apptainer ignores words after the second; so does this, with a warning
// unless they start with "#" (a comment).
func (p *parser) parseFiles(lines []line) ([]FileEntry, error) {
	var entries []FileEntry
	for _, ln := range lines {
		t := strings.TrimSpace(ln.text)
		if t == "" || t[0] == '#' {
			continue
		}
		words, err := splitWords(t)
		if err != nil {
			return nil, p.errorf(ln.num, "%%files line %q: %v", t, err)
		}
		if words[0] == "" {
			return nil, p.errorf(ln.num, "%%files line %q: the source path is empty", t)
		}
		e := FileEntry{Src: words[0], Line: ln.num}
		if len(words) > 1 {
			e.Dst = words[1]
		}
		if len(words) > 2 && !strings.HasPrefix(words[2], "#") {
			p.warnf(ln.num, "%%files line %q: words after SRC DST are ignored (quote a path with spaces)", t)
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// isFileSpace is the white space that separates %files words (the \s of
// Apptainer's pattern).
func isFileSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }

// splitWords splits a %files line into words, removing quotes. A quote must
// open a word and close it; anything else (a"b, "a"b, an unterminated
// quote) is an error rather than Apptainer's silent re-splitting.
func splitWords(s string) ([]string, error) {
	var words []string
	for i := 0; i < len(s); {
		if isFileSpace(s[i]) {
			i++
			continue
		}
		if q := s[i]; q == '"' || q == '\'' {
			end := strings.IndexByte(s[i+1:], q)
			if end < 0 {
				return nil, fmt.Errorf("unterminated %c quote", q)
			}
			end += i + 1
			if end+1 < len(s) && !isFileSpace(s[end+1]) {
				return nil, fmt.Errorf("a closing %c quote must end the word", q)
			}
			words = append(words, s[i+1:end])
			i = end + 1
			continue
		}
		j := i
		for j < len(s) && !isFileSpace(s[j]) {
			if s[j] == '"' || s[j] == '\'' {
				return nil, fmt.Errorf("a %c quote inside a word: quote the whole path", s[j])
			}
			j++
		}
		words = append(words, s[i:j])
		i = j
	}
	return words, nil
}

// parseAppFiles reads the lines of an %appfiles section as Apptainer does: a
// "#" starts a comment anywhere, the source is the first word (up to the
// first space) and the destination the rest of the line; no quoting.
func parseAppFiles(lines []line) []FileEntry {
	var entries []FileEntry
	for _, ln := range lines {
		t, _, _ := strings.Cut(strings.TrimSpace(ln.text), "#")
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		src, dst, _ := strings.Cut(t, " ")
		entries = append(entries, FileEntry{Src: src, Dst: strings.TrimSpace(dst), Line: ln.num})
	}
	return entries
}

// parseLabels reads %labels or %applabels lines as Apptainer does: the name
// is the text up to the first space, the value the rest, both trimmed; blank
// and "#" lines are skipped.
func (p *parser) parseLabels(lines []line) []Label {
	var labels []Label
	for _, ln := range lines {
		t := strings.TrimSpace(ln.text)
		if t == "" || t[0] == '#' {
			continue
		}
		k, v, _ := strings.Cut(t, " ")
		k = strings.TrimSpace(k)
		if strings.ContainsFunc(k, unicode.IsSpace) {
			p.warnf(ln.num, "label name %q contains white space: a label line is split at its first space only", k)
		}
		labels = append(labels, Label{Key: k, Value: strings.TrimSpace(v), Line: ln.num})
	}
	return labels
}
